-- A global, commit-ordered sequence number per program event: the indexer (one leader,
-- fenced by its lease term, migration 007) numbers each batch's events in batch order before
-- writing them, and batches commit in that order, so the committed numbers only ever grow.
-- Live subscribers resume after an event by its number (services/balance_tracker/fanout.py:
-- the rows after it, then live events after the last row sent), which the old order
-- (slot, signature, ...) could not do: an event committed later may sort earlier. Numbers
-- of events that were already stored (a replay) stay unused: the sequence has gaps, never
-- reorderings.
ALTER TABLE transactions ADD COLUMN seq BIGINT;

-- Events indexed before this migration, numbered in the order they were indexed.
ALTER TABLE transactions DISABLE TRIGGER transactions_append_only;
UPDATE transactions AS t SET seq = numbered.seq
FROM (SELECT signature, instruction_index, event_index,
             row_number() OVER (ORDER BY indexed_at, slot, signature, instruction_index, event_index) AS seq
      FROM transactions) AS numbered
WHERE t.signature = numbered.signature AND t.instruction_index = numbered.instruction_index
  AND t.event_index = numbered.event_index;
ALTER TABLE transactions ENABLE TRIGGER transactions_append_only;

ALTER TABLE transactions ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX transactions_seq ON transactions (seq);
-- a resume for one owner: its events (and the transfers it received) after a number
CREATE INDEX transactions_owner_seq ON transactions (owner, seq);
CREATE INDEX transactions_counterparty_seq ON transactions (counterparty, seq) WHERE counterparty IS NOT NULL;

-- The append-only rule (migration 004) covers the new column: a number never changes.
CREATE OR REPLACE FUNCTION transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.commitment = 'processed' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'transactions is append-only: only unconfirmed (processed) events can be rolled back'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- every column but commitment (tests/services/test_indexer_store.py checks each column
    -- of the table is here, so a new column cannot slip past)
    IF ROW(NEW.owner, NEW.signature, NEW.instruction_index, NEW.event_index, NEW.kind, NEW.amount, NEW.counterparty,
           NEW.caller_program, NEW.total_balance, NEW.locked_balance, NEW.available_balance, NEW.slot,
           NEW.block_time, NEW.indexed_at, NEW.seq)
       IS DISTINCT FROM
       ROW(OLD.owner, OLD.signature, OLD.instruction_index, OLD.event_index, OLD.kind, OLD.amount, OLD.counterparty,
           OLD.caller_program, OLD.total_balance, OLD.locked_balance, OLD.available_balance, OLD.slot,
           OLD.block_time, OLD.indexed_at, OLD.seq) THEN
        RAISE EXCEPTION 'transactions is append-only: only the commitment of an event can change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
