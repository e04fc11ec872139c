"""CpiManager. Position flows are checked against the chain before anything is built
(above available / above locked: FAILED_PRECONDITION) and are idempotent by the caller's
client request id: the same id returns the same transaction; reused with other
parameters, it is refused."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import grpc
from collateral_vault.v1 import common_pb2, cpi_manager_pb2, cpi_manager_pb2_grpc
from google.protobuf.message import Message as ProtoMessage
from solders.pubkey import Pubkey

from services.common import tx_building, validation
from services.common.chain import ChainClient, VaultState
from services.common.convert import unsigned_message
from services.common.errors import ServiceError, invalid, not_found, precondition, unavailable
from services.common.quoting import quoted

R = TypeVar("R", bound=ProtoMessage)
MAX_REQUEST_ID = 128
# position_manager no longer takes trader-signed locks, unlocks or settlements (issue 22): the
# operator signs them inside the trader's grant. Until cpi_manager's operator RPCs exist, the
# old Build* calls for them answer this.
RETIRED = ("position_manager no longer takes trader-signed locks, unlocks or settlements: the exchange's "
           "operator signs them within the trader's grant (issue 22); the trader signs grant, revoke and exit")


class CpiManagerService(cpi_manager_pb2_grpc.CpiManagerServicer):
    def __init__(self, chain: ChainClient, pool: asyncpg.Pool, position_manager: Pubkey) -> None:
        self.chain = chain
        self.pool = pool
        self.position_manager = position_manager

    # --- helpers ----------------------------------------------------------------------

    async def _vault(self, owner: Pubkey, role: str = "owner") -> VaultState:
        state = await self.chain.vault(owner)
        if state is None:
            raise not_found(f"{role} {owner} has no vault")
        return state

    async def _idempotent(self, owner: Pubkey, request_id: str, operation: str, fingerprint: str,
                          response_type: type[R], build: Callable[[], Awaitable[R]]) -> R:
        if not request_id:
            raise invalid("client_request_id is required (the matching engine's idempotency key)")
        if len(request_id) > MAX_REQUEST_ID:
            raise invalid(f"client_request_id is longer than {MAX_REQUEST_ID} characters")
        validation.printable(request_id, "client_request_id")
        digest = hashlib.sha256(f"{operation}|{fingerprint}".encode()).hexdigest()
        row = await self.pool.fetchrow("SELECT operation, fingerprint, response FROM cpi_requests "
                                       "WHERE owner = $1 AND request_id = $2", str(owner), request_id)
        if row is not None:
            if row["fingerprint"] != digest:
                raise ServiceError(grpc.StatusCode.ALREADY_EXISTS,
                                   f"client_request_id {quoted(request_id)} was already used for a different request "
                                   f"({row['operation']})")
            return response_type.FromString(row["response"])
        response = await build()
        stored = await self.pool.fetchrow(
            "INSERT INTO cpi_requests (owner, request_id, operation, fingerprint, response) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, request_id) DO NOTHING RETURNING response",
            str(owner), request_id, operation, digest, response.SerializeToString())
        if stored is None:  # a concurrent twin won: return what it stored
            row = await self.pool.fetchrow("SELECT fingerprint, response FROM cpi_requests "
                                           "WHERE owner = $1 AND request_id = $2", str(owner), request_id)
            if row is None or row["fingerprint"] != digest:
                raise ServiceError(grpc.StatusCode.ALREADY_EXISTS, f"client_request_id {quoted(request_id)} is in use")
            return response_type.FromString(row["response"])
        return response

    async def _build(self, payer: Pubkey, instruction: object, vault: Pubkey | None) -> common_pb2.UnsignedTransaction:
        tx = await tx_building.build(self.chain, payer, [instruction])  # type: ignore[list-item]
        return unsigned_message(tx, vault)

    # --- authority --------------------------------------------------------------------

    async def ListAuthorizedPrograms(self, request: cpi_manager_pb2.ListAuthorizedProgramsRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> cpi_manager_pb2.ListAuthorizedProgramsResponse:
        authority = await self.chain.authority()
        if authority is None:
            raise unavailable("the VaultAuthority is not initialized on this cluster")
        return cpi_manager_pb2.ListAuthorizedProgramsResponse(programs=[
            cpi_manager_pb2.AuthorizedProgram(program_id=str(p), caller_authority=str(c))
            for p, c in zip(authority.programs, authority.caller_authorities, strict=False)])

    async def BuildAddAuthorizedProgram(self, request: cpi_manager_pb2.BuildAddAuthorizedProgramRequest,
                                        context: grpc.aio.ServicerContext
                                        ) -> cpi_manager_pb2.BuildAddAuthorizedProgramResponse:
        admin = validation.pubkey(request.admin, "admin")
        program = validation.pubkey(request.program_id, "program_id")
        ix = self.chain.program.add_authorized_program(admin, program)
        return cpi_manager_pb2.BuildAddAuthorizedProgramResponse(transaction=await self._build(admin, ix, None))

    async def BuildRemoveAuthorizedProgram(self, request: cpi_manager_pb2.BuildRemoveAuthorizedProgramRequest,
                                           context: grpc.aio.ServicerContext
                                           ) -> cpi_manager_pb2.BuildRemoveAuthorizedProgramResponse:
        admin = validation.pubkey(request.admin, "admin")
        program = validation.pubkey(request.program_id, "program_id")
        ix = self.chain.program.remove_authorized_program(admin, program)
        return cpi_manager_pb2.BuildRemoveAuthorizedProgramResponse(transaction=await self._build(admin, ix, None))

    async def BuildSetPaused(self, request: cpi_manager_pb2.BuildSetPausedRequest,
                             context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildSetPausedResponse:
        admin = validation.pubkey(request.admin, "admin")
        if request.pause_flags > 31:
            raise invalid("pause_flags must combine 1 withdraw, 2 lock, 4 unlock, 8 transfer, 16 initialize/close")
        ix = self.chain.program.set_paused(admin, request.pause_flags)
        return cpi_manager_pb2.BuildSetPausedResponse(transaction=await self._build(admin, ix, None))

    # --- positions --------------------------------------------------------------------

    async def BuildLockCollateral(self, request: cpi_manager_pb2.BuildLockCollateralRequest,
                                  context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildLockCollateralResponse:
        owner = validation.pubkey(request.owner, "owner")
        amount = validation.amount(request.amount)

        async def build() -> cpi_manager_pb2.BuildLockCollateralResponse:
            state = await self._vault(owner)
            if amount > state.vault.available_balance:
                raise precondition(f"cannot lock {amount}: the vault has {state.vault.available_balance} available")
            raise precondition(RETIRED)

        return await self._idempotent(owner, request.client_request_id, "lock", f"{amount}",
                                      cpi_manager_pb2.BuildLockCollateralResponse, build)

    async def BuildUnlockCollateral(self, request: cpi_manager_pb2.BuildUnlockCollateralRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> cpi_manager_pb2.BuildUnlockCollateralResponse:
        owner = validation.pubkey(request.owner, "owner")
        amount = validation.amount(request.amount)

        async def build() -> cpi_manager_pb2.BuildUnlockCollateralResponse:
            state = await self._vault(owner)
            if amount > state.vault.locked_balance:
                raise precondition(f"cannot unlock {amount}: the vault has {state.vault.locked_balance} locked")
            raise precondition(RETIRED)

        return await self._idempotent(owner, request.client_request_id, "unlock", f"{amount}",
                                      cpi_manager_pb2.BuildUnlockCollateralResponse, build)

    async def BuildSettle(self, request: cpi_manager_pb2.BuildSettleRequest,
                          context: grpc.aio.ServicerContext) -> cpi_manager_pb2.BuildSettleResponse:
        payer = validation.pubkey(request.payer, "payer")
        receiver = validation.pubkey(request.receiver, "receiver")
        amount = validation.amount(request.amount)
        if payer == receiver:
            raise invalid("payer and receiver are the same vault")

        async def build() -> cpi_manager_pb2.BuildSettleResponse:
            state = await self._vault(payer, "payer")
            await self._vault(receiver, "receiver")
            if amount > state.vault.locked_balance:
                raise precondition(f"cannot settle {amount}: the payer has {state.vault.locked_balance} locked")
            raise precondition(RETIRED)

        return await self._idempotent(payer, request.client_request_id, "settle", f"{receiver}|{amount}",
                                      cpi_manager_pb2.BuildSettleResponse, build)

    async def GetLockedBreakdown(self, request: cpi_manager_pb2.GetLockedBreakdownRequest,
                                 context: grpc.aio.ServicerContext) -> cpi_manager_pb2.GetLockedBreakdownResponse:
        owner = validation.pubkey(request.owner, "owner")
        rows = await self.pool.fetch(
            "SELECT caller_program, SUM(CASE kind WHEN 'lock' THEN amount ELSE -amount END) AS locked "
            "FROM transactions WHERE owner = $1 AND kind IN ('lock', 'unlock', 'transfer') "
            "AND caller_program IS NOT NULL GROUP BY caller_program ORDER BY caller_program", str(owner))
        by_program = [cpi_manager_pb2.LockedByProgram(program_id=r["caller_program"], locked=int(r["locked"]))
                      for r in rows if int(r["locked"]) > 0]
        vault = await self.pool.fetchval("SELECT locked_balance FROM vaults WHERE owner = $1", str(owner))
        return cpi_manager_pb2.GetLockedBreakdownResponse(
            owner=str(owner), locked_total=int(vault or 0), by_program=by_program)


