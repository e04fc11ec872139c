"""The bare echo server the load-generator tests drive, one per test module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench import echo_server
from localnet.node_harness import free_port


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    port = free_port()
    server = asyncio.run(echo_server.spawn(port))
    try:
        yield port
    finally:
        echo_server.stop(server)
