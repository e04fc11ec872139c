"""bench_scale's latency probes under load, each in a process of its own that does nothing
else (issue 25): GetVault calls on a schedule (random vaults, `--rate`, `open_loop`: each
timed from when it was due), or a GetTvl loop. In bench_scale's own
process a call's latency also held its waits for that event loop, busy parsing 500-vault
ListVaults pages and signing deposits, so the load generator's stalls were counted as the
service's; and with the GetTvl loop in the GetVault callers' process (about a thousand calls
a second), a GetVault answer waited for that loop's work too: with the services otherwise
idle and 300 GetVault calls a second sent on a schedule from a process under uvloop, 2,457 of
4,501 took over 50 ms from send to answer (median 109 ms) with the loop in the process, and
none without it (median 1.9 ms, p99 5.9 ms).

`Readers` runs one as a subprocess (cwd = repo root): it connects, says `ready` on stdout,
calls until a line arrives on its stdin (or stdin closes), then writes one JSON object to
the file `--out` names: each call's latency in seconds, `{"get_vault": [...]}` or
`{"get_tvl": [...]}`, and how late the probe's own loop woke a look every 10 ms
(`get_vault_probe_lag` or `get_tvl_probe_lag`). The owners come in a file, one base58 key
per line. (The result once went through stdout; twice in a day a 200 KB result arrived with
a foreign line inside it.)

    python -m bench.scale_readers --method get_vault|get_tvl --vault-manager ADDR --monitor ADDR
        --owners FILE --out FILE [--rate R]"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import uvloop
from collateral_vault.v1 import vault_manager_pb2, vault_manager_pb2_grpc, vault_monitor_pb2, vault_monitor_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


METHODS = ("get_vault", "get_tvl")
GET_VAULT_RATE = 300.0  # GetVault calls a second (bench_scale's)
MAX_IN_FLIGHT = 1_000


async def read(method: str, vault_manager: str, monitor: str, owners: list[str], stop: asyncio.Event,
               ready: asyncio.Event | None = None, seed: int = 5, rate: float = GET_VAULT_RATE
               ) -> dict[str, list[float]]:
    """GetVault at `rate` calls a second on a schedule (`open_loop`), or one GetTvl loop, each
    call after the previous one returned (`method`), until `stop` is set; each call's latency
    in seconds."""
    latencies: dict[str, list[float]] = {method: []}
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(vault_manager) as vm, grpc.aio.insecure_channel(monitor) as mon:
        await asyncio.gather(vm.channel_ready(), mon.channel_ready())
        manager = vault_manager_pb2_grpc.VaultManagerStub(vm)
        tvl = vault_monitor_pb2_grpc.VaultMonitorStub(mon)

        async def tvl_loop() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                await tvl.GetTvl(vault_monitor_pb2.GetTvlRequest(), timeout=600)
                latencies["get_tvl"].append(time.perf_counter() - t0)

        if ready is not None:
            ready.set()
        watch = asyncio.create_task(own_lag(latencies.setdefault(f"{method}_probe_lag", []), stop))
        if method == "get_vault":
            await open_loop(lambda: manager.GetVault(vault_manager_pb2.GetVaultRequest(owner=rng.choice(owners)),
                                                     timeout=60), rate, stop, latencies["get_vault"])
        else:
            await tvl_loop()
        await watch
    return latencies


async def own_lag(lags: list[float], stop: asyncio.Event, interval: float = 0.01) -> None:
    """How much later than due this process's event loop woke a look every `interval` s,
    until `stop`: a late call whose probe was late too waited (at least partly) in the probe,
    not in the service."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + interval
        await asyncio.sleep(interval)
        lags.append(max(0.0, loop.time() - due))


