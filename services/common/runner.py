"""The entry point every service shares: JSON logging, start, serve until SIGTERM/SIGINT,
graceful stop."""

from __future__ import annotations

from typing import Protocol

from services.common import event_loop, log
from services.common.config import Settings
from services.common.grpc_server import GrpcService
from services.common.heap import freeze_startup_heap, observe_collector_pauses


class App(Protocol):
    grpc: GrpcService | None

    async def start(self, *, metrics: bool = True) -> None: ...


def serve(settings: Settings, app: App) -> None:
    async def main() -> None:
        log.configure(settings.service, settings.log_level)
        await app.start()
        freeze_startup_heap()
        observe_collector_pauses(settings.service)
        assert app.grpc is not None
        await app.grpc.run_until_signalled()

    event_loop.run(main())
