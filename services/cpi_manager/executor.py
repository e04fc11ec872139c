"""Runs one operator operation to its outcome, exactly once per client_request_id.

1. A request id seen before: its fingerprint must match (else ALREADY_EXISTS); a finished
   one answers what was recorded (the landed result, or the chain's refusal) and does
   nothing on chain.
2. Otherwise, holding the locks of the traders it acts on (one trader's operations apply
   in order, across replicas): the operation gets its op ids (above the chain's
   `Grant.last_op_id` and above any id given before) and is recorded, before anything is
   signed.
3. Then, until it lands, is refused or the caller's time is up:
   * a signature tried before that landed is the outcome (the answer may have been lost);
   * the last transaction, while its blockhash can still land, is sent again as it is;
   * else the SAME operation (same op ids) is signed again with a fresh blockhash and the
     signature recorded before it is sent. position_manager refuses an op id not above the
     trader's last, so at most one of the transactions can land.
   A refusal by the chain (its preflight, or a transaction that failed) is recorded and
   answered by its program error's name. Time running out leaves the request pending: the
   same id later takes it up where it was (DEADLINE_EXCEEDED says so); an unreachable chain
   is UNAVAILABLE, likewise.
4. Landed: the traders' balances are read from the chain at or after the slot it landed in,
   and the answer is recorded for the id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from collateral_vault.v1 import common_pb2, cpi_manager_pb2
from solders.hash import Hash
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from services.common.chain import ChainClient, Status
from services.common.errors import ServiceError, invalid, precondition, program_error, unavailable
from services.cpi_manager.operations import Operation
from services.cpi_manager.request_store import LANDED, REFUSED, RequestRow, RequestStore
from services.cpi_manager.signer import Signer
from vault_client.quoting import quoted
from vault_client.vault_program import ExchangeConfig, ExchangeProgram, Grant, Vault

logger = logging.getLogger("cpi_manager.operator")
RANK = {"processed": 0, "confirmed": 1, "finalized": 2}
COMMITMENT_VALUES = {"processed": common_pb2.COMMITMENT_PROCESSED, "confirmed": common_pb2.COMMITMENT_CONFIRMED,
                     "finalized": common_pb2.COMMITMENT_FINALIZED}
POLL_SECONDS = 0.05
CONFIG_TTL_SECONDS = 2.0
RESEND_SECONDS = 1.0
# program errors about this deployment, not the request (the signer is no longer the
# operator, ...): the request stays pending, a retry after the fix takes it up
NOT_THE_REQUESTS = {"NotOperator", "WrongProgramId", "InvalidAccount", "NotTopLevel", "OperatorInstructionNotAlone"}
MAX_TRANSACTION_BYTES = 1232


def reached(status: Status | None, commitment: str) -> bool:
    return status is not None and RANK.get(status[1], 0) >= RANK[commitment]


@dataclass
class OperatorExecutor:
    chain: ChainClient
    store: RequestStore
    exchange: ExchangeProgram
    signer: Signer | None
    #: vault owners of the fee and insurance-fund vaults (fixed at the exchange's initialization)
    _owners: dict[Pubkey, Pubkey] = field(default_factory=dict)
    _config: ExchangeConfig | None = None
    _operator: tuple[Pubkey, float] | None = None

    # --- the exchange and the traders ----------------------------------------------------

    async def config(self) -> ExchangeConfig:
        account = await self.chain.account(self.exchange.config)
        if account is None or account.owner != self.exchange.program_id:
            raise unavailable(f"the exchange program {self.exchange.program_id} has no configuration on this cluster")
        return ExchangeConfig.decode(bytes(account.data))

    async def current_operator(self) -> Pubkey:
        """The exchange's operator, read again at most every CONFIG_TTL_SECONDS (an operator
        change waits out the configuration delay; a stale read costs one refused send)."""
        now = time.monotonic()
        if self._operator is None or now - self._operator[1] > CONFIG_TTL_SECONDS:
            self._operator = ((await self.config()).operator, now)
        return self._operator[0]

    async def fee_vault_owner(self) -> Pubkey:
        return await self.vault_owner((await self._fixed_config()).fee_vault)

    async def insurance_vault_owner(self) -> Pubkey:
        return await self.vault_owner((await self._fixed_config()).insurance_vault)

    async def _fixed_config(self) -> ExchangeConfig:
        """The configuration as first read: for what never changes (the fee and insurance
        vaults are fixed at initialization)."""
        if self._config is None:
            self._config = await self.config()
        return self._config

    async def vault_owner(self, vault: Pubkey) -> Pubkey:
        """The owner of a vault (the exchange's fee or insurance-fund vault)."""
        if vault not in self._owners:
            account = await self.chain.account(vault)
            if account is None or account.owner != self.chain.program.program_id:
                raise unavailable(f"the exchange's vault {vault} does not exist on this cluster")
            self._owners[vault] = Vault.decode(bytes(account.data)).owner
        return self._owners[vault]

    async def grant(self, trader: Pubkey) -> Grant | None:
        account = await self.chain.account(self.exchange.grant_account(trader))
        if account is None or account.owner != self.exchange.program_id:
            return None
        return Grant.decode(bytes(account.data))

    # --- one request ----------------------------------------------------------------------

    async def run(self, request_id: str, op: Operation, commitment: str, seconds: float,
                  check: Callable[[], Awaitable[None]] | None = None) -> cpi_manager_pb2.OperationResult:
        """The operation's outcome (see the module docstring). `check`, when given, runs
        before a new request is recorded (never for a recorded one): a refusal it raises is
        answered and nothing is recorded."""
        fingerprint = op.fingerprint()
        row = await self.store.get(request_id)
        if row is not None:
            self._same(row, request_id, fingerprint)
            if row.state in (LANDED, REFUSED):
                return self._recorded(row)
        if self.signer is None:
            raise precondition("cpi_manager has no operator signer configured (OPERATOR_SIGNER, OPERATOR_KEY_FILE): "
                               "it cannot sign operator operations")
        try:
            async with asyncio.timeout(seconds):
                if row is None and check is not None:
                    await check()
                async with self.store.traders_locked(op.traders):
                    row = await self.store.get(request_id)  # another replica may have run it meanwhile
                    if row is None:
                        row = await self._record(request_id, op, fingerprint)
                    self._same(row, request_id, fingerprint)
                    if row.state in (LANDED, REFUSED):
                        return self._recorded(row)
                    return await self._drive(row, commitment)
        except TimeoutError:
            raise ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"operation {quoted(request_id)} did not reach {commitment} within {seconds:.1f} s; it "
                               "may still land: call again with the same client_request_id for its outcome "
                               "(it is never applied twice)") from None

    def _same(self, row: RequestRow, request_id: str, fingerprint: str) -> None:
        if row.fingerprint != fingerprint:
            raise ServiceError(grpc.StatusCode.ALREADY_EXISTS,
                               f"client_request_id {quoted(request_id)} was already used for a different request "
                               f"({row.operation} with other parameters)")

    def _recorded(self, row: RequestRow) -> cpi_manager_pb2.OperationResult:
        if row.state == LANDED:
            assert row.response is not None
            result = cpi_manager_pb2.OperationResult.FromString(row.response)
            result.replayed = True
            return result
        assert row.error_message is not None
        raise ServiceError(grpc.StatusCode[row.error_status or "FAILED_PRECONDITION"], row.error_message,
                           row.error_name)

    def _fits(self, op: Operation) -> None:
        """Refuses (before anything is recorded) an operation whose transaction would not fit
        in one packet: its size does not depend on the op ids or the blockhash."""
        assert self.signer is not None
        payer = self.signer.public_key
        message = Message.new_with_blockhash([op.instruction(self.exchange, payer, [1] * len(op.legs))], payer,
                                             Hash.default())
        size = len(bytes(VersionedTransaction.populate(message, [Signature.default()])))
        if size > MAX_TRANSACTION_BYTES:
            raise invalid(f"the {op.kind} names too many distinct accounts for one transaction ({size} bytes of "
                          f"{MAX_TRANSACTION_BYTES}): a settlement holds 4 pairs of distinct traders, or 6 paying "
                          "one receiver; split it")

    async def _record(self, request_id: str, op: Operation, fingerprint: str) -> RequestRow:
        self._fits(op)
        last: dict[Pubkey, int] = {}
        for trader in dict.fromkeys(op.traders):
            grant = await self.grant(trader)
            if grant is None:
                raise precondition(f"trader {trader} has not granted the exchange program anything: the trader's "
                                   "wallet signs a grant first (BuildGrant)")
            last[trader] = grant.last_op_id
        row = await self.store.create(request_id, op, fingerprint, last)
        if row is None:  # the same id for other traders, recorded meanwhile
            row = await self.store.get(request_id)
            assert row is not None
        return row

    # --- to the chain -----------------------------------------------------------------

    async def _drive(self, row: RequestRow, commitment: str) -> cpi_manager_pb2.OperationResult:
        op = row.op
        while True:
            landed = await self._landed_before(row)
            if landed is not None:
                return await self._finish(row, op, landed, commitment)
            if row.last_transaction is not None and row.last_valid_block_height is not None \
                    and await self.chain.block_height() <= row.last_valid_block_height:
                tx = VersionedTransaction.from_bytes(row.last_transaction)  # still able to land: the same bytes
            else:
                tx = await self._sign(row, op)
            signature = tx.signatures[0]
            try:
                status = await self.chain.submit(tx)
            except ServiceError as exc:
                if exc.code == grpc.StatusCode.UNAVAILABLE:
                    raise
                if exc.program_error == "OperationReplayed":  # ours landed meanwhile, or another client's ids
                    landed = await self._landed_before(row)
                    if landed is not None:
                        return await self._finish(row, op, landed, commitment)
                    exc = precondition(
                        f"{exc.message} (op ids {row.op_ids} for {', '.join(row.traders)}: another operator client "
                        "used this trader's op ids; this request had no effect)")
                    exc.program_error = "OperationReplayed"
                if "already been processed" in exc.message:
                    await asyncio.sleep(POLL_SECONDS)
                    continue  # it landed: found by the statuses above
                if "blockhash" in exc.message:  # the node does not know it (yet): sign again
                    row.last_valid_block_height = -1
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                if exc.program_error in NOT_THE_REQUESTS:
                    self._operator = None
                elif exc.program_error is not None:  # the program's refusal: the request's outcome
                    await self._refuse(row, exc)
                raise exc from None  # anything else (no SOL for the fee, ...): pending, a retry resumes
            status = await self._wait(signature, status, commitment, row.last_valid_block_height or 0, tx)
            if status is not None:
                return await self._finish(row, op, (signature, status), commitment)
            row = await self.store.get(row.request_id) or row  # expired: sign again (same op ids)

    async def _sign(self, row: RequestRow, op: Operation) -> VersionedTransaction:
        assert self.signer is not None
        operator = await self.current_operator()
        if operator != self.signer.public_key:
            self._operator = None  # read again next time
            raise precondition(f"cpi_manager signs with {self.signer.public_key}, which is not the exchange's "
                               f"operator {operator}: configure the operator key (OPERATOR_KEY_FILE or the "
                               "transit key), or change the operator (a configuration change)")
        instruction = op.instruction(self.exchange, self.signer.public_key, row.op_ids)
        blockhash, last_valid = await self.chain.latest_blockhash()
        message = Message.new_with_blockhash([instruction], self.signer.public_key, blockhash)
        signature = await self.signer.sign(bytes(message))
        tx = VersionedTransaction.populate(message, [signature])
        await self.store.signed(row.request_id, str(signature), bytes(tx), last_valid)
        row.signatures.append(str(signature))
        row.last_transaction, row.last_valid_block_height = bytes(tx), last_valid
        if len(row.signatures) > 1:
            logger.info("operation %s: blockhash expired before it landed; signed again with the same op ids %s "
                        "(signature %d)", row.request_id, row.op_ids, len(row.signatures))
        return tx

    async def _landed_before(self, row: RequestRow) -> tuple[Signature, Status] | None:
        """A signature of this request that the chain has (landed or failed), if any."""
        if not row.signatures:
            return None
        signatures = [Signature.from_string(s) for s in row.signatures]
        for signature, status in zip(signatures, await self.chain.statuses_in_history(signatures), strict=True):
            if status is not None:
                return signature, status
        return None

    async def _wait(self, signature: Signature, status: Status | None, commitment: str, last_valid: int,
                    tx: VersionedTransaction | None = None) -> Status | None:
        """The signature's status once it is known at `commitment`, or None once its
        blockhash expired without it landing. Until the chain knows it, `tx` is sent again
        every RESEND_SECONDS (a node may drop a transaction; the same bytes land once)."""
        resend_at = time.monotonic() + RESEND_SECONDS
        while True:
            if status is not None and (status[2] is not None or reached(status, commitment)):
                return status
            if status is None and await self.chain.block_height() > last_valid:
                status = await self.chain.status(signature)  # a last look: it may have landed at the end
                return status if status is not None else None
            if status is None and tx is not None and time.monotonic() >= resend_at:
                resend_at = time.monotonic() + RESEND_SECONDS
                try:
                    await self.chain.send(tx)
                except ServiceError:
                    pass  # landed meanwhile (AlreadyProcessed) or refused now: the statuses tell
            await asyncio.sleep(POLL_SECONDS)
            status = await self.chain.status(signature)

    async def _finish(self, row: RequestRow, op: Operation, landed: tuple[Signature, Status],
                      commitment: str) -> cpi_manager_pb2.OperationResult:
        signature, status = landed
        if status[2] is not None:  # executed and failed: a refusal with its program error
            error = program_error(status[2], await self.chain.transaction_logs(signature))
            await self._refuse(row, error, str(signature))
            raise error
        final = await self._wait(signature, status, commitment, 2**63)
        assert final is not None
        if final[2] is not None:
            return await self._finish(row, op, (signature, final), commitment)
        result = cpi_manager_pb2.OperationResult(
            signature=str(signature), slot=final[0], commitment=COMMITMENT_VALUES[final[1]],
            balances=await self._balances(op, row, final[0], commitment), signatures_tried=row.signatures)
        await self.store.landed(row.request_id, str(signature), final[0], result.SerializeToString())
        return result

    async def _balances(self, op: Operation, row: RequestRow, slot: int,
                        commitment: str) -> list[cpi_manager_pb2.TraderBalance]:
        """Each affected vault read at the commitment the caller asked for, at or after the
        slot the operation landed in."""
        op_ids: dict[str, int] = {}
        for trader, op_id in zip(row.traders, row.op_ids, strict=True):
            op_ids[trader] = max(op_ids.get(trader, 0), op_id)
        owners = op.affected
        states = await self.chain.vaults_of(owners, commitment)
        while any(state is not None and state.slot < slot for state in states):  # a node behind the one that landed it
            await asyncio.sleep(POLL_SECONDS)
            states = await self.chain.vaults_of(owners, commitment)
        out = []
        for owner, state in zip(owners, states, strict=True):
            if state is None:
                continue
            vault = state.vault
            out.append(cpi_manager_pb2.TraderBalance(
                trader=str(owner), locked=vault.locked_by(self.exchange.program_id), available=vault.available_balance,
                total=vault.total_balance, locked_total=vault.locked_balance, op_id=op_ids.get(str(owner), 0)))
        return out

    async def _refuse(self, row: RequestRow, error: ServiceError, signature: str | None = None) -> None:
        await self.store.refused(row.request_id, error.code.name, error.program_error, error.message, signature)
        logger.warning("operation %s (%s, op ids %s) refused: %s", row.request_id, row.operation, row.op_ids,
                       error.message)

