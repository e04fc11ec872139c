"""A Solana-compatible JSON-RPC and PubSub node over LiteSVM, with the programs deployed
(`python -m localnet`). See docs/localnet.md."""
