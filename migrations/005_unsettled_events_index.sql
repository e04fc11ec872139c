-- The indexer's promotion pass runs every second: it confirms `processed` rows and
-- finalizes `confirmed` ones up to the finalized slot. Without an index on what is still
-- unsettled, each pass scanned the whole transactions table. This partial index holds only
-- rows not yet finalized (a few minutes of events at most), so each pass reads just those.
CREATE INDEX transactions_unsettled ON transactions (commitment, slot) WHERE commitment <> 'finalized';
