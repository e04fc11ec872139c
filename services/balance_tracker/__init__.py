"""balance_tracker: indexes the vault program's events into PostgreSQL (exactly one active
indexer per deployment), keeps the Redis cache and event stream, takes snapshots,
reconciles with the chain, and serves BalanceTracker (gRPC 50052, metrics 9102)."""
