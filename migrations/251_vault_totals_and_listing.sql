-- Issue 25: every "all vaults" answer comes from PostgreSQL, not from a scan of the chain.
--
-- 1. vault_totals: the TVL (sums over the open vaults, their count and the newest slot a
--    vault changed at), kept up to date by statement-level triggers on `vaults`: every
--    statement that writes vault rows (the indexer's batch, a rollback's resync) adjusts the
--    one row by the difference its rows made, in the same transaction. GetTvl reads one row.
--    Only the indexer writes vault rows (one leader), so the row is no point of contention.
-- 2. vaults_open_by_address: ListVaults' keyset (open vaults in address order). Its columns
--    never change in a vault's ordinary update, so those updates stay HOT (migration 003).
CREATE TABLE vault_totals (
    singleton         BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    total_balance     NUMERIC NOT NULL DEFAULT 0 CHECK (total_balance >= 0),
    locked_balance    NUMERIC NOT NULL DEFAULT 0 CHECK (locked_balance >= 0),
    available_balance NUMERIC NOT NULL DEFAULT 0 CHECK (available_balance >= 0),
    vault_count       BIGINT NOT NULL DEFAULT 0 CHECK (vault_count >= 0),
    slot              BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (total_balance = locked_balance + available_balance)
);

-- the backfill: the vault rows there are now
INSERT INTO vault_totals (total_balance, locked_balance, available_balance, vault_count, slot)
SELECT COALESCE(sum(total_balance) FILTER (WHERE closed_at IS NULL), 0),
       COALESCE(sum(locked_balance) FILTER (WHERE closed_at IS NULL), 0),
       COALESCE(sum(available_balance) FILTER (WHERE closed_at IS NULL), 0),
       count(*) FILTER (WHERE closed_at IS NULL), COALESCE(max(last_slot), 0)
FROM vaults;

-- One function for the three triggers: what the statement's new open rows add minus what
-- its old open rows held. (PL/pgSQL plans a query when it first runs it, so the branch
-- naming a transition table the trigger does not have is never planned.)
CREATE FUNCTION vault_totals_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_total NUMERIC := 0;
    d_locked NUMERIC := 0;
    d_available NUMERIC := 0;
    d_count BIGINT := 0;
    o_total NUMERIC := 0;
    o_locked NUMERIC := 0;
    o_available NUMERIC := 0;
    o_count BIGINT := 0;
    top BIGINT := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT COALESCE(sum(total_balance) FILTER (WHERE closed_at IS NULL), 0),
               COALESCE(sum(locked_balance) FILTER (WHERE closed_at IS NULL), 0),
               COALESCE(sum(available_balance) FILTER (WHERE closed_at IS NULL), 0),
               count(*) FILTER (WHERE closed_at IS NULL), COALESCE(max(last_slot), 0)
          INTO d_total, d_locked, d_available, d_count, top
          FROM vault_rows_new;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT COALESCE(sum(total_balance), 0), COALESCE(sum(locked_balance), 0),
               COALESCE(sum(available_balance), 0), count(*)
          INTO o_total, o_locked, o_available, o_count
          FROM vault_rows_old WHERE closed_at IS NULL;
    END IF;
    IF d_total <> o_total OR d_locked <> o_locked OR d_available <> o_available OR d_count <> o_count
            OR top > 0 THEN
        UPDATE vault_totals SET total_balance = total_balance + d_total - o_total,
                                locked_balance = locked_balance + d_locked - o_locked,
                                available_balance = available_balance + d_available - o_available,
                                vault_count = vault_count + d_count - o_count,
                                slot = GREATEST(slot, top), updated_at = now();
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER vault_totals_insert AFTER INSERT ON vaults REFERENCING NEW TABLE AS vault_rows_new
    FOR EACH STATEMENT EXECUTE FUNCTION vault_totals_follow();
CREATE TRIGGER vault_totals_update AFTER UPDATE ON vaults
    REFERENCING OLD TABLE AS vault_rows_old NEW TABLE AS vault_rows_new
    FOR EACH STATEMENT EXECUTE FUNCTION vault_totals_follow();
CREATE TRIGGER vault_totals_delete AFTER DELETE ON vaults REFERENCING OLD TABLE AS vault_rows_old
    FOR EACH STATEMENT EXECUTE FUNCTION vault_totals_follow();

-- TRUNCATE has no transition table: the totals start again from nothing
CREATE FUNCTION vault_totals_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE vault_totals SET total_balance = 0, locked_balance = 0, available_balance = 0, vault_count = 0,
                            updated_at = now();
    RETURN NULL;
END $$;
CREATE TRIGGER vault_totals_truncate AFTER TRUNCATE ON vaults
    FOR EACH STATEMENT EXECUTE FUNCTION vault_totals_reset();

CREATE INDEX vaults_open_by_address ON vaults (address) WHERE closed_at IS NULL;

-- The slot the indexed state (vault rows and vault_totals) holds every change up to: the
-- indexer's cursor, moved in the same transaction as the vault rows (or the newest vault
-- change, for rows written without a cursor). STABLE: read in the caller's snapshot, so a
-- statement's rows and this slot agree.
CREATE FUNCTION indexed_through(p_name TEXT) RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT GREATEST(COALESCE((SELECT slot FROM indexer_cursor WHERE name = p_name), 0),
                    COALESCE((SELECT slot FROM vault_totals), 0))
$$;

-- GetTvl's verdict: the latest finished reconciliation run, found at the index's end
CREATE INDEX reconciliation_runs_finished ON reconciliation_runs (id) WHERE status IN ('ok', 'mismatch');
