-- cpi_manager's operator operations (issue 22): the matching engine's Lock, Release, Settle
-- and Liquidate, signed by the exchange's operator key.
--
-- One row per client_request_id, written before anything is signed: the operation, the
-- fingerprint of its parameters (the same id with other parameters is refused), the traders
-- and the on-chain operation ids it uses (position_manager refuses an op id not above the
-- trader's last, so at most one transaction carrying them can land), every signature tried
-- (a blockhash that expired first is answered by signing the same operation again), and the
-- outcome: the answer returned for it ever after, or the chain's refusal.
CREATE TABLE operator_requests (
    request_id              TEXT PRIMARY KEY,
    operation               TEXT NOT NULL CHECK (operation IN ('lock', 'release', 'settle', 'liquidate')),
    fingerprint             TEXT NOT NULL,
    -- the trader each op id belongs to (a settlement: each pair's payer, in pair order)
    traders                 TEXT[] NOT NULL,
    op_ids                  BIGINT[] NOT NULL CHECK (cardinality(op_ids) = cardinality(traders)),
    params                  JSONB NOT NULL,
    signatures              TEXT[] NOT NULL DEFAULT '{}',
    -- the last transaction signed and the block height after which it can no longer land
    last_transaction        BYTEA,
    last_valid_block_height BIGINT,
    state                   TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'landed', 'refused')),
    signature               TEXT,            -- the one that landed
    slot                    BIGINT,
    response                BYTEA,           -- landed: the serialized answer
    error_status            TEXT,            -- refused: the gRPC status, the program error and the message
    error_name              TEXT,
    error_message           TEXT,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at             TIMESTAMPTZ,
    CHECK ((state = 'landed') = (response IS NOT NULL)),
    CHECK ((state = 'refused') = (error_message IS NOT NULL))
);
CREATE INDEX operator_requests_created ON operator_requests (created_at);
-- the monitor follows refusals (an operator operation the chain refused)
CREATE INDEX operator_requests_refused ON operator_requests (finished_at) WHERE state = 'refused';

-- The last operation id given per trader (the next is above both this and the chain's
-- Grant.last_op_id). Written in the same transaction as the request that takes it.
CREATE TABLE operator_op_ids (
    trader     TEXT PRIMARY KEY,
    last_op_id BIGINT NOT NULL CHECK (last_op_id > 0)
);

-- The trader-signed Build* flows it served are gone from chain and API.
DROP TABLE cpi_requests;

-- The monitor's new alerts: a liquidation, an exit requested, an exit the trader served
-- himself (the operator did not answer in time), an operator operation the chain refused.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN (
    'reconciliation_mismatch', 'large_withdrawal', 'unauthorized_caller', 'program_paused', 'indexer_lag',
    'liquidation', 'exit_requested', 'exit_served_by_trader', 'operator_refused'));