async def open_loop(call: Callable[[], Awaitable[Any]], rate: float, stop: asyncio.Event,
                    latencies: list[float]) -> None:
    """`rate` calls a second on a fixed schedule until `stop` is set, each sent at its time
    whether or not earlier ones have answered; a call's latency runs from the time it was due,
    so a stall of this process or of the service counts for every call it delayed (no
    coordinated omission). At most MAX_IN_FLIGHT at once: beyond that the probe is overrun
    and says so."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    start = loop.time()

    async def one(due: float) -> None:
        await call()
        latencies.append(loop.time() - due)

    n = 0
    try:
        while not stop.is_set():
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(pending) >= MAX_IN_FLIGHT:
                raise RuntimeError(f"the open-loop probe is overrun: {len(pending)} calls unanswered at {rate}/s")
            task = asyncio.create_task(one(due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
        await asyncio.gather(*pending)
    finally:
        for task in pending:
            task.cancel()


class Readers:
    """The probe as a subprocess of the load generator: `start`, then `stop` for its latencies."""

    def __init__(self, method: str, vault_manager: str, monitor: str, owners: list[str],
                 rate: float = GET_VAULT_RATE) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if rate <= 0:
            raise ValueError(f"rate must be above 0 calls a second, got {rate}")
        self.args = ["--method", method, "--vault-manager", vault_manager, "--monitor", monitor,
                     "--rate", str(rate)]
        self.owners = owners
        self.process: asyncio.subprocess.Process | None = None
        self._file = ""
        self._out = ""

    async def start(self, timeout: float = 60.0) -> None:
        """Starts the probe and returns once it is calling; RuntimeError (the probe ended)
        if it is not within `timeout` seconds."""
        handle, self._file = tempfile.mkstemp(prefix="cvbench-owners-", suffix=".txt")
        out_handle, self._out = tempfile.mkstemp(prefix="cvbench-latencies-", suffix=".json")
        os.close(out_handle)
        with os.fdopen(handle, "w") as out:
            out.write("\n".join(self.owners))
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scale_readers", *self.args, "--owners", self._file, "--out", self._out,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except BaseException:
            await self.close()
            raise RuntimeError(f"bench.scale_readers was not calling within {timeout} s") from None
        if line.strip() != b"ready":
            await self.close()
            raise RuntimeError(f"bench.scale_readers did not start: {line[:200]!r}")

    async def stop(self) -> dict[str, list[float]]:
        """Stops the calls; each call's latency, by method."""
        assert self.process is not None and self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(b"stop\n")
            await self.process.stdin.drain()
            self.process.stdin.close()
            await asyncio.wait_for(self.process.stdout.read(), 120)  # to its end: the process has ended
            if await self.process.wait() != 0:
                raise RuntimeError(f"bench.scale_readers failed (exit {self.process.returncode})")
            try:
                result: dict[str, list[float]] = json.loads(Path(self._out).read_text())
            except ValueError as exc:
                raise RuntimeError(f"bench.scale_readers wrote no result: {exc}") from None
            return result
        finally:
            await self.close()

    async def close(self) -> None:
        """Ends the process if it still runs and removes its files (every path ends here)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for path in (self._file, self._out):
            if path:
                Path(path).unlink(missing_ok=True)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    owners = Path(args.owners).read_text().split()
    stop, ready = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    calls = asyncio.create_task(read(args.method, args.vault_manager, args.monitor, owners, stop, ready,
                                     rate=args.rate))
    await ready.wait()
    print("ready", flush=True)
    await stdin.readline()  # a line, or the end of stdin: stop
    stop.set()
    return await calls


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_readers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True, choices=METHODS, help="what to call")
    parser.add_argument("--vault-manager", required=True, help="VaultManager's address (host:port)")
    parser.add_argument("--monitor", required=True, help="VaultMonitor's address (host:port)")
    parser.add_argument("--owners", required=True, help="a file of vault owners, one per line")
    parser.add_argument("--out", required=True, help="the file to write the latencies to (JSON)")
    parser.add_argument("--rate", type=float, default=GET_VAULT_RATE,
                        help="GetVault calls a second, on a schedule (default %(default)s)")
    args = parser.parse_args(argv)
    result = json.dumps(uvloop.run(_main(args)))
    partial = f"{args.out}.partial"
    Path(partial).write_text(result)
    os.replace(partial, args.out)  # whole or not at all
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
