"""`python -m services.cpi_manager`"""

from __future__ import annotations

import asyncio

from services.common import log
from services.cpi_manager.app import CpiManagerApp, settings


async def main() -> None:
    s = settings()
    log.configure(s.service, s.log_level)
    app = CpiManagerApp(s)
    await app.start()
    assert app.grpc is not None
    await app.grpc.run_until_signalled()


if __name__ == "__main__":
    asyncio.run(main())
