-- Issue 25: the indexer's lag is measured against the chain's slot as the indexer last saw
-- it, and the monitor's checks read only what changed since their last pass.
--
-- 1. indexer_cursor gains the indexer's watermark, written every few seconds by the leading
--    replica (services/balance_tracker/progress.py), events or not: `chain_slot`, the
--    chain's slot when it last looked, and `caught_up_slot`, the newest such slot at which
--    it had processed every program transaction (so an idle indexer is caught up with the
--    chain, not with its last event). `seen_at`: when it last looked.
-- 2. indexed_through() counts caught_up_slot too: the indexed state holds every change up to it.
-- 3. monitor_cursor: how far each of the monitor's incremental checks has read (an event
--    number, a reconciliation run id, a time), kept across restarts.
ALTER TABLE indexer_cursor
    ADD COLUMN chain_slot BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN caught_up_slot BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN seen_at TIMESTAMPTZ;

CREATE OR REPLACE FUNCTION indexed_through(p_name TEXT) RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT GREATEST(COALESCE((SELECT GREATEST(slot, caught_up_slot) FROM indexer_cursor WHERE name = p_name), 0),
                    COALESCE((SELECT slot FROM vault_totals), 0))
$$;

CREATE TABLE monitor_cursor (
    name       TEXT PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
