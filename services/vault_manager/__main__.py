"""`python -m services.vault_manager`"""

from __future__ import annotations

import asyncio

from services.common import log
from services.vault_manager.app import VaultManagerApp, settings


async def main() -> None:
    s = settings()
    log.configure(s.service, s.log_level)
    app = VaultManagerApp(s)
    await app.start()
    assert app.grpc is not None
    await app.grpc.run_until_signalled()


if __name__ == "__main__":
    asyncio.run(main())
