"""`python -m services.common.healthcheck HOST:PORT`: exit 0 when the gRPC health service
reports SERVING (used by container health checks)."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vault_client.config import local_address


def main(argv: list[str]) -> int:
    target = argv[0] if argv else local_address("vault_manager")
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError as exc:
            print(f"{target}: {exc}", file=sys.stderr)
            return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
