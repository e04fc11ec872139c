"""`make up`: brings the system up on embedded defaults and reports what runs where.

So far the system is the on-chain programs (built by `make program`) and the PostgreSQL
and Redis the services will use (found or started by scripts/devservices.py). The
localnet node and the gRPC services join this launcher as their issues land.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    rows = [("PostgreSQL", os.environ.get("DATABASE_URL", "?")), ("Redis", os.environ.get("REDIS_URL", "?"))]
    for so in sorted((ROOT / "program" / "target" / "deploy").glob("*.so")):
        rows.append((f"program {so.stem}", str(so)))
    width = max(len(name) for name, _ in rows)
    print("collateral-vault: up")
    for name, where in rows:
        print(f"  {name.ljust(width)}  {where}")
    print("(localnet and the gRPC services are not part of this build yet)")


if __name__ == "__main__":
    main()
