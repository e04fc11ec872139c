-- Entries the services write through an outbox (services/common/audit_outbox.py: journaled
-- to a local file before the action, delivered to PostgreSQL afterwards and again after a
-- crash) carry a stable id, e.g. 'submit:<signature>'. The index makes a second delivery of
-- the same id a no-op, so an entry is stored exactly once however often it is written.
-- `owner` leads it, as it leads the table's primary key (the shard key).
ALTER TABLE audit_log ADD COLUMN entry_id TEXT;
CREATE UNIQUE INDEX audit_log_entry ON audit_log (owner, entry_id) WHERE entry_id IS NOT NULL;
