"""What a benchmark of the whole system needs around it, without the test suite (the
benchmarks do not import tests/): a throwaway PostgreSQL database, free ports, and the
system started as `make up` starts it (scripts/up.py). tests/support re-exports these."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from vault_client.config import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@asynccontextmanager
async def temporary_database(prefix: str = "cvtest") -> AsyncIterator[str]:
    """A new, empty database (its URL), dropped after the block."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(database_url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(database_url(), name)
    finally:
        admin = await asyncpg.connect(database_url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def drop_redis_prefix(url: str, prefix: str) -> int:
    """Deletes every key under `prefix` (a run's namespace); how many. The vault cache's
    entries live a day: a bench run at 100,000 vaults left about 100,000 keys behind, and
    scanning a keyspace of 1.6 million made every test's cleanup slow."""
    client = aioredis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=prefix + "*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                deleted += await client.unlink(*batch)
                batch = []
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


def unused_port() -> int:
    """A port the kernel had free a moment ago (bound to 0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_system(env: dict[str, str], seconds: float = 120) -> tuple[subprocess.Popen[str], list[str]]:
    """Starts scripts/up.py and waits for its banner; returns the process and the banner."""
    up = subprocess.Popen([sys.executable, "-m", "scripts.up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert up.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        banner.append(line)
        if "Try:" in line or up.poll() is not None or not line:
            break
    if not any("is up" in line for line in banner):
        up.kill()
        raise RuntimeError("the system did not start:\n" + "".join(banner))
    return up, banner


def stop_system(up: subprocess.Popen[str]) -> str:
    """Stops scripts/up.py as Ctrl-C does; returns what it printed since."""
    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    return output
