"""The Transaction Builder (gRPC `TransactionBuilder`, served by vault_manager): unsigned
initialize / deposit / withdraw / close transactions (`service.py`) and the submission of
signed ones after the checks in `submission.py`. The chain-side assembly of a transaction
(blockhash, compute-unit limit, priority fee) is `services/common/tx_building.py`, shared
with cpi_manager."""
