"""`python -m services.balance_tracker`"""

from services.balance_tracker.app import BalanceTrackerApp, settings
from services.common import runner

if __name__ == "__main__":
    runner.main("balance_tracker", settings, BalanceTrackerApp)
