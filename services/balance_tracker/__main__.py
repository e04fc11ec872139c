"""`python -m services.balance_tracker`"""

from __future__ import annotations

import asyncio

from services.balance_tracker.app import BalanceTrackerApp, settings
from services.common import log


async def main() -> None:
    s = settings()
    log.configure(s.service, s.log_level)
    app = BalanceTrackerApp(s)
    await app.start()
    assert app.grpc is not None
    await app.grpc.run_until_signalled()


if __name__ == "__main__":
    asyncio.run(main())
