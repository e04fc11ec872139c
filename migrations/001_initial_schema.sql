-- Collateral vault: history, snapshots, audit log, indexer cursor, reconciliation.
-- Amounts are NUMERIC(20,0): the full u64 range, exactly.
-- Sharding by vault owner: every per-user table has `owner` first in its primary key, so
-- a shard key of hash(owner) keeps each user's rows together (see README, "Database").

CREATE TABLE vaults (
    owner             TEXT PRIMARY KEY,
    address           TEXT NOT NULL UNIQUE,
    token_account     TEXT NOT NULL,
    total_balance     NUMERIC(20, 0) NOT NULL DEFAULT 0 CHECK (total_balance >= 0),
    locked_balance    NUMERIC(20, 0) NOT NULL DEFAULT 0 CHECK (locked_balance >= 0),
    available_balance NUMERIC(20, 0) NOT NULL DEFAULT 0 CHECK (available_balance >= 0),
    total_deposited   NUMERIC(20, 0) NOT NULL DEFAULT 0,
    total_withdrawn   NUMERIC(20, 0) NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ,
    closed_at         TIMESTAMPTZ,
    last_slot         BIGINT NOT NULL DEFAULT 0,
    last_event_id     TEXT,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (total_balance = locked_balance + available_balance)
);

-- One row per program event. The event's identity is (signature, instruction index,
-- event index); `owner` leads the primary key for sharding.
CREATE TABLE transactions (
    owner             TEXT NOT NULL,
    signature         TEXT NOT NULL,
    instruction_index INTEGER NOT NULL,
    event_index       INTEGER NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('deposit', 'withdraw', 'lock', 'unlock', 'transfer',
                                                    'vault_initialized', 'vault_closed', 'surplus')),
    amount            NUMERIC(20, 0) NOT NULL DEFAULT 0,
    counterparty      TEXT,
    caller_program    TEXT,
    total_balance     NUMERIC(20, 0),
    locked_balance    NUMERIC(20, 0),
    available_balance NUMERIC(20, 0),
    slot              BIGINT NOT NULL,
    block_time        TIMESTAMPTZ,
    commitment        TEXT NOT NULL DEFAULT 'confirmed' CHECK (commitment IN ('processed', 'confirmed', 'finalized')),
    indexed_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, signature, instruction_index, event_index),
    UNIQUE (signature, instruction_index, event_index)
);
CREATE INDEX transactions_owner_time ON transactions (owner, block_time DESC, slot DESC);
CREATE INDEX transactions_counterparty_time ON transactions (counterparty, block_time DESC) WHERE counterparty IS NOT NULL;
CREATE INDEX transactions_slot ON transactions (slot);
CREATE INDEX transactions_kind_time ON transactions (kind, block_time DESC);

CREATE TABLE balance_snapshots (
    owner             TEXT NOT NULL,
    taken_at          TIMESTAMPTZ NOT NULL,
    slot              BIGINT NOT NULL,
    total_balance     NUMERIC(20, 0) NOT NULL,
    locked_balance    NUMERIC(20, 0) NOT NULL,
    available_balance NUMERIC(20, 0) NOT NULL,
    PRIMARY KEY (owner, taken_at)
);

-- Append-only record of every state change and admin action: who, what, when.
CREATE TABLE audit_log (
    owner      TEXT NOT NULL DEFAULT '',      -- '' for actions that concern no single vault
    id         BIGSERIAL NOT NULL,
    actor      TEXT NOT NULL,                 -- wallet, program or service
    action     TEXT NOT NULL,
    signature  TEXT,
    details    JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, id)
);
CREATE INDEX audit_log_time ON audit_log (created_at DESC);
CREATE INDEX audit_log_action ON audit_log (action, created_at DESC);
-- Entries the indexer writes carry the program event id: a replayed batch adds nothing.
CREATE UNIQUE INDEX audit_log_event ON audit_log (owner, (details ->> 'event_id')) WHERE details ? 'event_id';

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Where the indexer has processed up to, per stream (one row per program followed).
CREATE TABLE indexer_cursor (
    name       TEXT PRIMARY KEY,
    slot       BIGINT NOT NULL,
    signature  TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE reconciliation_runs (
    id             BIGSERIAL PRIMARY KEY,
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ,
    vaults_checked INTEGER NOT NULL DEFAULT 0,
    findings       INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'mismatch', 'failed'))
);

CREATE TABLE reconciliation_findings (
    owner               TEXT NOT NULL,
    run_id              BIGINT NOT NULL REFERENCES reconciliation_runs (id),
    field               TEXT NOT NULL,
    chain_value         TEXT,
    database_value      TEXT,
    token_account_value TEXT,
    PRIMARY KEY (owner, run_id, field)
);
CREATE INDEX reconciliation_findings_run ON reconciliation_findings (run_id);
