"""vault_manager: vault state (VaultManager) and unsigned transactions plus submission
(TransactionBuilder). gRPC on 50051, metrics on 9101."""
