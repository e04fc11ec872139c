-- The indexer follows both programs (issue 22): the vault program's new fields and events,
-- and position_manager's (the exchange program) events, in the one event ledger.
--
-- * program_locked: what the acting program (caller_program) holds locked in the vault
--   after a vault event (the vault's per-program lock slot); for position_manager's
--   operator events, what it holds for the trader after;
-- * vault_seq: the vault's own event number on chain (CollateralVault.event_seq; a
--   transfer's row carries the payer's), for gap detection against the chain;
-- * op_id: the operator's operation id (position_manager's OperatorAction);
-- * details: what else an exchange event says (a grant's expiry, an exit's deadline,
--   whether the operator served an exit), as JSON.
-- position_manager's rows carry no vault balances (NULL): the vault's own events of the
-- same transaction do.
ALTER TABLE transactions ADD COLUMN program_locked NUMERIC(20, 0),
                         ADD COLUMN vault_seq BIGINT,
                         ADD COLUMN op_id BIGINT,
                         ADD COLUMN details JSONB;

ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check CHECK (kind IN (
    'deposit', 'withdraw', 'lock', 'unlock', 'transfer', 'vault_initialized', 'vault_closed', 'surplus',
    'orphaned_lock_released', 'grant_set', 'grant_revoked', 'exit_requested', 'exit_served',
    'operator_lock', 'operator_release', 'operator_settle', 'operator_liquidate'));

-- The monitor looks for liquidations and exits by kind.
CREATE INDEX transactions_exchange_kinds ON transactions (kind, seq)
    WHERE kind IN ('operator_liquidate', 'exit_requested', 'exit_served');

-- The append-only rule (migrations 004, 008) covers the new columns.
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
           NEW.block_time, NEW.indexed_at, NEW.seq, NEW.program_locked, NEW.vault_seq, NEW.op_id, NEW.details)
       IS DISTINCT FROM
       ROW(OLD.owner, OLD.signature, OLD.instruction_index, OLD.event_index, OLD.kind, OLD.amount, OLD.counterparty,
           OLD.caller_program, OLD.total_balance, OLD.locked_balance, OLD.available_balance, OLD.slot,
           OLD.block_time, OLD.indexed_at, OLD.seq, OLD.program_locked, OLD.vault_seq, OLD.op_id, OLD.details) THEN
        RAISE EXCEPTION 'transactions is append-only: only the commitment of an event can change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
