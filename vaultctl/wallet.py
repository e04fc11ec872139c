"""The development signer: what a wallet does with the services' unsigned transactions.
Demo keys live only in this process's memory."""

from __future__ import annotations

import base64

from solders.keypair import Keypair
from solders.transaction import VersionedTransaction


def sign(unsigned_base64: str, *signers: Keypair) -> str:
    """Signs the exact message the service built and returns it base64-encoded."""
    tx = VersionedTransaction.from_bytes(base64.b64decode(unsigned_base64))
    return base64.b64encode(bytes(VersionedTransaction(tx.message, list(signers)))).decode()
