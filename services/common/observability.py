"""Request ids, error mapping and metrics around every unary and server-streaming gRPC
handler.

The handlers are wrapped once, when a servicer is registered (`instrumented`), not by a
grpc.aio ServerInterceptor: an interceptor runs a coroutine chain inside grpc for every call
just to find the handler, which cost GetVault about a tenth of its rate
(bench/bench_mesh.py). What each call gets is the same: the caller's x-request-id (or a new
one) in the log context, `ServiceError` as its status, anything unexpected as INTERNAL with
no internals leaked, and requests, codes, latency and in-flight calls in Prometheus."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator
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


class Observability:
    """Wraps method handlers: sets the request id, maps `ServiceError` (and unexpected
    failures, as INTERNAL with no internals leaked) to a status, and records requests, codes
    and latency."""

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

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
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

        # The unary and streaming wrappers repeat one try/except shape on purpose: sharing it
        # through a context manager would add a generator and two awaits to every call.
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


class _InstrumentingServer:
    """What generated `add_*Servicer_to_server` functions call, with every handler wrapped
    before it reaches the real server."""

    def __init__(self, server: grpc.aio.Server, observability: Observability) -> None:
        self._server = server
        self._observability = observability

    def _wrapped(self, handlers: dict[str, grpc.RpcMethodHandler]) -> dict[str, grpc.RpcMethodHandler]:
        return {name: self._observability.wrap(handler, name) for name, handler in handlers.items()}

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(service, self._wrapped(handlers))

    def add_generic_rpc_handlers(self, generic_handlers: Any) -> None:
        for generic in generic_handlers:
            service = generic.service_name()
            by_path = getattr(generic, "_method_handlers", None)  # "/package.Service/Method" -> handler
            if by_path is None:
                raise TypeError(f"cannot instrument the handlers of {service}")
            handlers = {path.rsplit("/", 1)[-1]: handler for path, handler in by_path.items()}
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, self._wrapped(handlers)),))


def instrumented(server: grpc.aio.Server, service: str) -> Any:
    """A stand-in for `server` to pass to generated `add_*Servicer_to_server` functions: the
    servicer's handlers are registered wrapped by `Observability`."""
    return _InstrumentingServer(server, Observability(service))
