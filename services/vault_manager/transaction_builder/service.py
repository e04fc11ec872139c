"""TransactionBuilder: unsigned transactions (checked against the chain first, so a
withdrawal above the available balance is refused before anything is built) and the
submission of signed ones, idempotent by signature."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc
import redis.asyncio as aioredis
from collateral_vault.v1 import common_pb2, transaction_builder_pb2, transaction_builder_pb2_grpc
from redis.exceptions import RedisError
from solders.pubkey import Pubkey
from solders.signature import Signature

from services.common import audit, tx_building, validation
from services.common.audit_outbox import AuditOutbox
from services.common.chain import ChainClient, Status, VaultState
from services.common.coalesce import Coalescer
from services.common.convert import COMMITMENT_NAMES, COMMITMENT_VALUES, unsigned_message
from services.common.errors import ServiceError, invalid, not_found, precondition, program_error, unavailable
from services.common.log import fields
from services.common.metrics import TRANSACTIONS_SUBMITTED
from services.vault_manager.transaction_builder.submission import CheckedTransaction, check, decode_signed
from vault_client import spl_token
from vault_client.constants import U64_MAX

logger = logging.getLogger("builder")
_RANK = {"processed": 1, "confirmed": 2, "finalized": 3}
SUBMIT_WAIT_SECONDS = 30.0
CLAIM_SECONDS = 3600  # a signature's first submission is remembered this long (a blockhash lives ~80 s)
MAX_CLAIMS = 256
AUDIT_WAIT_SECONDS = 1.0  # how long an answer waits for PostgreSQL to store the audit entry (it is on disk)


class TransactionBuilderService(transaction_builder_pb2_grpc.TransactionBuilderServicer):
    def __init__(self, chain: ChainClient, redis: aioredis.Redis, outbox: AuditOutbox,
                 position_managers: set[Pubkey], redis_prefix: str, service: str = "vault_manager",
                 on_landed: Callable[[Pubkey, int], None] | None = None) -> None:
        self.chain = chain
        self.redis = redis
        self.outbox = outbox
        self._claims: Coalescer[str, bool] = Coalescer(self._claim_batch, MAX_CLAIMS)
        self.position_managers = position_managers
        self.prefix = redis_prefix
        self.service = service
        self.on_landed = on_landed  # (owner, slot) of each vault change this process submitted

    async def _vault(self, owner: Pubkey) -> VaultState:
        state = await self.chain.vault(owner)
        if state is None:
            raise not_found(f"no vault for owner {owner}; build an initialize_vault transaction first")
        return state

    async def _token_account(self, owner: Pubkey, value: str, field: str) -> Pubkey:
        account = validation.optional_pubkey(value, field) or spl_token.associated_token_address(
            owner, self.chain.program.mint)
        return account

    async def BuildInitializeVault(self, request: transaction_builder_pb2.BuildInitializeVaultRequest,
                                   context: grpc.aio.ServicerContext
                                   ) -> transaction_builder_pb2.BuildInitializeVaultResponse:
        owner = validation.pubkey(request.owner, "owner")
        if await self.chain.vault(owner) is not None:
            raise precondition(f"owner {owner} already has a vault")
        tx = await tx_building.build(self.chain, owner, [self.chain.program.initialize_vault(owner)],
                                     request.priority_fee_micro_lamports)
        return transaction_builder_pb2.BuildInitializeVaultResponse(
            transaction=unsigned_message(tx, self.chain.program.vault(owner)))

    async def BuildDeposit(self, request: transaction_builder_pb2.BuildDepositRequest,
                           context: grpc.aio.ServicerContext) -> transaction_builder_pb2.BuildDepositResponse:
        owner = validation.pubkey(request.owner, "owner")
        amount = validation.amount(request.amount)
        source = await self._token_account(owner, request.source_token_account, "source_token_account")
        state = await self._vault(owner)
        if state.vault.total_balance + amount > U64_MAX or state.vault.total_deposited + amount > U64_MAX:
            raise invalid(f"a deposit of {amount} would overflow the vault's u64 balances")
        held = await self.chain.token_amount(source)
        if held is None:
            raise precondition(f"source token account {source} does not exist")
        if held < amount:
            raise precondition(f"source token account {source} holds {held}, less than the deposit of {amount}")
        tx = await tx_building.build(self.chain, owner, [self.chain.program.deposit(owner, source, amount)],
                                     request.priority_fee_micro_lamports)
        return transaction_builder_pb2.BuildDepositResponse(transaction=unsigned_message(tx, state.address))

    async def BuildWithdraw(self, request: transaction_builder_pb2.BuildWithdrawRequest,
                            context: grpc.aio.ServicerContext) -> transaction_builder_pb2.BuildWithdrawResponse:
        owner = validation.pubkey(request.owner, "owner")
        amount = validation.amount(request.amount)
        destination = await self._token_account(owner, request.destination_token_account,
                                                "destination_token_account")
        state = await self._vault(owner)
        if amount > state.vault.available_balance:
            raise precondition(f"withdrawal of {amount} exceeds the available balance of "
                               f"{state.vault.available_balance} ({state.vault.locked_balance} is locked)")
        if await self.chain.token_amount(destination) is None:
            raise precondition(f"destination token account {destination} does not exist; create the owner's "
                               "USDT account first")
        tx = await tx_building.build(self.chain, owner, [self.chain.program.withdraw(owner, destination, amount)],
                                     request.priority_fee_micro_lamports)
        return transaction_builder_pb2.BuildWithdrawResponse(transaction=unsigned_message(tx, state.address))

    async def BuildCloseVault(self, request: transaction_builder_pb2.BuildCloseVaultRequest,
                              context: grpc.aio.ServicerContext) -> transaction_builder_pb2.BuildCloseVaultResponse:
        owner = validation.pubkey(request.owner, "owner")
        state = await self._vault(owner)
        if state.vault.total_balance:
            raise precondition(f"the vault still holds {state.vault.total_balance} "
                               f"({state.vault.locked_balance} locked); withdraw everything first")
        tx = await tx_building.build(self.chain, owner, [self.chain.program.close_vault(owner)],
                                     request.priority_fee_micro_lamports)
        return transaction_builder_pb2.BuildCloseVaultResponse(transaction=unsigned_message(tx, state.address))

    async def SubmitTransaction(self, request: transaction_builder_pb2.SubmitTransactionRequest,
                                context: grpc.aio.ServicerContext
                                ) -> transaction_builder_pb2.SubmitTransactionResponse:
        """Sends a checked transaction once and answers with its signature and status.

        The first submission of a signature (its Redis claim succeeds) journals the audit entry
        to the outbox (on local disk) BEFORE the send, then sends. A repeated one reports the
        chain's status, and sends again only if the chain does not know the signature (the
        first caller may have died before its send; the same signature lands at most once).
        Once the transaction may have gone out, the answer is never a bare failure: a node
        that stops answering is UNAVAILABLE with a message that names the signature and says
        it may have landed (`may_have_landed`)."""
        tx = decode_signed(request.signed_transaction_base64)
        checked = check(tx, self.chain.program, self.position_managers)
        wanted = COMMITMENT_NAMES.get(request.wait_for, "confirmed")
        signature = Signature.from_string(checked.signature)
        remaining = context.time_remaining()
        seconds = min(SUBMIT_WAIT_SECONDS, remaining or SUBMIT_WAIT_SECONDS)
        first: Status | None = None  # a status already in hand (from the send or the lookup below)
        send = await self._claim(checked.signature)
        if not send:  # submitted before: what does the chain know of it?
            first = await self._status(signature)
            send = first is None
        already = not send
        if send:
            entry = self._audit_entry(checked)
            await self.outbox.journal(entry)
            try:
                first = await self.chain.submit(tx)
            except ServiceError as exc:
                if exc.code == grpc.StatusCode.ALREADY_EXISTS:
                    already = True  # the chain had it (e.g. Redis lost the claim): it did go out once
                elif exc.code == grpc.StatusCode.UNAVAILABLE:  # no answer: it may have gone out
                    await self._release(checked.signature)
                    self.outbox.deliver_later(entry)
                    TRANSACTIONS_SUBMITTED.labels(self.service, "unknown").inc()
                    raise may_have_landed(checked.signature, "the Solana node did not answer the send") from exc
                else:  # refused (preflight, expired blockhash, ...): it did not go out
                    await self._release(checked.signature)
                    await self.outbox.discard(entry.entry_id or "")
                    TRANSACTIONS_SUBMITTED.labels(self.service, "refused").inc()
                    raise
            except BaseException as exc:  # cancelled, or something unexpected, during the send
                await self._release(checked.signature)
                self.outbox.deliver_later(entry)
                if isinstance(exc, Exception):
                    logger.exception("the send of %s failed unexpectedly", checked.signature)
                    raise may_have_landed(checked.signature, "the send failed unexpectedly") from exc
                raise
            TRANSACTIONS_SUBMITTED.labels(self.service, "duplicate" if already else "sent").inc()
            logger.info("submitted", extra=fields(signature=checked.signature, instructions=checked.instructions))
            # the audit entry is on disk: PostgreSQL gets it while the status is awaited (often
            # already in hand from the send), and later from the outbox if it cannot now
            _, status = await asyncio.gather(self.outbox.deliver(entry, AUDIT_WAIT_SECONDS),
                                             self._wait(signature, wanted, seconds, first))
        else:
            TRANSACTIONS_SUBMITTED.labels(self.service, "duplicate").inc()
            status = await self._wait(signature, wanted, seconds, first)
        slot, reached, err = status if status else (0, "", None)
        if status is not None and err is None and self.on_landed is not None:
            for owner in checked.owners:  # read-your-writes: no older answer from this process
                self.on_landed(owner, slot)
        message = common_pb2.TransactionStatus(
            signature=checked.signature, commitment=COMMITMENT_VALUES.get(reached, 0),  # type: ignore[arg-type]
            slot=slot, already_submitted=already,
            error=(await self._failure(signature, err)).message if err is not None else "")
        return transaction_builder_pb2.SubmitTransactionResponse(status=message)

    async def _failure(self, signature: Signature, err: object) -> ServiceError:
        """A transaction that landed and failed, as a status: read with its log (getTransaction),
        which names the failing program and, for a withdrawal the throttle refused, how much
        can be withdrawn now. Without the log (the node has none yet, or does not answer) the
        error is named from its code alone."""
        try:
            logs = await self.chain.transaction_logs(signature)
        except ServiceError as exc:
            logger.warning("no log for the failed transaction %s: %s", signature, exc.message)
            logs = []
        return program_error(err, logs, str(self.chain.program.program_id))

    def _audit_entry(self, checked: CheckedTransaction) -> audit.Entry:
        """The submission's audit entry; its id makes it one row however often it is written."""
        return audit.entry(owner=str(next(iter(checked.owners), "")), actor=str(checked.tx.message.account_keys[0]),
                           action="submit:" + ",".join(checked.instructions), signature=checked.signature,
                           entry_id=f"submit:{checked.signature}")

    async def _status(self, signature: Signature) -> Status | None:
        try:
            return await self.chain.status(signature)
        except ServiceError as exc:
            if exc.code != grpc.StatusCode.UNAVAILABLE:
                raise
            raise may_have_landed(str(signature), "the Solana node did not answer the status lookup") from exc

    async def _claim(self, signature: str) -> bool:
        """Whether this is the first submission of `signature` (concurrent claims share one
        Redis round trip)."""
        try:
            return await self._claims(signature)
        except RedisError:
            return True  # the chain's signature status still prevents a double send

    async def _claim_batch(self, signatures: list[str]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for signature in signatures:
            pipe.set(f"{self.prefix}submitted:{signature}", "1", nx=True, ex=CLAIM_SECONDS)
        return [bool(claimed) for claimed in await pipe.execute()]

    async def _release(self, signature: str) -> None:
        try:
            await self.redis.delete(f"{self.prefix}submitted:{signature}")
        except RedisError:
            pass

    async def _wait(self, signature: Signature, wanted: str, seconds: float,
                    first: Status | None = None) -> Status | None:
        """Until the signature reaches `wanted` or fails, or `seconds` pass; `first` is a status
        already in hand (else the chain is asked at once). A node that stops answering is
        UNAVAILABLE naming the signature (`may_have_landed`)."""
        deadline = time.monotonic() + max(seconds - 0.05, 0.0)
        status = first if first is not None else await self._status(signature)
        while time.monotonic() < deadline:
            if status is not None and (status[2] is not None or _RANK.get(status[1], 0) >= _RANK[wanted]):
                return status
            await asyncio.sleep(0.05)
            status = await self._status(signature)
        return status


def may_have_landed(signature: str, reason: str) -> ServiceError:
    """The answer when a transaction may have been sent but its status cannot be learned."""
    return unavailable(f"{reason}: transaction {signature} may have landed. Submit the same signed transaction "
                       f"again to learn its status (it lands at most once), or look it up with getSignatureStatuses "
                       f"[\"{signature}\"]; do not sign a new one for the same intent until then")
