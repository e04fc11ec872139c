"""`python -m services.cpi_manager`"""

from services.common import runner
from services.cpi_manager.app import CpiManagerApp, settings

if __name__ == "__main__":
    runner.main("cpi_manager", settings, CpiManagerApp)
