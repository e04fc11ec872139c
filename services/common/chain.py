"""The services' view of the chain, over solana-py's AsyncClient and the standard Solana
JSON-RPC API (localnet or a real cluster: only the URL differs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import base58
from solana.exceptions import SolanaRpcException
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts, TxOpts
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from services.common import spl_token
from services.common.errors import ServiceError, program_error, unavailable
from services.common.idl import discriminator
from services.common.metrics import CHAIN_CALLS
from services.common.rpc_http import rpc_client
from services.common.vault_program import Authority, Vault, VaultProgram

VAULT_SIZE = 128


@dataclass(frozen=True)
class VaultState:
    address: Pubkey
    vault: Vault
    slot: int


@dataclass(frozen=True)
class Simulation:
    units: int
    err: Any
    logs: list[str]


class ChainClient:
    def __init__(self, rpc_url: str, program: VaultProgram, service: str, commitment: str = "confirmed") -> None:
        self.rpc_url = rpc_url
        self.program = program
        self.service = service
        self.commitment = Commitment(commitment)
        self.client = rpc_client(rpc_url, self.commitment, timeout=10)

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, method: str, coro: Any) -> Any:
        try:
            result = await coro
        except (SolanaRpcException, OSError) as exc:
            CHAIN_CALLS.labels(self.service, method, "unavailable").inc()
            raise unavailable(f"the Solana RPC at {self.rpc_url} did not answer {method}: {exc}") from exc
        except RPCException:
            CHAIN_CALLS.labels(self.service, method, "error").inc()
            raise
        CHAIN_CALLS.labels(self.service, method, "ok").inc()
        return result

    async def vault(self, owner: Pubkey) -> VaultState | None:
        address = self.program.vault(owner)
        response = await self._call("getAccountInfo", self.client.get_account_info(address))
        account = response.value
        if account is None or account.owner != self.program.program_id:
            return None
        return VaultState(address, Vault.decode(bytes(account.data)), response.context.slot)

    async def vaults(self) -> list[VaultState]:
        response = await self._call("getProgramAccounts", self.client.get_program_accounts(
            self.program.program_id, encoding="base64",
            filters=[VAULT_SIZE, MemcmpOpts(offset=0, bytes=_b58(discriminator("account", "CollateralVault")))]))
        slot = await self.slot()
        return [VaultState(item.pubkey, Vault.decode(bytes(item.account.data)), slot) for item in response.value]

    async def authority(self) -> Authority | None:
        response = await self._call("getAccountInfo", self.client.get_account_info(self.program.authority))
        if response.value is None:
            return None
        return Authority.decode(bytes(response.value.data))

    async def token_amount(self, account: Pubkey) -> int | None:
        response = await self._call("getAccountInfo", self.client.get_account_info(account))
        if response.value is None or response.value.owner != spl_token.TOKEN_PROGRAM_ID:
            return None
        return spl_token.TokenAccount.decode(bytes(response.value.data)).amount

    async def slot(self) -> int:
        return int((await self._call("getSlot", self.client.get_slot(self.commitment))).value)

    async def latest_blockhash(self) -> tuple[Hash, int]:
        value = (await self._call("getLatestBlockhash", self.client.get_latest_blockhash(self.commitment))).value
        return value.blockhash, value.last_valid_block_height

    async def simulate(self, tx: VersionedTransaction) -> Simulation:
        value = (await self._call("simulateTransaction", self.client.simulate_transaction(tx, sig_verify=False))).value
        return Simulation(int(value.units_consumed or 0), value.err, list(value.logs or []))

    async def send(self, tx: VersionedTransaction) -> Signature:
        try:
            response = await self._call("sendTransaction", self.client.send_transaction(
                tx, opts=TxOpts(skip_confirmation=True, preflight_commitment=self.commitment)))
        except RPCException as exc:
            raise _rpc_failure(exc) from exc
        return response.value

    async def status(self, signature: Signature) -> tuple[int, str, Any] | None:
        """(slot, confirmation status, error) of a signature, or None if unknown."""
        value = (await self._call("getSignatureStatuses", self.client.get_signature_statuses([signature]))).value[0]
        if value is None:
            return None
        status = str(value.confirmation_status).rsplit(".", 1)[-1].lower() if value.confirmation_status else "processed"
        return value.slot, status, value.err


def _b58(data: bytes) -> str:
    return base58.b58encode(data).decode()


def _rpc_failure(exc: RPCException) -> ServiceError:
    error = exc.args[0] if exc.args else exc
    data = getattr(error, "data", None)
    err = getattr(data, "err", None)
    message = getattr(error, "message", str(error))
    return program_error(err if err is not None else message)

