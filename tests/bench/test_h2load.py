"""The mesh benchmark's compiled load generator (bench/h2load.py) against the bare echo
server over a socket: what it reports, and that a failed gRPC call (HTTP 200 all the same)
shows in the bytes that came back, which is how the benchmark proves every call succeeded."""

from __future__ import annotations

from bench import h2load
from bench.echo_server import METHOD

CALLS = 300
MESSAGE = b"\x0a\x20" + b"k" * 32  # any protobuf-shaped bytes: the echo returns them


async def test_every_call_is_answered_and_timed(echo_port: int) -> None:
    result = await h2load.unary(echo_port, METHOD, MESSAGE, 4, CALLS, 60)
    assert result["calls"] == CALLS and result["concurrency"] == 4
    assert result["response_bytes"] == CALLS * len(h2load.grpc_frame(MESSAGE))
    assert result["rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]


async def test_a_failed_grpc_call_returns_no_message_bytes(echo_port: int) -> None:
    # UNIMPLEMENTED comes back as HTTP 200 with the status in the trailers: h2load counts it
    # as done, and only the missing response bytes tell
    result = await h2load.unary(echo_port, "/bench.Echo/Missing", MESSAGE, 2, 50, 60)
    assert result["calls"] == 50 and result["response_bytes"] == 0


def test_grpc_frame_is_length_prefixed_and_uncompressed() -> None:
    assert h2load.grpc_frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
