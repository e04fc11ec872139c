-- Issue 25: the event ledger keeps only the indexes a query uses. Catching up after downtime
-- writes every event of the history, and each index is paid per event: COPYing 200,000
-- events in batches of 4,000 into a fresh ledger (4 events per transaction, 20,000 owners)
-- took 22-27 µs of PostgreSQL per event with the eleven indexes before this migration and
-- 12 µs with the seven after it.
--
-- * (owner, block_time, slot), (counterparty, block_time) and (slot): no query reads by them;
--   an owner's or counterparty's events are found by (owner, seq) and (counterparty, seq)
--   (GetHistory, the live feed, reconciliation's walk over owners).
-- * (kind, block_time) for every event: only the monitor's withdrawal window reads by time,
--   and only withdrawals: a partial index on block_time for kind = 'withdraw'.
-- * Two unique keys, (owner, signature, instruction_index, event_index) as the primary key and
--   (signature, instruction_index, event_index): the second alone makes an event unique (the
--   first is implied by it), so it becomes the primary key and the wider one goes. The
--   indexer's ON CONFLICT names these columns.
--
-- On a large ledger the new primary key is built under the table's lock (minutes for tens
-- of millions of events); the indexer waits for it.
DROP INDEX transactions_owner_time;
DROP INDEX transactions_counterparty_time;
DROP INDEX transactions_slot;
DROP INDEX transactions_kind_time;
CREATE INDEX transactions_withdrawals ON transactions (block_time) WHERE kind = 'withdraw';
ALTER TABLE transactions DROP CONSTRAINT transactions_pkey;
ALTER TABLE transactions DROP CONSTRAINT transactions_signature_instruction_index_event_index_key;
ALTER TABLE transactions ADD PRIMARY KEY (signature, instruction_index, event_index);
