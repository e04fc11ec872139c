"""VaultManager: GetVault (process memory, then the Redis cache, then the chain), ListVaults
(keyset pages of the indexed vault rows in PostgreSQL, read by worker processes, with signed
page tokens),
GetVaultAddress, GetAuthority (with the timelock's queued changes and the withdrawal
throttle's limits and state)."""

from __future__ import annotations

import grpc
from collateral_vault.v1 import common_pb2, vault_manager_pb2, vault_manager_pb2_grpc

from services.common import validation
from services.common.chain import ChainClient
from services.common.convert import vault_message
from services.common.errors import invalid, not_found, unavailable
from services.common.metrics import CACHE_LOOKUPS
from services.common.page_tokens import PageTokens
from services.common.vault_cache import VaultCache
from services.vault_manager.mirror import VaultMirror
from services.vault_manager.page_workers import PageWorkers
from vault_client.vault_program import ChangeKind, QueuedChange

# How long an answer is served from process memory after it was last confirmed. The mirror
# is updated by this process's own programSubscribe notifications, so in practice it is as
# current as the chain at the service's commitment.
LOCAL_TTL_SECONDS = 1.0


class VaultManagerService(vault_manager_pb2_grpc.VaultManagerServicer):
    def __init__(self, chain: ChainClient, cache: VaultCache, service: str = "vault_manager",
                 pages: PageWorkers | None = None, tokens: PageTokens | None = None) -> None:
        self.chain = chain
        self.pages = pages  # the processes that read the indexed vault rows (ListVaults)
        self.tokens = tokens
        self.cache = cache
        self.service = service
        self.mirror = VaultMirror(chain.program, LOCAL_TTL_SECONDS)
        self._hits = CACHE_LOOKUPS.labels(service, "hit")
        self._misses = CACHE_LOOKUPS.labels(service, "miss")

    async def GetVault(self, request: vault_manager_pb2.GetVaultRequest,
                       context: grpc.aio.ServicerContext) -> vault_manager_pb2.GetVaultResponse:
        """From memory, else Redis (written by balance_tracker's indexer, trusted only while
        the indexer vouches for it: `vault_cache.py`), else the chain; never a state older
        than the newest change this process knows of (`mirror.py`)."""
        if not request.fresh:
            held = self.mirror.answer(request.owner)
            if held is not None:
                self._hits.inc()
                return held
        owner = validation.pubkey(request.owner, "owner")
        if not request.fresh:
            cached = await self.cache.get_if_current(owner)
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
        """One indexed range read per page (`vault_rows.page`, in a worker process:
        `page_workers.py`): no chain read, and a page costs the same whichever page it is and
        however many vaults there are."""
        size = validation.page_size(request.page_size)
        if self.pages is None or self.tokens is None:
            raise unavailable("this process serves no vault listing (it has no database)")
        after = ""
        if request.page_token:
            position = self.tokens.read(request.page_token)
            if len(position) != 1 or not isinstance(position[0], str):
                raise invalid("page_token is not a token this service issued; start from the first page")
            after = position[0]
        response, last, more = await self.pages.page(after, size)
        if more:
            response.next_page_token = self.tokens.issue([last])
        return response

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
