"""Genesis of a vault system on a LiteSVM chain: collateral_vault and position_manager at
their fixed development ids (deployed through the BPF Upgradeable Loader, so the admin is
their upgrade authority), an unauthorized copy of position_manager, a 6-decimal USDT mint
whose mint authority is the faucet key, and the VaultAuthority initialized with
position_manager authorized. Used by localnet and by the test fixtures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction_metadata import FailedTransactionMetadata

from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import ROOT, Chain, program_path
from services.common.vault_program import VaultProgram

PROGRAM_KEYS = ROOT / "program" / "keys"
DEV_KEYS = Path(__file__).resolve().parent / "dev_keys"
USDT_DECIMALS = 6


def read_keypair(path: Path) -> Keypair:
    return Keypair.from_bytes(bytes(json.loads(path.read_text())))


def program_keypair(name: str) -> Keypair:
    return read_keypair(PROGRAM_KEYS / f"{name}-keypair.json")


def dev_keypair(name: str) -> Keypair:
    return read_keypair(DEV_KEYS / f"{name}-keypair.json")


@dataclass
class Deployment:
    admin: Keypair
    faucet: Keypair
    mint: Pubkey
    vault_id: Pubkey
    pm_id: Pubkey
    rogue_pm_id: Pubkey
    program: VaultProgram


def create(chain: Chain, admin: Keypair, faucet: Keypair, mint: Keypair | None = None) -> Deployment:
    """Deploys and initializes everything; ``admin`` must be funded."""
    vault_id = deploy_upgradeable(chain, admin, program_path("collateral_vault").read_bytes(),
                                  program_keypair("collateral_vault"))
    pm_elf = program_path("position_manager").read_bytes()
    pm_id = deploy_upgradeable(chain, admin, pm_elf, program_keypair("position_manager"))
    rogue_pm_id = deploy_upgradeable(chain, admin, pm_elf, program_keypair("position_manager_unauthorized"))
    mint_key = chain.create_mint(admin, faucet.pubkey(), USDT_DECIMALS, mint)
    program = VaultProgram(mint_key, vault_id)
    chain.send_ok([program.initialize_authority(admin.pubkey())], admin)
    chain.send_ok([program.add_authorized_program(admin.pubkey(), pm_id)], admin)
    return Deployment(admin, faucet, mint_key, vault_id, pm_id, rogue_pm_id, program)


def create_dev(chain: Chain) -> Deployment:
    """Genesis with the development keys (localnet)."""
    admin, faucet = dev_keypair("admin"), dev_keypair("faucet")
    for key, sol in ((admin.pubkey(), 10_000), (faucet.pubkey(), 1_000)):
        result = chain.svm.airdrop(key, sol * 10**9)
        if isinstance(result, FailedTransactionMetadata):
            raise RuntimeError(f"genesis airdrop to {key} failed: {result.err()}")
    return create(chain, admin, faucet, dev_keypair("usdt_mint"))
