"""VaultManager: GetVault (process memory, then the Redis cache, then the chain), ListVaults
(paged), GetVaultAddress, GetAuthority (with the timelock's queued changes and the
withdrawal throttle's limits and state)."""

from __future__ import annotations

import grpc
from collateral_vault.v1 import common_pb2, vault_manager_pb2, vault_manager_pb2_grpc

from services.common import validation
from services.common.chain import ChainClient
from services.common.convert import vault_message
from services.common.errors import not_found, unavailable
from services.common.metrics import CACHE_LOOKUPS
from services.common.vault_cache import VaultCache
from services.common.vault_program import ChangeKind, QueuedChange
from services.vault_manager.mirror import VaultMirror

# How long an answer is served from process memory after it was last confirmed. The mirror
# is updated by this process's own programSubscribe notifications, so in practice it is as
# current as the chain at the service's commitment.
LOCAL_TTL_SECONDS = 1.0


class VaultManagerService(vault_manager_pb2_grpc.VaultManagerServicer):
    def __init__(self, chain: ChainClient, cache: VaultCache, service: str = "vault_manager") -> None:
        self.chain = chain
        self.cache = cache
        self.service = service
        self.mirror = VaultMirror(chain.program, LOCAL_TTL_SECONDS)
        self._hits = CACHE_LOOKUPS.labels(service, "hit")
        self._misses = CACHE_LOOKUPS.labels(service, "miss")

    async def GetVault(self, request: vault_manager_pb2.GetVaultRequest,
                       context: grpc.aio.ServicerContext) -> vault_manager_pb2.GetVaultResponse:
        """From memory, else Redis (written by balance_tracker's indexer), else the chain;
        never a state older than the newest change this process knows of (`mirror.py`)."""
        if not request.fresh:
            held = self.mirror.answer(request.owner)
            if held is not None:
                self._hits.inc()
                return held
        owner = validation.pubkey(request.owner, "owner")
        if not request.fresh:
            cached = await self.cache.get(owner)
            if cached is not None and self.mirror.current(str(owner), cached[1]):
                # a newer answer may have arrived (a notification) while Redis was read
                answer = self.mirror.remember(*cached) or self.mirror.answer(str(owner))
                if answer is not None:
                    self._hits.inc()
                    return answer
            self._misses.inc()
        state = await self.chain.vault(owner)
        if state is None:
            raise not_found(f"no vault for owner {owner} (expected at {self.chain.program.vault(owner)}); "
                            "initialize it first")
        await self.cache.put(state.vault, state.slot)
        self.mirror.remember(state.vault, state.slot)
        return vault_manager_pb2.GetVaultResponse(
            vault=vault_message(state.vault, state.address, state.slot, common_pb2.DATA_SOURCE_CHAIN))

    async def ListVaults(self, request: vault_manager_pb2.ListVaultsRequest,
                         context: grpc.aio.ServicerContext) -> vault_manager_pb2.ListVaultsResponse:
        size = validation.page_size(request.page_size)
        after = str(validation.pubkey(request.page_token, "page_token")) if request.page_token else ""
        states = sorted(await self.chain.vaults(), key=lambda s: str(s.address))
        page = [s for s in states if str(s.address) > after][:size]
        more = len([s for s in states if str(s.address) > after]) > size
        return vault_manager_pb2.ListVaultsResponse(
            vaults=[vault_message(s.vault, s.address, s.slot, common_pb2.DATA_SOURCE_CHAIN) for s in page],
            next_page_token=str(page[-1].address) if more and page else "")

    async def GetVaultAddress(self, request: vault_manager_pb2.GetVaultAddressRequest,
                              context: grpc.aio.ServicerContext) -> vault_manager_pb2.GetVaultAddressResponse:
        owner = validation.pubkey(request.owner, "owner")
        program = self.chain.program
        return vault_manager_pb2.GetVaultAddressResponse(
            vault=str(program.vault(owner)), token_account=str(program.vault_token(owner)),
            program_id=str(program.program_id), usdt_mint=str(program.mint))

    async def GetAuthority(self, request: vault_manager_pb2.GetAuthorityRequest,
                           context: grpc.aio.ServicerContext) -> vault_manager_pb2.GetAuthorityResponse:
        authority = await self.chain.authority()
        if authority is None:
            raise unavailable("the VaultAuthority is not initialized on this cluster")
        limits = authority.limits
        return vault_manager_pb2.GetAuthorityResponse(
            address=str(self.chain.program.authority), admin=str(authority.admin),
            pending_admin=str(authority.pending_admin), usdt_mint=str(authority.usdt_mint),
            authorized_programs=[str(p) for p in authority.programs], pause_flags=authority.pause_flags,
            timelock_delay=authority.timelock_delay,
            pending_changes=[queued_change(change) for change in authority.pending_changes],
            withdraw_limits=vault_manager_pb2.WithdrawLimits(
                max_outflow_bps=limits.max_outflow_bps, window_slots=limits.window_slots,
                min_budget=limits.min_budget, exempt_amount=limits.exempt_amount),
            tvl=authority.tvl, outflow_budget=authority.outflow_budget, exempt_budget=authority.exempt_budget,
            last_refill_slot=authority.last_refill_slot)


def queued_change(change: QueuedChange) -> vault_manager_pb2.QueuedChange:
    return vault_manager_pb2.QueuedChange(
        change_id=change.change_id, kind=ChangeKind.name_of(change.kind), target=str(change.target),
        values=list(change.values), eta=change.eta)
