-- cpi_manager: idempotency of the matching engine's requests (client request id).
CREATE TABLE cpi_requests (
    owner        TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    operation    TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,      -- the request's parameters; a reused id with others is refused
    response     BYTEA NOT NULL,     -- the serialized response returned the first time
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, request_id)
);
CREATE INDEX cpi_requests_created ON cpi_requests (created_at);

-- monitor: alerts raised by the watcher (deduplicated by key).
CREATE TABLE alerts (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('reconciliation_mismatch', 'large_withdrawal', 'unauthorized_caller',
                                             'program_paused', 'indexer_lag')),
    severity   TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    owner      TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    details    JSONB NOT NULL DEFAULT '{}'::jsonb,
    raised_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alerts_kind_time ON alerts (kind, raised_at DESC);
