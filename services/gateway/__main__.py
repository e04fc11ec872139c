"""`python -m services.gateway`"""

from __future__ import annotations

from services.common import log, runner
from services.gateway.app import Gateway
from vault_client import event_loop
from vault_client.config import ConfigError, GatewayConfig
from vault_client.heap import freeze_startup_heap


async def main(config: GatewayConfig) -> None:
    log.configure("gateway", secret_urls=config.endpoint_urls)
    gateway = Gateway(config)
    await gateway.start()
    freeze_startup_heap()
    await event_loop.stop_requested().wait()
    await gateway.stop()


if __name__ == "__main__":
    try:
        settings = GatewayConfig()
    except ConfigError as exc:
        runner.refuse("gateway", exc)
    event_loop.run(main(settings))
