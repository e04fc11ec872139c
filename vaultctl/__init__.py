"""vaultctl: a command line for the running system (`make up`). It holds development
wallets in memory to sign demo transactions: the services themselves never hold keys."""
