"""Genesis of a vault system on a LiteSVM chain: collateral_vault and position_manager at
their fixed development ids (deployed through the BPF Upgradeable Loader, so the admin is
their upgrade authority), the development-only second position_manager instance (never
authorized), a 6-decimal USDT mint whose mint authority is the faucet key, the
VaultAuthority initialized with position_manager authorized, and the exchange: the fee and
insurance-fund vaults and position_manager's ExchangeConfig with its operator key. Used by
localnet and by the test fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import ROOT, Chain, program_path
from vault_client.keyfile import read_key_file
from vault_client.vault_program import ExchangeProgram, VaultProgram

PROGRAM_KEYS = ROOT / "program" / "keys"
DEV_KEYS = Path(__file__).resolve().parent / "dev_keys"
USDT_DECIMALS = 6
#: development exit and configuration delays: 25 slots, 10 s at localnet's 400 ms slots
DEV_EXIT_DELAY_SLOTS = 25
DEV_CONFIG_DELAY_SLOTS = 25
#: development (localnet, tests): loosening changes of the VaultAuthority apply at once
DEV_TIMELOCK_DELAY = 0
SOL = 10**9


def program_keypair(name: str) -> Keypair:
    return read_key_file(PROGRAM_KEYS / f"{name}-keypair.json")


def dev_keypair(name: str) -> Keypair:
    return read_key_file(DEV_KEYS / f"{name}-keypair.json")


@dataclass
class ExchangeSetup:
    """What genesis gives position_manager's ExchangeConfig: the operator's public key (the
    key itself stays with whoever signs for the matching engine), the owners of the fee and
    insurance-fund vaults (their vaults are created at genesis), and the delays."""

    operator: Pubkey = field(default_factory=lambda: dev_keypair("operator").pubkey())
    fee_owner: Keypair = field(default_factory=lambda: dev_keypair("fee_vault_owner"))
    insurance_owner: Keypair = field(default_factory=lambda: dev_keypair("insurance_vault_owner"))
    exit_delay_slots: int = DEV_EXIT_DELAY_SLOTS
    config_delay_slots: int = DEV_CONFIG_DELAY_SLOTS


@dataclass
class Deployment:
    admin: Keypair
    faucet: Keypair
    mint: Pubkey
    vault_id: Pubkey
    pm_id: Pubkey
    rogue_pm_id: Pubkey
    program: VaultProgram
    exchange: ExchangeProgram
    setup: ExchangeSetup


def create(chain: Chain, admin: Keypair, faucet: Keypair, mint: Keypair | None = None,
           setup: ExchangeSetup | None = None) -> Deployment:
    """Deploys and initializes everything; ``admin`` must be funded."""
    setup = setup or ExchangeSetup()
    vault_id = deploy_upgradeable(chain, admin, program_path("collateral_vault").read_bytes(),
                                  program_keypair("collateral_vault"))
    pm_id = deploy_upgradeable(chain, admin, program_path("position_manager").read_bytes(),
                               program_keypair("position_manager"))
    rogue_pm_id = deploy_upgradeable(chain, admin, program_path("position_manager_unauthorized").read_bytes(),
                                     program_keypair("position_manager_unauthorized"))
    mint_key = chain.create_mint(admin, faucet.pubkey(), USDT_DECIMALS, mint)
    program = VaultProgram(mint_key, vault_id)
    # Development: a timelock delay of 0, so the authorization is queued and executed at once.
    chain.send_ok([program.initialize_authority(admin.pubkey(), DEV_TIMELOCK_DELAY)], admin)
    chain.send_ok(program.authorize_program_now(admin.pubkey(), pm_id, 1), admin)
    for owner in (setup.fee_owner, setup.insurance_owner):
        fund(chain, owner.pubkey(), 10 * SOL)
        chain.send_ok([program.initialize_vault(owner.pubkey())], owner)
    exchange = ExchangeProgram(program, pm_id)
    chain.send_ok([exchange.initialize_exchange(admin.pubkey(), setup.operator, setup.fee_owner.pubkey(),
                                                setup.insurance_owner.pubkey(), setup.exit_delay_slots,
                                                setup.config_delay_slots)], admin)
    return Deployment(admin, faucet, mint_key, vault_id, pm_id, rogue_pm_id, program, exchange, setup)


def fund(chain: Chain, key: Pubkey, lamports: int) -> None:
    result = chain.svm.airdrop(key, lamports)
    if isinstance(result, FailedTransactionMetadata):
        raise RuntimeError(f"genesis airdrop to {key} failed: {result.err()}")


def create_dev(chain: Chain, setup: ExchangeSetup | None = None) -> Deployment:
    """Genesis with the development keys (localnet); ``setup`` names the operator's public
    key and the delays (development defaults otherwise)."""
    admin, faucet = dev_keypair("admin"), dev_keypair("faucet")
    fund(chain, admin.pubkey(), 10_000 * SOL)
    fund(chain, faucet.pubkey(), 1_000 * SOL)
    return create(chain, admin, faucet, dev_keypair("usdt_mint"), setup)
