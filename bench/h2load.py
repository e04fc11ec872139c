"""Unary gRPC load from h2load, nghttp2's compiled HTTP/2 load generator (Debian package
nghttp2-client; scripts/bootstrap.sh installs it for `make test` and `make bench`).

A Python grpc.aio caller spends about as much CPU per call as the server it measures
(0.2 ms against 0.3 ms, measured here), and on a 2-core machine the two compete: the rate
and the tail then describe the caller as much as the server. h2load sends the same gRPC
request (one HTTP/2 connection, N streams in flight, like one channel with N callers) for
a few microseconds of CPU each, so what it measures is the server. The benchmark that
shows it is bench/bench_mesh.py, which drives the same servers with both: the bare echo at
12,781/s under h2load and 8,235/s under a grpc.aio client on the same cores (bench/README.md's
latest results); this module's own code is the few lines that run the binary and read its
report.

h2load knows HTTP, not gRPC: a call that fails in gRPC still answers HTTP 200 (its status
is in the trailers). Callers therefore prove every call succeeded some other way: the
echo by the bytes that came back (each answer is its request, so an error's empty answer
shows), a service by its own `grpc_server_requests_total{code="OK"}`.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

from vault_client.readings import pct


def grpc_frame(message: bytes) -> bytes:
    """A length-prefixed, uncompressed gRPC message (what goes in the request's DATA frame)."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def require() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise RuntimeError("h2load not found: `make bench` installs it (scripts/bootstrap.sh, Debian "
                           "package nghttp2-client)")
    return path


async def unary(port: int, method: str, message: bytes, concurrency: int, calls: int,
                time_cap_s: float) -> dict[str, Any]:
    """`calls` unary calls of `method` with `message`, `concurrency` in flight on one
    connection. Returns the rate, p50/p99 from h2load's per-request log, and the bytes of
    response data received (gRPC frames included)."""
    with tempfile.TemporaryDirectory(prefix="h2load") as scratch:
        body, log = Path(scratch) / "request.bin", Path(scratch) / "requests.tsv"
        body.write_bytes(grpc_frame(message))
        process = await asyncio.create_subprocess_exec(
            require(), "--no-tls-proto=h2c", "-n", str(calls), "-c", "1", "-t", "1", "-m", str(concurrency),
            "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"--log-file={log}", f"http://127.0.0.1:{port}{method}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=time_cap_s)
        except TimeoutError:
            process.kill()
            partial, _ = await process.communicate()
            logged = log.read_text().splitlines() if log.exists() else []
            raise RuntimeError(f"h2load ({calls} calls of {method} on port {port}, {concurrency} in flight) "
                               f"did not finish within {time_cap_s:g} s; {len(logged)} requests logged, the last "
                               f"{logged[-3:]}; its output: {partial.decode(errors='replace')[-2000:]}") from None
        text = output.decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"h2load exited with {process.returncode}: {text[-2000:]}")
        rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    if not rows:
        raise RuntimeError(f"h2load logged no requests: {text[-2000:]}")
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", text)
    data = re.search(r"traffic: .*\((\d+)\) data", text)
    if done is None or data is None:
        raise RuntimeError(f"unexpected h2load output: {text[-2000:]}")
    starts = [int(row[0]) for row in rows]
    ends = [int(row[0]) + int(row[2]) for row in rows]
    latencies = [int(row[2]) / 1e6 for row in rows if row[1] == "200"]
    elapsed = (max(ends) - min(starts)) / 1e6
    return {"concurrency": concurrency, "calls": int(done[2]), "rps": round(len(latencies) / elapsed),
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99), "response_bytes": int(data[1])}
