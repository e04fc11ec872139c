-- Indexer leadership by a lease that expires (services/balance_tracker/leadership.py),
-- replacing a session advisory lock that PostgreSQL held for a vanished leader until TCP
-- keepalive noticed (hours).
--   * One row per indexed stream: the holder (its connections' application_name), its term
--     (+1 at every takeover), when the lease expires (renewed by the holder every 2 s for
--     10 s by default) and the backend pid of the holder's renewal.
--   * A standby takes over once expires_at has passed: it terminates the old holder's
--     backends (so row locks and transactions they held go), then, holding the exclusive
--     transaction lock below, moves the lease to itself with term + 1.
--   * Fencing: every batch the indexer writes calls indexer_fence(name, term) in its own
--     statements. It takes the same lock shared (so a takeover waits for batches in flight
--     and a batch for a takeover in flight) and refuses the batch unless `term` is still the
--     lease's: a leader that comes back after its lease moved on writes nothing.
CREATE TABLE indexer_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    term       BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    holder_pid INTEGER,
    renewed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The lock key: 0x63766978 ("cvix") and the stream's name. Returns the term (0 for a write
-- that names no lease: tools and tests that write batches directly).
CREATE FUNCTION indexer_fence(p_name TEXT, p_term BIGINT) RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current_term BIGINT;
BEGIN
    IF p_name IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1668704632, hashtext(p_name));
    SELECT term INTO current_term FROM indexer_lease WHERE name = p_name;
    IF current_term IS DISTINCT FROM p_term THEN
        RAISE EXCEPTION 'indexer term % of % is over: the lease is at term %', p_term, p_name, current_term
            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = 'fenced';
    END IF;
    RETURN p_term;
END $$;
