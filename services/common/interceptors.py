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


def _request_id(context: grpc.aio.ServicerContext) -> str:
    """The caller's x-request-id, else a new one."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return value.decode() if isinstance(value, bytes) else str(value)
    return f"{_PROCESS}-{next(_COUNTER):x}"


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """Sets the request id, maps `ServiceError` (and unexpected failures, as INTERNAL with no
    internals leaked) to a status, and records requests, codes and latency."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._in_flight = GRPC_IN_FLIGHT.labels(service)
        self._children: dict[tuple[str, str], Any] = {}
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

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
        """Wraps each method's handler once (handlers are static per method), not per call."""
        key = details.method or "?"
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            handler = await continuation(details)
            if handler is None:
                return handler
            wrapped = self._wrapped[key] = self._wrap(handler, key.rsplit("/", 1)[-1])
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        requests_ok = self._requests(method, "OK")
        latency = self._latency(method)

        def begin(context: grpc.aio.ServicerContext) -> str:
            rid = _request_id(context)
            log.request_id.set(rid)
            self._in_flight.inc()
            return rid

        async def fail(context: grpc.aio.ServicerContext, exc: BaseException, rid: str) -> None:
            if isinstance(exc, ServiceError):
                await context.abort(exc.code, exc.message)
            logger.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})")

        def finish(start: float, context: grpc.aio.ServicerContext, outcome: BaseException | None) -> None:
            if outcome is None:
                requests_ok.inc()
            elif isinstance(outcome, ServiceError):
                self._requests(method, outcome.code.name).inc()
            else:  # aborted by the handler, or unexpected (then INTERNAL)
                status = context.code()
                self._requests(method, status.name if isinstance(status, grpc.StatusCode) else "INTERNAL").inc()
            latency.observe(time.perf_counter() - start)
            self._in_flight.dec()

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                rid = begin(context)
                start, outcome = time.perf_counter(), None
                try:
                    return await inner(request, context)
                except grpc.aio.AbortError as exc:
                    outcome = exc
                    raise
                except Exception as exc:
                    outcome = exc
                    await fail(context, exc, rid)
                finally:
                    finish(start, context, outcome)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)

        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                rid = begin(context)
                start, outcome = time.perf_counter(), None
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except grpc.aio.AbortError as exc:
                    outcome = exc
                    raise
                except Exception as exc:
                    outcome = exc
                    await fail(context, exc, rid)
                finally:
                    finish(start, context, outcome)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler
