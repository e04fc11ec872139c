"""A bare grpc.aio server whose one unary method returns its request bytes: the ceiling the
mesh benchmark compares the services' hot path with. `python -m
services.common.perf_echo_server PORT`; with `--observed`, the same handler observed as the
services' handlers are (their `ObservingInterceptor`: request id, status mapping, metrics);
with `--direct`, the same wrapper put on the handler at registration, without an
interceptor (what the services did before they used grpc's public interceptor API).
bench/bench_grpc_wrapper.py compares the three, bench/bench_mesh.py measures the services
against the bare one (both start it through bench/echo_server.py: bench/ imports nothing
from services/)."""

from __future__ import annotations

import sys

import grpc

from vault_client import event_loop

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def handler(direct: bool = False) -> grpc.RpcMethodHandler:
    """The echo's method handler, bare or (`direct`) wrapped by the services' `Observability`."""
    bare = grpc.unary_unary_rpc_method_handler(_echo, request_deserializer=_identity, response_serializer=_identity)
    if not direct:
        return bare
    from services.common.observability import Observability  # the bare server loads none of the services' code

    return Observability("echo").wrap(bare, "Echo")


def interceptors(observed: bool) -> list[grpc.aio.ServerInterceptor]:
    """The services' interceptor observing the echo service, if `observed`."""
    if not observed:
        return []
    from services.common.observability import ObservingInterceptor

    return [ObservingInterceptor("echo", [SERVICE])]


async def main(port: int, observed: bool = False, direct: bool = False) -> None:
    server = grpc.aio.server(interceptors=interceptors(observed))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler(direct)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    event_loop.run(main(int(sys.argv[1]), "--observed" in sys.argv[2:], "--direct" in sys.argv[2:]))
