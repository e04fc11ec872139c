"""The collateral-vault program client: the IDL codec (idl), instruction builders, PDAs,
layouts and typed accounts (vault_program), SPL Token layouts (spl_token), event and log
decoding (program_logs), unsigned-transaction helpers (transactions) and shared constants.
Services, localnet, vaultctl, bench and tests import it; it imports none of them."""
