"""`python -m services.balance_tracker`"""

from services.balance_tracker.app import BalanceTrackerApp, settings
from services.common.runner import serve

if __name__ == "__main__":
    config = settings()
    serve(config, BalanceTrackerApp(config))
