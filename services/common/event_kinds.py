"""The event kinds as the API names them, derived from the protobuf contract
(balance_tracker.proto's EventKind: EVENT_KIND_GRANT_SET is "grant_set"). The balance
tracker stores and serves them; the gateway checks a REST query's `kind` against them."""

from __future__ import annotations

from collateral_vault.v1 import balance_tracker_pb2

# every kind the ledger stores (the unspecified 0 is none)
KIND_NAMES = {value: name.removeprefix("EVENT_KIND_").lower()
              for name, value in balance_tracker_pb2.EventKind.items() if value}
KIND_VALUES = {name: value for value, name in KIND_NAMES.items()}
