"""The status a gRPC call ends with, for tests that expect refusals."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc


async def status_of(call: Awaitable[Any]) -> grpc.StatusCode:
    """OK, or the code the call failed with."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
