"""Running the measurement entry points the services own. What a benchmark measures of a
service's internals (its write pipeline, its servicer, the chassis' interceptor or audit
outbox) is measured by a module in that service's own folder (services/<service>/perf_*.py,
services/common/perf_*.py), because bench/ imports nothing from services/ (issue 24,
tests/test_dependencies.py). The benchmark runs it as `python -m <module> ARGS` in a process
of its own (cwd = the repository's root, PYTHONPATH = the root) and reads its result, the
JSON object on the last line of its standard output; a server's entry point serves instead,
and `spawn_server` returns once it accepts gRPC calls."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]


def probe_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment (its CV_PROFILE, DATABASE_URL, ...) with PYTHONPATH = the root."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}


def _result(module: str, returncode: int, stdout: bytes) -> dict[str, Any]:
    lines = stdout.decode().strip().splitlines()
    if returncode != 0 or not lines:
        raise RuntimeError(f"{module} ended with status {returncode} and no result (its errors are above)")
    try:
        result = json.loads(lines[-1])
    except ValueError:
        result = None
    if not isinstance(result, dict):
        raise RuntimeError(f"{module} printed {lines[-1][:200]!r}, not a JSON object")
    return result


def run_probe(module: str, *args: str) -> dict[str, Any]:
    """Runs `python -m module *args` to its end; its JSON result (its standard error passes through)."""
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=probe_env(), stdout=subprocess.PIPE,
                          check=False)
    return _result(module, done.returncode, done.stdout)


async def probe(module: str, *args: str) -> dict[str, Any]:
    """`run_probe` from a running event loop (which goes on serving, e.g. an in-process localnet node)."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", module, *args, cwd=ROOT, env=probe_env(),
                                                   stdout=subprocess.PIPE)
    return await _finished(module, process)


async def probe_after(module: str, setup: Callable[[], Awaitable[str]], env: dict[str, str]) -> dict[str, Any]:
    """Runs `python -m module` (with `env` added to the environment) in two steps: once it has
    printed its first line (it is ready), `setup()` runs here and its answer goes to the
    probe's standard input as one line; then its result."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", module, cwd=ROOT, env=probe_env(env),
                                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        if not await process.stdout.readline():
            raise RuntimeError(f"{module} ended before it was ready (its errors are above)")
        process.stdin.write((await setup()).encode() + b"\n")
        await process.stdin.drain()
        process.stdin.close()
    except BaseException:
        await _ended(process)
        raise
    return await _finished(module, process)


async def _finished(module: str, process: asyncio.subprocess.Process) -> dict[str, Any]:
    try:
        stdout, _ = await process.communicate()
    except BaseException:
        await _ended(process)
        raise
    assert process.returncode is not None
    return _result(module, process.returncode, stdout)


async def _ended(process: asyncio.subprocess.Process) -> None:
    """Kills `process` unless it has ended, and reaps it."""
    if process.returncode is None:
        process.kill()
        await process.wait()


async def spawn_server(module: str, port: int, args: list[str], env: dict[str, str] | None = None,
                       ready_within: float = 30.0) -> subprocess.Popen[bytes]:
    """Starts `python -m module port *args` (a gRPC server on `port`) and returns once it
    accepts calls."""
    server = subprocess.Popen([sys.executable, "-m", module, str(port), *args], cwd=ROOT,
                              env=env if env is not None else probe_env())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), ready_within)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=10)
