"""`python -m services.cpi_manager`"""

from services.common.runner import serve
from services.cpi_manager.app import CpiManagerApp, settings

if __name__ == "__main__":
    config = settings()
    serve(config, CpiManagerApp(config))
