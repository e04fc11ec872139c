"""CpiManager: the exchange's side of the vaults.

* Operator RPCs (Lock, Release, Settle, Liquidate, `operator` role): validated here, run
  by `executor.py` (signed with the operator key, idempotent by client_request_id).
* Build* RPCs: unsigned transactions for the trader's wallet (grant, revoke, request_exit,
  exit), the exchange's admin (configuration changes) and the vault's admin (including the
  timelock's execute / cancel / delay / withdrawal limits, checked in `timelock.py`).
* Reads from the chain: authorized programs, a vault's locks per program, a trader's grant."""

from __future__ import annotations

import grpc
from collateral_vault.v1 import common_pb2, cpi_manager_pb2, cpi_manager_pb2_grpc
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from services.common import tx_building, validation
from services.common.chain import ChainClient
from services.common.convert import unsigned_message
from services.common.errors import invalid, not_found, unavailable
from services.cpi_manager import timelock
from services.cpi_manager.executor import OperatorExecutor
from services.cpi_manager.operations import LIQUIDATE, LOCK, RELEASE, SETTLE, Leg, Operation
from vault_client import spl_token
from vault_client.config import Settings
from vault_client.vault_program import MAX_SETTLE_PAIRS, Authority, ChangeKind, ConfigChange, ExchangeProgram

MAX_REQUEST_ID = 128
COMMITMENTS = {common_pb2.COMMITMENT_PROCESSED: "processed", common_pb2.COMMITMENT_CONFIRMED: "confirmed",
               common_pb2.COMMITMENT_FINALIZED: "finalized"}
CONFIG_KINDS = {cpi_manager_pb2.CONFIG_CHANGE_KIND_ADMIN: ConfigChange.ADMIN,
                cpi_manager_pb2.CONFIG_CHANGE_KIND_OPERATOR: ConfigChange.OPERATOR,
                cpi_manager_pb2.CONFIG_CHANGE_KIND_EXIT_DELAY: ConfigChange.EXIT_DELAY,
                cpi_manager_pb2.CONFIG_CHANGE_KIND_CONFIG_DELAY: ConfigChange.CONFIG_DELAY}
KEY_KINDS = {ConfigChange.ADMIN, ConfigChange.OPERATOR}


def request_id(value: str) -> str:
    if not value:
        raise invalid("client_request_id is required (the matching engine's idempotency key)")
    if len(value) > MAX_REQUEST_ID:
        raise invalid(f"client_request_id is longer than {MAX_REQUEST_ID} characters")
    return validation.printable(value, "client_request_id")


