"""A bare grpc.aio server whose one unary method returns its request bytes: the ceiling the
mesh benchmark compares the services' hot path with. `python -m bench.echo_server PORT`;
with `--observed`, the same handler wrapped by the services' `Observability` (request id,
status mapping, metrics), which bench_grpc_wrapper.py compares with the bare one."""

from __future__ import annotations

import sys

import grpc

from services.common import event_loop
from services.common.observability import Observability

METHOD = "/bench.Echo/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def main(port: int, observed: bool = False) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    handler = grpc.unary_unary_rpc_method_handler(echo, request_deserializer=_identity, response_serializer=_identity)
    if observed:
        handler = Observability("echo").wrap(handler, "Echo")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    event_loop.run(main(int(sys.argv[1]), "--observed" in sys.argv[2:]))
