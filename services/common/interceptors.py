"""grpc.aio server interceptors: request ids, error mapping and metrics, around every
unary and server-streaming handler."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.common import log
from services.common.errors import ServiceError
from services.common.metrics import GRPC_IN_FLIGHT, GRPC_LATENCY, GRPC_REQUESTS

logger = logging.getLogger("grpc")
# Request ids: the caller's x-request-id, else this process's prefix and a counter (unique,
# and far cheaper than a UUID per call).
_PROCESS = uuid.uuid4().hex[:8]
_COUNTER = itertools.count(1)


def _metadata(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for item in details.invocation_metadata or ():
        if item.key == key:
            value = item.value
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Sets the request id, maps `ServiceError` (and unexpected failures, as INTERNAL with no
    internals leaked) to a status, and records requests, codes and latency."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._in_flight = GRPC_IN_FLIGHT.labels(service)
        self._children: dict[tuple[str, str], Any] = {}

    def _requests(self, method: str, code: str) -> Any:
        key = (method, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = GRPC_REQUESTS.labels(self.service, method, code)
        return child

    def _latency(self, method: str) -> Any:
        key = (method, "")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = GRPC_LATENCY.labels(self.service, method)
        return child

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method.rsplit("/", 1)[-1] if details.method else "?"
        rid = _metadata(details, "x-request-id") or f"{_PROCESS}-{next(_COUNTER):x}"

        async def fail(context: grpc.aio.ServicerContext, exc: BaseException) -> str:
            if isinstance(exc, ServiceError):
                await context.abort(exc.code, exc.message)
            logger.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})")
            raise AssertionError("unreachable")

        def finish(start: float, code: str) -> None:
            self._requests(method, code).inc()
            self._latency(method).observe(time.perf_counter() - start)
            self._in_flight.dec()

        def code_of(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
            if isinstance(exc, ServiceError):
                return exc.code.name
            status = context.code()
            if isinstance(status, grpc.StatusCode):
                return status.name
            return "OK" if exc is None else "INTERNAL"

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                log.request_id.set(rid)
                self._in_flight.inc()
                start, error = time.perf_counter(), None
                try:
                    return await inner(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    error = exc
                    await fail(context, exc)
                finally:
                    finish(start, code_of(context, error))

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)

        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                log.request_id.set(rid)
                self._in_flight.inc()
                start, error = time.perf_counter(), None
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    error = exc
                    await fail(context, exc)
                finally:
                    finish(start, code_of(context, error))

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler
