"""`python -m services.vault_manager`"""

from services.common.runner import serve
from services.vault_manager.app import VaultManagerApp, settings

if __name__ == "__main__":
    config = settings()
    serve(config, VaultManagerApp(config))
