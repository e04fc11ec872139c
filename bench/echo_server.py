"""A bare grpc.aio server whose one unary method returns its request bytes: the ceiling the
mesh benchmark compares the services' hot path with. `python -m bench.echo_server PORT`."""

from __future__ import annotations

import sys

import grpc

from services.common import event_loop

METHOD = "/bench.Echo/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def main(port: int) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(
        echo, request_deserializer=_identity, response_serializer=_identity)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    event_loop.run(main(int(sys.argv[1])))
