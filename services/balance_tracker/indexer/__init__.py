"""The indexer: follows both programs' transactions (subscription and backfill), checks each
vault's event numbers, writes events and vault rows to PostgreSQL in order through a write
pipeline, then updates the Redis cache and publishes live events. One active indexer per
deployment (a lease with fencing). Modules: `follower` (the Indexer), `backfill`, `pipeline`,
`gaps` and `repair`, `leadership`, `progress` and `watermark`, `publisher`."""
