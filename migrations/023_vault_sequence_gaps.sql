-- Issue 23: the indexer checks each vault's event numbers are gap-free (docs/indexer-gaps.md).
--
-- * vaults.event_seq: the number of the last event folded into the row (the vault's
--   CollateralVault.event_seq on chain once the row is up to date; NULL: not known, as for
--   rows indexed before this migration without numbers). The next event of the vault must
--   carry event_seq + 1 (a vault_initialized event starts again at 1); anything else is a gap:
--   the row is not moved past it until the gap is repaired from the chain.
ALTER TABLE vaults ADD COLUMN event_seq BIGINT;

-- Rows indexed before: the highest number their stored events carry (the payer's in
-- vault_seq, the receiver's of a transfer in details.to_seq), since the vault's last
-- initialization.
UPDATE vaults AS v SET event_seq = s.seq
FROM (SELECT owner, max(seq) AS seq FROM (
          SELECT t.owner, t.vault_seq AS seq, t.slot FROM transactions t
          WHERE t.vault_seq IS NOT NULL AND t.total_balance IS NOT NULL
          UNION ALL
          SELECT t.counterparty, (t.details ->> 'to_seq')::bigint, t.slot FROM transactions t
          WHERE t.kind = 'transfer' AND t.details ? 'to_seq') AS e
      WHERE e.slot >= COALESCE((SELECT max(i.slot) FROM transactions i
                                WHERE i.owner = e.owner AND i.kind = 'vault_initialized'), 0)
      GROUP BY owner) AS s
WHERE v.owner = s.owner;

-- The alerts of the indexer and of the monitor's admin-change watch:
-- * sequence_gap (critical): a vault's event numbers jump (expected, seen, signature);
-- * admin_sequence_gap (critical): the VaultAuthority's admin event numbers jump;
-- * admin_change_queued (critical): a loosening admin change was queued on chain;
-- * admin_change_resolved (info): a queued change was executed or cancelled.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN (
    'reconciliation_mismatch', 'large_withdrawal', 'unauthorized_caller', 'program_paused', 'indexer_lag',
    'liquidation', 'exit_requested', 'exit_served_by_trader', 'operator_refused',
    'sequence_gap', 'admin_sequence_gap', 'admin_change_queued', 'admin_change_resolved'));
