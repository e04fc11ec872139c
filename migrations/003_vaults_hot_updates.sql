-- Vault rows are updated by every indexed batch; leaving room in each page lets PostgreSQL
-- update them in place (HOT: no index maintenance, the indexed columns never change).
ALTER TABLE vaults SET (fillfactor = 70);
