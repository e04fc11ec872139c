"""`python -m services.monitor`"""

from services.common import runner
from services.monitor.app import MonitorApp, settings

if __name__ == "__main__":
    runner.main("monitor", settings, MonitorApp)
