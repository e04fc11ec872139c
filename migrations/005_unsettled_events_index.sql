-- Indexing at `processed`, the indexer's settle pass runs every second over the rows whose
-- signatures are not yet confirmed. This partial index holds just those (seconds of events),
-- so the pass never scans the whole transactions table.
CREATE INDEX transactions_unsettled ON transactions (slot) WHERE commitment = 'processed';
