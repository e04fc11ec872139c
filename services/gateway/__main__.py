"""`python -m services.gateway`"""

from __future__ import annotations

from services.common import event_loop, log
from services.common.heap import freeze_startup_heap
from services.gateway.app import Gateway, GatewayConfig


async def main() -> None:
    log.configure("gateway")
    gateway = Gateway(GatewayConfig())
    await gateway.start()
    freeze_startup_heap()
    await event_loop.stop_requested().wait()
    await gateway.stop()


if __name__ == "__main__":
    event_loop.run(main())
