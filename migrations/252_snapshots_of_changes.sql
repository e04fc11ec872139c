-- Issue 25: balance snapshots cost what changed, and old ones thin out (docs/snapshots.md).
--
-- 1. vaults_changed: the owners whose balances changed since their last snapshot. Statement
--    triggers on `vaults` add them in the same transaction as the change (so the indexer's
--    batch, a rollback's resync, a test's UPDATE all count); a snapshot pass takes (deletes)
--    a batch of them and writes their snapshots in one statement. An idle vault is in no
--    table a pass reads.
-- 2. balance_snapshots.expires_at: when a snapshot is no longer needed by the retention
--    policy (all for a day, then the last of each hour for 30 days, then the last of each
--    day, UTC). Set on a snapshot when the next one of its vault is written: if that is in
--    the same hour, it expires a day after it was taken; else, if in the same day, 30 days
--    after; else never. The retention task deletes what has expired, by this index, in
--    bounded batches.
CREATE TABLE vaults_changed (
    owner TEXT PRIMARY KEY
);

CREATE FUNCTION vaults_changed_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO vaults_changed (owner) SELECT owner FROM changed_rows_new ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO vaults_changed (owner)
        SELECT n.owner FROM changed_rows_new AS n JOIN changed_rows_old AS o USING (owner)
        WHERE (n.total_balance, n.locked_balance, n.available_balance, n.closed_at IS NULL)
              IS DISTINCT FROM (o.total_balance, o.locked_balance, o.available_balance, o.closed_at IS NULL)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER vaults_changed_insert AFTER INSERT ON vaults REFERENCING NEW TABLE AS changed_rows_new
    FOR EACH STATEMENT EXECUTE FUNCTION vaults_changed_mark();
CREATE TRIGGER vaults_changed_update AFTER UPDATE ON vaults
    REFERENCING OLD TABLE AS changed_rows_old NEW TABLE AS changed_rows_new
    FOR EACH STATEMENT EXECUTE FUNCTION vaults_changed_mark();

-- the backfill: the open vaults whose balances differ from their latest snapshot (or that
-- have none) get one at the next pass
INSERT INTO vaults_changed (owner)
SELECT v.owner FROM vaults AS v
LEFT JOIN LATERAL (SELECT total_balance, locked_balance, available_balance FROM balance_snapshots AS s
                   WHERE s.owner = v.owner ORDER BY taken_at DESC LIMIT 1) AS last ON TRUE
WHERE v.closed_at IS NULL
  AND (v.total_balance, v.locked_balance, v.available_balance)
      IS DISTINCT FROM (last.total_balance, last.locked_balance, last.available_balance);

ALTER TABLE balance_snapshots ADD COLUMN expires_at TIMESTAMPTZ;

-- the backfill: the snapshots taken so far (one per vault and pass, changed or not) expire
-- by the same rule, from the vault's next snapshot
UPDATE balance_snapshots AS s SET expires_at = CASE
        WHEN date_trunc('hour', s.taken_at, 'UTC') = date_trunc('hour', n.next_at, 'UTC') THEN s.taken_at + interval '1 day'
        WHEN date_trunc('day', s.taken_at, 'UTC') = date_trunc('day', n.next_at, 'UTC') THEN s.taken_at + interval '30 days'
    END
FROM (SELECT owner, taken_at, lead(taken_at) OVER (PARTITION BY owner ORDER BY taken_at) AS next_at
      FROM balance_snapshots) AS n
WHERE s.owner = n.owner AND s.taken_at = n.taken_at AND n.next_at IS NOT NULL;

CREATE INDEX balance_snapshots_expiry ON balance_snapshots (expires_at) WHERE expires_at IS NOT NULL;
