"""The Python each server runs per call apart from gRPC itself, timed in process: the
bare echo's handler; the echo observed by the services' `ObservingInterceptor`; and GetVault
as vault_manager serves it (the generated `add_VaultManagerServicer_to_server`, the
interceptor, the servicer answering from memory), with the interceptor's step that finds
the call's handler, the request's parse and the answer's serialization that grpc.aio runs
around it. Each call's
coroutine is driven to completion directly (none of these handlers suspends on a memory
hit), with a stand-in for the call's context: on a successful call the wrapper asks it for
nothing. What this leaves out, the C and Cython of grpc.aio and the event loop, is the same
for every server, and bench/bench_grpc_wrapper.py measures it over real sockets.
`python -m services.vault_manager.perf_handler_path OWNER [CALLS PASSES]` prints the result
as JSON (bench_grpc_wrapper's `in_process`)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Coroutine
from statistics import median
from typing import Any

import grpc
from collateral_vault.v1 import vault_manager_pb2, vault_manager_pb2_grpc
from solders.pubkey import Pubkey

from services.common import perf_echo_server as echo_server
from services.common.observability import ObservingInterceptor
from services.vault_manager.perf_get_vault_server import servicer_holding
from vault_client import event_loop

CALLS = 100_000
PASSES = 5


class _Context:
    """What a successful call's wrapper may read of its context (it reads nothing)."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def code(self) -> None:
        return None


class _Registry:
    """Takes the handlers a generated `add_*Servicer_to_server` registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.handlers.update(handlers)

    def add_generic_rpc_handlers(self, generic_handlers: Any) -> None:
        """The same handlers again, for servers that look methods up this way; grpc.aio
        finds a call's registered handler first."""


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the handler suspended: it did not answer from memory")


class _Details(grpc.HandlerCallDetails):
    """What grpc.aio hands an interceptor about a call."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _intercepted(interceptor: ObservingInterceptor, path: str,
                 handler: grpc.RpcMethodHandler) -> Callable[[], grpc.RpcMethodHandler]:
    """The interceptor's step of one call: `handler` found by grpc, the interceptor's answer."""
    details = _Details(path)

    async def continuation(_: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return handler

    def find() -> grpc.RpcMethodHandler:
        found = _run(interceptor.intercept_service(continuation, details))
        assert found is not None
        return found

    return find


def call_paths(owner: Pubkey) -> dict[str, Callable[[bytes], bytes]]:
    """For each server, one call from request bytes to answer bytes, as grpc.aio runs it."""
    context = _Context()
    registry = _Registry()
    vault_manager_pb2_grpc.add_VaultManagerServicer_to_server(servicer_holding(owner), registry)
    service = vault_manager_pb2.DESCRIPTOR.services_by_name["VaultManager"].full_name

    def bare(handler: grpc.RpcMethodHandler) -> Callable[[bytes], bytes]:
        parse, serialize, handle = handler.request_deserializer, handler.response_serializer, handler.unary_unary
        return lambda request: serialize(_run(handle(parse(request), context)))

    def observed(find: Callable[[], grpc.RpcMethodHandler]) -> Callable[[bytes], bytes]:
        def call(request: bytes) -> bytes:
            handler = find()
            return handler.response_serializer(_run(handler.unary_unary(handler.request_deserializer(request),
                                                                        context)))
        return call

    echo = _intercepted(echo_server.interceptors(True)[0], echo_server.METHOD, echo_server.handler())
    get_vault = _intercepted(ObservingInterceptor("vault_manager", [service]), f"/{service}/GetVault",
                             registry.handlers["GetVault"])
    return {"bare_echo": bare(echo_server.handler()), "wrapped_echo": observed(echo), "get_vault": observed(get_vault)}


def measure(owner: Pubkey, calls: int = CALLS, passes: int = PASSES) -> dict[str, Any]:
    """Microseconds per call of each path, the median of `passes` interleaved passes."""
    paths = call_paths(owner)
    request = vault_manager_pb2.GetVaultRequest(owner=str(owner)).SerializeToString()
    answer = vault_manager_pb2.GetVaultResponse.FromString(paths["get_vault"](request))
    if answer.vault.owner != str(owner) or paths["bare_echo"](request) != request:
        raise RuntimeError("a call path did not answer as its server does")
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(passes):
        for name, call in paths.items():
            started = time.perf_counter()
            for _ in range(calls):
                call(request)
            timings[name].append((time.perf_counter() - started) * 1e6 / calls)
    return {"calls_per_pass": calls, "passes": passes,
            "us_per_call": {name: round(median(t), 2) for name, t in timings.items()}}


async def _in_a_loop(owner: Pubkey, calls: int = CALLS, passes: int = PASSES) -> dict[str, Any]:
    """`measure` with an event loop running, as the benchmark measured it in its own loop."""
    return measure(owner, calls, passes)


if __name__ == "__main__":
    counts = [int(arg) for arg in sys.argv[2:4]]
    print(json.dumps(event_loop.run(_in_a_loop(Pubkey.from_string(sys.argv[1]), *counts))))
