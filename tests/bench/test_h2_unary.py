"""The mesh benchmark's deposit submitter (bench/h2_unary.py) against the bare grpc.aio echo
server over a socket: every call answered with its own response, flow control past the
first windows both ways, a failed gRPC call failing (not answered with nothing), and the
wire encoding checked against RFC 7541's examples and an independent HPACK decoder."""

from __future__ import annotations

import asyncio
import os

import hpack
import pytest

from bench import echo_server
from bench.echo_server import METHOD
from bench.h2_unary import H2CallFailed, H2Unary, hpack_int, request_headers
from localnet.node_harness import free_port


async def test_each_call_gets_its_own_answer_past_every_flow_control_window(echo_port: int) -> None:
    client = await H2Unary.connect("127.0.0.1", echo_port, METHOD)
    try:
        messages = [os.urandom(500) for _ in range(600)]  # 300 KB each way: several 64 KB windows
        answers: list[bytes] = []
        for at in range(0, len(messages), 50):  # 50 in flight at a time, answered out of order or not
            answers += await asyncio.gather(*(client.call(m) for m in messages[at:at + 50]))
        assert answers == messages
        assert await client.call(b"") == b""  # an empty message is still a message
    finally:
        client.close()


async def test_a_failed_grpc_call_fails_and_the_connection_stays_usable(echo_port: int) -> None:
    missing = await H2Unary.connect("127.0.0.1", echo_port, "/bench.Echo/Missing")
    try:
        # UNIMPLEMENTED arrives as trailers alone (HTTP 200, no message): a failure here
        with pytest.raises(H2CallFailed, match="without a response message"):
            await missing.call(b"x")
        with pytest.raises(H2CallFailed):
            await missing.call(b"y")
    finally:
        missing.close()


async def test_calls_pending_when_the_server_goes_away_fail() -> None:
    port = free_port()
    server = await echo_server.spawn(port)
    client = await H2Unary.connect("127.0.0.1", port, METHOD)
    try:
        assert await client.call(b"before") == b"before"
        echo_server.stop(server)
        with pytest.raises(H2CallFailed):
            await asyncio.wait_for(client.call(b"after"), 10)
        with pytest.raises(H2CallFailed, match="closed"):
            await client.call(b"later")
    finally:
        client.close()


def test_hpack_integers_follow_rfc_7541_examples() -> None:
    assert hpack_int(10, 5) == b"\x0a"  # C.1.1
    assert hpack_int(1337, 5) == b"\x1f\x9a\x0a"  # C.1.2
    assert hpack_int(42, 8) == b"\x2a"  # C.1.3
    assert hpack_int(15, 4, 0x10) == b"\x1f\x00"


def test_request_headers_decode_as_grpc_needs_them() -> None:
    block = request_headers("/collateral_vault.v1.TransactionBuilder/SubmitTransaction", "127.0.0.1:50051")
    assert hpack.Decoder().decode(block) == [
        (":method", "POST"), (":scheme", "http"),
        (":path", "/collateral_vault.v1.TransactionBuilder/SubmitTransaction"), (":authority", "127.0.0.1:50051"),
        ("content-type", "application/grpc"), ("te", "trailers")]
