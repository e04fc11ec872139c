"""The shared core every service uses: wire codecs for SPL Token and the vault program,
configuration, logging, metrics, pools and the chain client."""
