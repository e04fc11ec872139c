"""grpc.aio server bootstrap shared by every service: TLS or mutual TLS and the
authorization policy (grpc_tls.py, auth.py), the standard health service (also alone on a
plaintext port for probes that cannot speak TLS, when GRPC_HEALTH_PORT is set), server
reflection, observability around every handler, Prometheus metrics on a separate port, and
graceful shutdown on SIGTERM/SIGINT (health goes NOT_SERVING, in-flight calls drain)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common import grpc_tls
from services.common.auth import Guard
from services.common.metrics import serve_metrics
from services.common.observability import ObservingInterceptor
from vault_client import event_loop
from vault_client.config import Settings

logger = logging.getLogger("server")

# (register function, full service name) for each servicer a service exposes.
Registration = tuple[Callable[[Any], None], str]


def registration(servicer: object, pb2: ModuleType, pb2_grpc: ModuleType, name: str) -> Registration:
    """The registration of `servicer` as service `name` from its generated modules."""
    add = getattr(pb2_grpc, f"add_{name}Servicer_to_server")
    return (lambda server: add(servicer, server)), pb2.DESCRIPTOR.services_by_name[name].full_name


def keepalive_options(settings: Settings) -> list[tuple[str, int]]:
    """The server pings each connection every `grpc_keepalive_seconds`, also while a stream
    sends nothing, and drops the connection (with its streams) when a ping is not answered
    within `grpc_keepalive_timeout_seconds`: a peer that vanished without closing does not hold
    streams forever. (This grpcio enforces the answer's deadline through
    grpc.http2.ping_timeout_ms; keepalive_timeout_ms alone did not drop such a peer.)"""
    timeout_ms = int(settings.grpc_keepalive_timeout_seconds * 1000)
    return [("grpc.keepalive_time_ms", int(settings.grpc_keepalive_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", timeout_ms),
            ("grpc.http2.ping_timeout_ms", timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0)]


@dataclass
class GrpcService:
    settings: Settings
    registrations: Sequence[Registration]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    server: grpc.aio.Server | None = None
    health_server: grpc.aio.Server | None = None
    health: health.aio.HealthServicer | None = None
    port: int = 0

    async def start(self, *, metrics: bool = True) -> None:
        security = self.settings.security
        guard = Guard.for_security(security)  # the principals file is read before anything listens
        credentials = grpc_tls.server_credentials(security)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        observed = [health_name, *(name for _, name in self.registrations)]  # every handler observed and guarded
        self.server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * 1024 * 1024),
                                               *keepalive_options(self.settings)],
                                      interceptors=[ObservingInterceptor(self.settings.service, observed, guard)])
        names = [health_name, reflection.SERVICE_NAME]
        for register, name in self.registrations:
            register(self.server)
            names.append(name)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(names, self.server)
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        self.port = (self.server.add_secure_port(address, credentials) if credentials is not None
                     else self.server.add_insecure_port(address))
        if self.port == 0:
            raise RuntimeError(f"cannot bind {address}")
        if security.health_port:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            if self.health_server.add_insecure_port(f"{self.settings.grpc_host}:{security.health_port}") == 0:
                raise RuntimeError(f"cannot bind {self.settings.grpc_host}:{security.health_port}")
            await self.health_server.start()
        await self.server.start()
        if metrics and self.settings.metrics_port:
            serve_metrics(self.settings.grpc_host, self.settings.metrics_port)
        for _, name in self.registrations:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        logger.info("serving %s on %s:%d (%s%s)", self.settings.service, self.settings.grpc_host, self.port,
                    "mutual TLS" if security.client_ca else "TLS" if security.tls else "plaintext",
                    ", authenticated" if guard.principals else "")

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(self.settings.shutdown_grace_seconds)
        if self.health_server is not None:
            await self.health_server.stop(None)
        for hook in self.on_stop:
            await hook()

    async def run_until_signalled(self) -> None:
        await event_loop.stop_requested().wait()
        logger.info("shutting down %s (grace %.0f s)", self.settings.service, self.settings.shutdown_grace_seconds)
        await self.stop()


@dataclass
class ServiceApp:
    """What each service's app shares: its settings, its gRPC server, and stopping it."""

    settings: Settings
    grpc: GrpcService | None = field(default=None, kw_only=True)

    async def stop(self) -> None:
        if self.grpc:
            await self.grpc.stop()
