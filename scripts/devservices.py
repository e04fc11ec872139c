"""Find or start PostgreSQL and Redis for `make up` / `make test`; print their URLs.

Order for each: the URL from the environment (DATABASE_URL / REDIS_URL) if set; else the
local server on 127.0.0.1 (5432 / 6379) if one answers; else install the Debian package
(apt-get) and start a private server on that port with its data under .local/.

Output: `export DATABASE_URL=...` and `export REDIS_URL=...` lines for `eval`.
Only the standard library is used, so this runs before the venv exists.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
PG_PORT = int(os.environ.get("DEVSERVICES_PG_PORT", "5432"))
REDIS_PORT = int(os.environ.get("DEVSERVICES_REDIS_PORT", "6379"))


def log(message: str) -> None:
    print(f"devservices: {message}", file=sys.stderr)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    raise SystemExit(f"devservices: {what} did not start listening on 127.0.0.1:{port}")


def ensure_apt(*packages: str) -> None:
    subprocess.run([str(ROOT / "scripts" / "ensure-apt.sh"), *packages], check=True)


def start_postgres() -> None:
    ensure_apt("postgresql")
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        raise SystemExit("devservices: postgresql installed but no /usr/lib/postgresql/*/bin")
    bindir = Path(bindirs[-1])
    data = LOCAL / "pgdata"
    logfile = LOCAL / "postgres.log"
    LOCAL.mkdir(exist_ok=True)
    # PostgreSQL refuses to run as root: run it as the package's `postgres` user.
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def as_user(args: list[str]) -> None:
        cmd = ["runuser", "-u", user, "--", *args] if os.geteuid() == 0 else args
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, user, user)
            shutil.chown(LOCAL, user, user)
        log(f"initdb {data}")
        as_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    log(f"starting PostgreSQL on 127.0.0.1:{PG_PORT} (data {data})")
    as_user([
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "start",
        "-o", f"-p {PG_PORT} -c listen_addresses=127.0.0.1 -k /tmp",
    ])
    wait_port(PG_PORT, "PostgreSQL")


def start_redis() -> None:
    ensure_apt("redis-server")
    data = LOCAL / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log(f"starting Redis on 127.0.0.1:{REDIS_PORT}")
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
         "--save", "", "--appendonly", "no", "--dir", str(data), "--logfile", str(LOCAL / "redis.log")],
        check=True,
    )
    wait_port(REDIS_PORT, "Redis")


def main() -> None:
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        if not port_open(PG_PORT):
            start_postgres()
        database_url = f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres"
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        if not port_open(REDIS_PORT):
            start_redis()
        redis_url = f"redis://127.0.0.1:{REDIS_PORT}/0"
    print(f"export DATABASE_URL='{database_url}'")
    print(f"export REDIS_URL='{redis_url}'")


if __name__ == "__main__":
    main()