class CpiManagerService(cpi_manager_pb2_grpc.CpiManagerServicer):
    def __init__(self, chain: ChainClient, settings: Settings, executor: OperatorExecutor) -> None:
        self.chain = chain
        self.settings = settings
        self.executor = executor
        self.exchange: ExchangeProgram = executor.exchange

    # --- helpers ----------------------------------------------------------------------

    async def _build(self, payer: Pubkey, instructions: list[Instruction], vault: Pubkey | None = None,
                     priority_fee: int = 0) -> common_pb2.UnsignedTransaction:
        tx = await tx_building.build(self.chain, payer, instructions, priority_fee)
        return unsigned_message(tx, vault)

    def _commitment(self, value: int) -> str:
        return COMMITMENTS.get(value, self.settings.commitment)  # type: ignore[call-overload]

    def _seconds(self, context: grpc.aio.ServicerContext) -> float:
        """How long an operation may take: the caller's deadline (less a margin to answer
        in), at most OPERATOR_TIMEOUT_SECONDS."""
        remaining = context.time_remaining()
        bound = self.settings.operator_timeout_seconds
        return bound if remaining is None else max(0.05, min(bound, remaining - 0.1))

    async def _has_vault(self, owner: Pubkey, role: str, status: grpc.StatusCode = grpc.StatusCode.NOT_FOUND) -> None:
        if await self.chain.vault(owner) is None:
            if status == grpc.StatusCode.INVALID_ARGUMENT:
                raise invalid(f"{role} {owner} has no vault: settlements move collateral only between vaults")
            raise not_found(f"{role} {owner} has no vault")

    async def _operate(self, context: grpc.aio.ServicerContext, client_request_id: str, op: Operation,
                       commitment: int) -> cpi_manager_pb2.OperationResult:
        async def check() -> None:
            for leg in op.legs:
                await self._has_vault(leg.trader, "payer" if op.kind == SETTLE else "trader")
                if leg.receiver is not None:
                    await self._has_vault(leg.receiver, "receiver", grpc.StatusCode.INVALID_ARGUMENT)

        return await self.executor.run(client_request_id, op, self._commitment(commitment), self._seconds(context),
                                       check)

    # --- operator ---------------------------------------------------------------------

    async def Lock(self, request: cpi_manager_pb2.LockRequest,
                   context: grpc.aio.ServicerContext) -> cpi_manager_pb2.LockResponse:
        op = Operation(LOCK, (Leg(validation.pubkey(request.trader, "trader"), validation.amount(request.amount)),))
        return cpi_manager_pb2.LockResponse(
            result=await self._operate(context, request_id(request.client_request_id), op, request.commitment))

    async def Release(self, request: cpi_manager_pb2.ReleaseRequest,
                      context: grpc.aio.ServicerContext) -> cpi_manager_pb2.ReleaseResponse:
        op = Operation(RELEASE, (Leg(validation.pubkey(request.trader, "trader"),
                                     validation.amount(request.amount)),))
        return cpi_manager_pb2.ReleaseResponse(
            result=await self._operate(context, request_id(request.client_request_id), op, request.commitment))

    async def Liquidate(self, request: cpi_manager_pb2.LiquidateRequest,
                        context: grpc.aio.ServicerContext) -> cpi_manager_pb2.LiquidateResponse:
        trader = validation.pubkey(request.trader, "trader")
        amount = validation.amount(request.amount)
        op = Operation(LIQUIDATE, (Leg(trader, amount, await self.executor.insurance_vault_owner()),),
                       ((str(trader), str(amount), "insurance vault"),))
        return cpi_manager_pb2.LiquidateResponse(
            result=await self._operate(context, request_id(request.client_request_id), op, request.commitment))

    async def Settle(self, request: cpi_manager_pb2.SettleRequest,
                     context: grpc.aio.ServicerContext) -> cpi_manager_pb2.SettleResponse:
        client_request_id = request_id(request.client_request_id)
        if not 1 <= len(request.pairs) <= MAX_SETTLE_PAIRS:
            raise invalid(f"a settlement takes 1 to {MAX_SETTLE_PAIRS} pairs, got {len(request.pairs)}")
        legs, requested = [], []
        for i, pair in enumerate(request.pairs):
            payer = validation.pubkey(pair.payer, f"pairs[{i}].payer")
            amount = validation.amount(pair.amount, f"pairs[{i}].amount")
            if pair.to_fee_vault:
                if pair.receiver:
                    raise invalid(f"pairs[{i}]: give a receiver or to_fee_vault, not both")
                receiver = await self.executor.fee_vault_owner()
            else:
                receiver = validation.pubkey(pair.receiver, f"pairs[{i}].receiver (or to_fee_vault)")
            if receiver == payer:
                raise invalid(f"pairs[{i}]: payer and receiver are the same vault")
            legs.append(Leg(payer, amount, receiver))
            requested.append((str(payer), str(amount), "fee vault" if pair.to_fee_vault else str(receiver)))
        op = Operation(SETTLE, tuple(legs), tuple(requested))
        return cpi_manager_pb2.SettleResponse(
            result=await self._operate(context, client_request_id, op, request.commitment))

    # --- the trader's wallet ------------------------------------------------------------

    async def BuildGrant(self, request: cpi_manager_pb2.BuildGrantRequest,
                         context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildGrantResponse:
        trader = validation.pubkey(request.trader, "trader")
        max_locked = validation.amount(request.max_locked, "max_locked")
        if validation.unix_time(request.expires_at, "expires_at") is None:
            raise invalid("expires_at is required (Unix seconds: no new lock after it)")
        ix = self.exchange.grant(trader, max_locked, request.expires_at)
        return cpi_manager_pb2.BuildGrantResponse(
            transaction=await self._build(trader, [ix], None, request.priority_fee_micro_lamports))

    async def BuildRevoke(self, request: cpi_manager_pb2.BuildRevokeRequest,
                          context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildRevokeResponse:
        trader = validation.pubkey(request.trader, "trader")
        return cpi_manager_pb2.BuildRevokeResponse(transaction=await self._build(
            trader, [self.exchange.revoke(trader)], None, request.priority_fee_micro_lamports))

    async def BuildRequestExit(self, request: cpi_manager_pb2.BuildRequestExitRequest,
                               context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildRequestExitResponse:
        trader = validation.pubkey(request.trader, "trader")
        return cpi_manager_pb2.BuildRequestExitResponse(transaction=await self._build(
            trader, [self.exchange.request_exit(trader)], None, request.priority_fee_micro_lamports))

    async def BuildExit(self, request: cpi_manager_pb2.BuildExitRequest,
                        context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildExitResponse:
        trader = validation.pubkey(request.trader, "trader")
        instructions = [self.exchange.exit(trader)]
        vaults = self.chain.program
        if request.withdraw_amount:
            amount = validation.amount(request.withdraw_amount, "withdraw_amount")
            destination = validation.optional_pubkey(request.destination_token_account, "destination_token_account") \
                or spl_token.associated_token_address(trader, vaults.mint)
            instructions.append(vaults.withdraw(trader, destination, amount))
        elif request.destination_token_account:
            raise invalid("destination_token_account is only used with withdraw_amount")
        return cpi_manager_pb2.BuildExitResponse(transaction=await self._build(
            trader, instructions, vaults.vault(trader), request.priority_fee_micro_lamports))

    # --- the exchange's admin ------------------------------------------------------------

    def _config_kind(self, value: int) -> int:
        if value not in CONFIG_KINDS:
            raise invalid("kind is required: ADMIN, OPERATOR, EXIT_DELAY or CONFIG_DELAY")
        return CONFIG_KINDS[value]  # type: ignore[index]

    async def BuildProposeConfigChange(self, request: cpi_manager_pb2.BuildProposeConfigChangeRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> cpi_manager_pb2.BuildProposeConfigChangeResponse:
        admin = validation.pubkey(request.admin, "admin")
        kind = self._config_kind(request.kind)
        if kind in KEY_KINDS:
            if request.value:
                raise invalid("value is for the delays; an admin or operator change names its key")
            ix = self.exchange.propose_config_change(admin, kind, key=validation.pubkey(request.key, "key"))
        else:
            if request.key:
                raise invalid("key is for an admin or operator change; a delay change gives its value in slots")
            ix = self.exchange.propose_config_change(admin, kind, value=validation.amount(request.value, "value"))
        return cpi_manager_pb2.BuildProposeConfigChangeResponse(transaction=await self._build(admin, [ix]))

    async def BuildApplyConfigChange(self, request: cpi_manager_pb2.BuildApplyConfigChangeRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> cpi_manager_pb2.BuildApplyConfigChangeResponse:
        payer = validation.pubkey(request.payer, "payer")
        ix = self.exchange.apply_config_change(self._config_kind(request.kind))
        return cpi_manager_pb2.BuildApplyConfigChangeResponse(transaction=await self._build(payer, [ix]))

    async def BuildCancelConfigChange(self, request: cpi_manager_pb2.BuildCancelConfigChangeRequest,
                                      context: grpc.aio.ServicerContext
                                      ) -> cpi_manager_pb2.BuildCancelConfigChangeResponse:
        admin = validation.pubkey(request.admin, "admin")
        ix = self.exchange.cancel_config_change(admin, self._config_kind(request.kind))
        return cpi_manager_pb2.BuildCancelConfigChangeResponse(transaction=await self._build(admin, [ix]))

    # --- the vault's admin ----------------------------------------------------------------

    async def ListAuthorizedPrograms(self, request: cpi_manager_pb2.ListAuthorizedProgramsRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> cpi_manager_pb2.ListAuthorizedProgramsResponse:
        authority = await self._authority()
        return cpi_manager_pb2.ListAuthorizedProgramsResponse(programs=[
            cpi_manager_pb2.AuthorizedProgram(program_id=str(p), caller_authority=str(c))
            for p, c in zip(authority.programs, authority.caller_authorities, strict=False)])

    async def BuildAddAuthorizedProgram(self, request: cpi_manager_pb2.BuildAddAuthorizedProgramRequest,
                                        context: grpc.aio.ServicerContext
                                        ) -> cpi_manager_pb2.BuildAddAuthorizedProgramResponse:
        admin = validation.pubkey(request.admin, "admin")
        program = validation.pubkey(request.program_id, "program_id")
        ix = self.chain.program.add_authorized_program(admin, program)
        return cpi_manager_pb2.BuildAddAuthorizedProgramResponse(transaction=await self._build(admin, [ix]))

    async def BuildRemoveAuthorizedProgram(self, request: cpi_manager_pb2.BuildRemoveAuthorizedProgramRequest,
                                           context: grpc.aio.ServicerContext
                                           ) -> cpi_manager_pb2.BuildRemoveAuthorizedProgramResponse:
        admin = validation.pubkey(request.admin, "admin")
        program = validation.pubkey(request.program_id, "program_id")
        ix = self.chain.program.remove_authorized_program(admin, program)
        return cpi_manager_pb2.BuildRemoveAuthorizedProgramResponse(transaction=await self._build(admin, [ix]))

    async def BuildSetPaused(self, request: cpi_manager_pb2.BuildSetPausedRequest,
                             context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildSetPausedResponse:
        admin = validation.pubkey(request.admin, "admin")
        if request.pause_flags > 31:
            raise invalid("pause_flags must combine 1 withdraw, 2 lock, 4 unlock, 8 transfer, 16 initialize/close")
        ix = self.chain.program.set_paused(admin, request.pause_flags)
        return cpi_manager_pb2.BuildSetPausedResponse(transaction=await self._build(admin, [ix]))

    # --- the vault's admin: the timelock (timelock.py) ---------------------------------------

    async def _authority(self) -> Authority:
        authority = await self.chain.authority()
        if authority is None:
            raise unavailable("the VaultAuthority is not initialized on this cluster")
        return authority

    async def BuildExecuteChange(self, request: cpi_manager_pb2.BuildExecuteChangeRequest,
                                 context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildExecuteChangeResponse:
        payer = validation.pubkey(request.payer, "payer")
        change = timelock.queued_change(await self._authority(), request.change_id)
        timelock.executable(change, await self.chain.unix_time())
        program = change.target if change.kind == ChangeKind.AUTHORIZE_PROGRAM else None
        ix = self.chain.program.execute_change(change.change_id, program)
        return cpi_manager_pb2.BuildExecuteChangeResponse(transaction=await self._build(payer, [ix]))

    async def BuildCancelChange(self, request: cpi_manager_pb2.BuildCancelChangeRequest,
                                context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildCancelChangeResponse:
        admin = validation.pubkey(request.admin, "admin")
        change = timelock.queued_change(await self._authority(), request.change_id)
        ix = self.chain.program.cancel_change(admin, change.change_id)
        return cpi_manager_pb2.BuildCancelChangeResponse(transaction=await self._build(admin, [ix]))

    async def BuildSetTimelockDelay(self, request: cpi_manager_pb2.BuildSetTimelockDelayRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> cpi_manager_pb2.BuildSetTimelockDelayResponse:
        admin = validation.pubkey(request.admin, "admin")
        ix = self.chain.program.set_timelock_delay(admin, timelock.delay(request.seconds))
        return cpi_manager_pb2.BuildSetTimelockDelayResponse(transaction=await self._build(admin, [ix]))

    async def BuildSetWithdrawLimits(self, request: cpi_manager_pb2.BuildSetWithdrawLimitsRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> cpi_manager_pb2.BuildSetWithdrawLimitsResponse:
        admin = validation.pubkey(request.admin, "admin")
        limits = timelock.limits(request.max_outflow_bps, request.window_slots, request.min_budget,
                                 request.exempt_amount)
        queued = timelock.loosens((await self._authority()).limits, limits)
        ix = self.chain.program.set_withdraw_limits(admin, limits)
        return cpi_manager_pb2.BuildSetWithdrawLimitsResponse(transaction=await self._build(admin, [ix]),
                                                              queued=queued)

    # --- reads ----------------------------------------------------------------------------

    async def GetLockedBreakdown(self, request: cpi_manager_pb2.GetLockedBreakdownRequest,
                                 context: grpc.aio.ServicerContext) -> cpi_manager_pb2.GetLockedBreakdownResponse:
        owner = validation.pubkey(request.owner, "owner")
        state = await self.chain.vault(owner)
        if state is None:
            raise not_found(f"owner {owner} has no vault")
        return cpi_manager_pb2.GetLockedBreakdownResponse(
            owner=str(owner), locked_total=state.vault.locked_balance, slot=state.slot,
            by_program=[cpi_manager_pb2.LockedByProgram(program_id=str(lock.program), locked=lock.amount)
                        for lock in state.vault.locks])

    async def GetGrant(self, request: cpi_manager_pb2.GetGrantRequest,
                       context: grpc.aio.ServicerContext) -> cpi_manager_pb2.GetGrantResponse:
        trader = validation.pubkey(request.trader, "trader")
        grant = await self.executor.grant(trader)
        if grant is None:
            raise not_found(f"trader {trader} has no grant to the exchange program {self.exchange.program_id}")
        state = await self.chain.vault(trader)
        requested = grant.exit_requested_slot
        return cpi_manager_pb2.GetGrantResponse(
            trader=str(trader), max_locked=grant.max_locked, expires_at=grant.expires_at, revoked=grant.revoked,
            last_op_id=grant.last_op_id, exit_requested_slot=requested,
            exit_deadline_slot=grant.exit_deadline_slot if requested else 0,
            locked=state.vault.locked_by(self.exchange.program_id) if state else 0,
            slot=state.slot if state else await self.chain.slot())
