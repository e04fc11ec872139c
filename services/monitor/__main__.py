"""`python -m services.monitor`"""

from services.common.runner import serve
from services.monitor.app import MonitorApp, settings

if __name__ == "__main__":
    config = settings()
    serve(config, MonitorApp(config))
