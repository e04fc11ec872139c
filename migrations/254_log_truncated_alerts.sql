-- The indexer's alert for a transaction whose log the node truncated (events after the cut
-- are missing): services/balance_tracker/indexer/follower.py, docs/indexer-gaps.md.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN (
    'reconciliation_mismatch', 'large_withdrawal', 'unauthorized_caller', 'program_paused', 'indexer_lag',
    'liquidation', 'exit_requested', 'exit_served_by_trader', 'operator_refused',
    'sequence_gap', 'admin_sequence_gap', 'admin_change_queued', 'admin_change_resolved', 'log_truncated'));
