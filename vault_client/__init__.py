"""The collateral-vault program client: the IDL codec (idl), instruction builders, PDAs,
layouts and typed accounts (vault_program), SPL Token layouts (spl_token), event and log
decoding (program_logs), unsigned-transaction helpers (transactions), shared constants, and
what the services and vaultctl both read: the typed configuration (config), a client's gRPC
TLS channel (grpc_tls) and program error names (program_errors). Also the client-side
transport and runtime the services, localnet and the benchmarks share: HTTP/1.1 framing
(http1) and the keep-alive client on it (http_client), the typed JSON-RPC client and batch
calls (rpc_http), URLs as they may be shown (redact), the event loop (event_loop), the
start-up heap freeze (heap), keypair files (keyfile) and a process's CPU and latency
readings (readings).
Services, localnet, vaultctl, bench and tests import it; it imports none of them."""
