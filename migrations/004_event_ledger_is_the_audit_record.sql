-- A vault event's audit record is its row in `transactions`: who (owner; caller_program for
-- lock, unlock and transfer), what (kind, amount, counterparty, balances after), when (slot,
-- block_time, indexed_at), keyed by its transaction signature. The indexer no longer writes
-- a second copy of each event into audit_log; audit_log keeps admin actions, rollbacks and
-- the services' own actions. To be an audit record, `transactions` becomes append-only:
--   * UPDATE may change nothing but `commitment` (processed -> confirmed -> finalized);
--   * DELETE is allowed only for rows still at `processed` (a rolled-back fork; the indexer
--     writes an audit_log 'rollback' entry in the same transaction).

CREATE FUNCTION transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
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
           NEW.block_time, NEW.indexed_at)
       IS DISTINCT FROM
       ROW(OLD.owner, OLD.signature, OLD.instruction_index, OLD.event_index, OLD.kind, OLD.amount, OLD.counterparty,
           OLD.caller_program, OLD.total_balance, OLD.locked_balance, OLD.available_balance, OLD.slot,
           OLD.block_time, OLD.indexed_at) THEN
        RAISE EXCEPTION 'transactions is append-only: only the commitment of an event can change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_append_only();

-- Finality is a watermark, not a rewrite: the indexer records the cluster's finalized slot
-- here, and every event at or below it is final. (Rewriting each row from 'confirmed' to
-- 'finalized' cost a second full row version and index entries per event.)
ALTER TABLE indexer_cursor ADD COLUMN finalized_slot BIGINT NOT NULL DEFAULT 0;

-- One record of every state change and admin action, for auditors: program events from
-- `transactions`, everything else from audit_log. audit_log rows that earlier versions of the
-- indexer wrote per event (action = the event kind, with an event_id) duplicate the
-- transactions rows and are left out.
CREATE VIEW audit_trail AS
SELECT t.owner,
       COALESCE(t.caller_program, t.owner) AS actor,
       t.kind AS action,
       t.signature,
       jsonb_build_object('event_id', t.signature || ':' || t.instruction_index || ':' || t.event_index,
                          'amount', t.amount::text, 'slot', t.slot, 'counterparty', t.counterparty,
                          'balances_after', jsonb_build_object('total', t.total_balance::text,
                                                               'locked', t.locked_balance::text,
                                                               'available', t.available_balance::text),
                          'block_time', t.block_time,
                          'commitment', CASE WHEN t.commitment <> 'processed' AND t.slot <= f.slot THEN 'finalized'
                                             ELSE t.commitment END) AS details,
       t.indexed_at AS created_at,
       'program_event' AS source
FROM transactions t
CROSS JOIN (SELECT COALESCE(max(finalized_slot), 0) AS slot FROM indexer_cursor) f
UNION ALL
SELECT a.owner, a.actor, a.action, a.signature, a.details, a.created_at, 'audit_log' AS source
FROM audit_log a
WHERE NOT (a.details ? 'event_id'
           AND a.action IN ('deposit', 'withdraw', 'lock', 'unlock', 'transfer', 'vault_initialized',
                            'vault_closed', 'surplus'));
