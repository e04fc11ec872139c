"""The entry point every service shares: settings checked, JSON logging, start, serve until
SIGTERM/SIGINT, graceful stop. A refused configuration or chain (`ConfigError`,
`ClusterMismatch`) stops the process with exit status 2 and one line saying why."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Protocol

from services.common import log, loop_lag
from services.common.cluster import ClusterMismatch
from services.common.gc_pauses import observe_collector_pauses
from services.common.grpc_server import GrpcService
from vault_client import event_loop
from vault_client.config import ConfigError, Settings
from vault_client.heap import freeze_startup_heap

REFUSED = 2  # the exit status of a process that refused its configuration or chain


class App(Protocol):
    grpc: GrpcService | None

    async def start(self, *, metrics: bool = True) -> None: ...


def refuse(service: str, reason: BaseException) -> None:
    print(f"{service}: refusing to start: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(REFUSED)


def serve(settings: Settings, app: App) -> None:
    async def main() -> None:
        log.configure(settings.service, settings.log_level, settings.endpoint_urls)
        try:
            await app.start()
        except (ClusterMismatch, ConfigError) as exc:  # the chain, or e.g. the principals file
            logging.getLogger("server").error("refusing to start: %s", exc)
            refuse(settings.service, exc)
        freeze_startup_heap()
        observe_collector_pauses(settings.service)
        lag = asyncio.create_task(loop_lag.watch(settings.service))
        assert app.grpc is not None
        try:
            await app.grpc.run_until_signalled()
        finally:
            lag.cancel()

    event_loop.run(main())


def main(service: str, settings: Callable[[], Settings], app: Callable[[Settings], App]) -> None:
    """`python -m services.<service>`: its settings from the environment, then `serve`."""
    try:
        config = settings()
    except ConfigError as exc:
        refuse(service, exc)
    serve(config, app(config))
