"""Off-chain services of the collateral vault system (see docs/services.md).

* :mod:`services.common` — what every service shares (codecs, chain client, config, ...).
* :mod:`services.vault_manager`, :mod:`services.balance_tracker`, :mod:`services.cpi_manager`,
  :mod:`services.monitor`, :mod:`services.gateway` — one package per service.
"""
