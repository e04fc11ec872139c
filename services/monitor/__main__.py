"""`python -m services.monitor`"""

from __future__ import annotations

import asyncio

from services.common import log
from services.monitor.app import MonitorApp, settings


async def main() -> None:
    s = settings()
    log.configure(s.service, s.log_level)
    app = MonitorApp(s)
    await app.start()
    assert app.grpc is not None
    await app.grpc.run_until_signalled()


if __name__ == "__main__":
    asyncio.run(main())
