"""The collateral-vault program client: the IDL codec (idl), instruction builders, PDAs,
layouts and typed accounts (vault_program), SPL Token layouts (spl_token), event and log
decoding (program_logs), unsigned-transaction helpers (transactions), shared constants, and
what the services and vaultctl both read: the typed configuration (config), a client's gRPC
TLS channel (grpc_tls) and program error names (program_errors).
Services, localnet, vaultctl, bench and tests import it; it imports none of them."""
