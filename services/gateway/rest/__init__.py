"""The gateway's REST API: vaults and their history (`vaults.py`), unsigned transactions and
submission (`transactions.py`, request bodies parsed in `body.py`), the TVL (`tvl.py`),
readiness (`health.py`) and the OpenAPI document (`openapi.py`)."""
