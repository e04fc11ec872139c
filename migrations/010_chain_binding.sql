-- The chain this database indexes (services/common/cluster.py). The first service to start
-- against an empty database records the cluster's genesis hash and the vault program id;
-- every later start compares them and refuses another chain, whose vaults and events these
-- rows are not. One row, never changed: binding to another chain means another database
-- (make up resets its development database when its localnet's genesis changes).
CREATE TABLE chain_binding (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    genesis_hash TEXT NOT NULL,
    vault_program_id TEXT NOT NULL,
    position_manager_id TEXT NOT NULL,
    usdt_mint TEXT NOT NULL,
    profile TEXT NOT NULL,
    bound_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION chain_binding_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'chain_binding is fixed: a database indexes one chain for good'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER chain_binding_fixed BEFORE UPDATE OR DELETE ON chain_binding
    FOR EACH ROW EXECUTE FUNCTION chain_binding_fixed();
