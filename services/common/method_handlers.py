"""A method handler like another (same kind, same request and response (de)serializers)
with other behaviour: what the wrappers around every handler (observability.py, auth.py)
register in the handler's place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Stream = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


def unary_like(handler: grpc.RpcMethodHandler, behaviour: Unary) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=handler.request_deserializer,
                                               response_serializer=handler.response_serializer)


def stream_like(handler: grpc.RpcMethodHandler, behaviour: Stream) -> grpc.RpcMethodHandler:
    return grpc.unary_stream_rpc_method_handler(behaviour, request_deserializer=handler.request_deserializer,
                                                response_serializer=handler.response_serializer)
