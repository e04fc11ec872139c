"""`python -m services.vault_manager`"""

from services.common import runner
from services.vault_manager.app import VaultManagerApp, settings

if __name__ == "__main__":
    runner.main("vault_manager", settings, VaultManagerApp)
