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
from services.common.auth import Guard
from services.common.errors import ServiceError
from services.common.grpc_metrics import GRPC_SERVER
from services.common.method_handlers import stream_like, unary_like

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


class _RequestId:
    """A call's request id, read from its metadata only when something asks for it (a log
    line, an error's message): most calls never do, and reading the metadata costs about as
    much as the rest of the wrapper."""

    __slots__ = ("_context", "_value")

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context: grpc.aio.ServicerContext | None = context
        self._value = ""

    def __str__(self) -> str:
        if self._context is not None:
            self._value, self._context = _request_id(self._context), None
        return self._value


class Observability:
    """Wraps method handlers: sets the request id, maps `ServiceError` (and unexpected
    failures, as INTERNAL with no internals leaked) to a status, and records requests, codes
    and latency."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._stats = GRPC_SERVER.service(service)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        service, calls = self._stats, self._stats.method(method)

        def begin(context: grpc.aio.ServicerContext) -> _RequestId:
            rid = _RequestId(context)
            log.request_id.set(rid)
            service.in_flight += 1
            return rid

        async def fail(context: grpc.aio.ServicerContext, exc: BaseException, rid: _RequestId) -> None:
            if isinstance(exc, ServiceError):
                await context.abort(exc.code, exc.message)
            logger.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {rid})")

        def finish(start: float, context: grpc.aio.ServicerContext, outcome: BaseException | None) -> None:
            if outcome is None:
                code = "OK"
            elif isinstance(outcome, ServiceError):
                code = outcome.code.name
            else:  # aborted by the handler, or unexpected (then INTERNAL)
                status = context.code()
                code = status.name if isinstance(status, grpc.StatusCode) else "INTERNAL"
            calls.record(code, time.perf_counter() - start)
            service.in_flight -= 1

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

            return unary_like(handler, unary)

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

            return stream_like(handler, stream)
        return handler


class _InstrumentingServer:
    """What generated `add_*Servicer_to_server` functions call, with every handler wrapped
    before it reaches the real server: the authorization check (`auth.Guard`, for the RPCs
    that need a role) inside the observability wrapper, so a refusal is a status like any."""

    def __init__(self, server: grpc.aio.Server, observability: Observability, guard: Guard) -> None:
        self._server = server
        self._observability = observability
        self._guard = guard

    def _wrapped(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> dict[str, grpc.RpcMethodHandler]:
        return {name: self._observability.wrap(self._guard.wrap(handler, f"{service}/{name}"), name)
                for name, handler in handlers.items()}

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(service, self._wrapped(service, handlers))

    def add_generic_rpc_handlers(self, generic_handlers: Any) -> None:
        for generic in generic_handlers:
            service = generic.service_name()
            by_path = getattr(generic, "_method_handlers", None)  # "/package.Service/Method" -> handler
            if by_path is None:
                raise TypeError(f"cannot instrument the handlers of {service}")
            handlers = {path.rsplit("/", 1)[-1]: handler for path, handler in by_path.items()}
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, self._wrapped(service, handlers)),))


def instrumented(server: grpc.aio.Server, service: str, guard: Guard | None = None) -> Any:
    """A stand-in for `server` to pass to generated `add_*Servicer_to_server` functions: the
    servicer's handlers are registered wrapped by `Observability` (and `guard`'s checks)."""
    return _InstrumentingServer(server, Observability(service), guard or Guard(None))
