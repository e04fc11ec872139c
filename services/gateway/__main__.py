"""`python -m services.gateway`"""

from __future__ import annotations

import asyncio
import signal

from services.common import event_loop, log
from services.common.heap import freeze_startup_heap
from services.gateway.app import Gateway, GatewayConfig


async def main() -> None:
    log.configure("gateway")
    gateway = Gateway(GatewayConfig())
    await gateway.start()
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.stop()


if __name__ == "__main__":
    event_loop.run(main())
