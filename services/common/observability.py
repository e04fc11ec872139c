"""Request ids, error mapping and metrics around every unary and server-streaming gRPC
handler, installed as a standard `grpc.aio.ServerInterceptor` (`ObservingInterceptor`).

What each call gets: the caller's x-request-id (or a new one) in the log context,
`ServiceError` as its status, anything unexpected as INTERNAL with no internals leaked, and
requests, codes, latency and in-flight calls in Prometheus. The interceptor returns, for each
method, a handler built once with grpc's public `unary_unary_rpc_method_handler` /
`unary_stream_rpc_method_handler` (method_handlers.py) and kept: per call it adds grpc's
interceptor step and a dictionary look-up (bench/bench_grpc_wrapper.py measures it against
the same wrapper installed without an interceptor)."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pool

from services.common import log
from services.common.auth import Guard, required_role
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


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """The services' one server interceptor: each call of a method of `services` gets its
    handler wrapped by `guard` (for the RPCs that need a role) inside `Observability`, so a
    refusal is a status like any. A method's wrapped handler is built on its first call and
    kept (as long as grpc finds the same handler for it), so a call costs grpc's interceptor
    step and a dictionary look-up. Which RPCs need a role is decided here, at start, from the
    services' descriptors: an RPC that `auth` does not classify stops the server before it
    listens, as before any call."""

    def __init__(self, service: str, services: Iterable[str] = (), guard: Guard | None = None) -> None:
        self._observability = Observability(service)
        self._guard = guard or Guard(None)
        self._services = frozenset(services)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        pool = descriptor_pool.Default()
        for name in self._services:
            try:
                methods = pool.FindServiceByName(name).methods
            except KeyError:  # no descriptor (a hand-made generic handler): checked when first called
                continue
            for method in methods:
                required_role(f"{name}/{method.name}")  # raises ConfigError for an unclassified RPC

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
            handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        path = handler_call_details.method  # "/package.Service/Method"
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:
            return known[1]
        if handler is None:
            return None
        service, _, method = path[1:].rpartition("/")
        if service not in self._services:
            return handler  # e.g. server reflection: neither observed nor guarded
        wrapped = self._observability.wrap(self._guard.wrap(handler, f"{service}/{method}"), method)
        self._wrapped[path] = (handler, wrapped)
        return wrapped
