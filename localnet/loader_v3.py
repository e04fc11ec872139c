"""Deploying a program the way a cluster does: through the BPF Upgradeable Loader
(InitializeBuffer, Write in chunks, DeployWithMaxDataLen). Deployment runs the loader's
strict ELF checks and the verifier, which `LiteSVM.add_program` does not all apply."""

from __future__ import annotations

import struct

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.sysvar import CLOCK, RENT

from localnet.svm import Chain
from vault_client.spl_token import SYSTEM_PROGRAM_ID

LOADER_V3 = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
BUFFER_METADATA = 37
PROGRAM_SIZE = 36
CHUNK = 900


def deploy_upgradeable(chain: Chain, payer: Keypair, elf: bytes, program: Keypair | None = None) -> Pubkey:
    """Deploys ``elf`` (at ``program``'s address, or a new one) with ``payer`` as upgrade
    authority and returns the program id; raises on any loader refusal."""
    buffer = Keypair()
    program = program or Keypair()
    rent = chain.svm.minimum_balance_for_rent_exemption
    chain.send_ok(
        [
            create_account(CreateAccountParams(
                from_pubkey=payer.pubkey(), to_pubkey=buffer.pubkey(),
                lamports=rent(BUFFER_METADATA + len(elf)), space=BUFFER_METADATA + len(elf), owner=LOADER_V3,
            )),
            Instruction(LOADER_V3, struct.pack("<I", 0),
                        [AccountMeta(buffer.pubkey(), False, True), AccountMeta(payer.pubkey(), False, False)]),
        ],
        payer, buffer,
    )
    for offset in range(0, len(elf), CHUNK):
        chunk = elf[offset:offset + CHUNK]
        data = struct.pack("<IIQ", 1, offset, len(chunk)) + chunk
        chain.send_ok(
            [Instruction(LOADER_V3, data,
                         [AccountMeta(buffer.pubkey(), False, True), AccountMeta(payer.pubkey(), True, False)])],
            payer,
        )
    programdata = Pubkey.find_program_address([bytes(program.pubkey())], LOADER_V3)[0]
    chain.send_ok(
        [
            create_account(CreateAccountParams(
                from_pubkey=payer.pubkey(), to_pubkey=program.pubkey(),
                lamports=rent(PROGRAM_SIZE), space=PROGRAM_SIZE, owner=LOADER_V3,
            )),
            Instruction(
                LOADER_V3,
                struct.pack("<IQ", 2, len(elf) * 2),
                [
                    AccountMeta(payer.pubkey(), True, True),
                    AccountMeta(programdata, False, True),
                    AccountMeta(program.pubkey(), False, True),
                    AccountMeta(buffer.pubkey(), False, True),
                    AccountMeta(RENT, False, False),
                    AccountMeta(CLOCK, False, False),
                    AccountMeta(SYSTEM_PROGRAM_ID, False, False),
                    AccountMeta(payer.pubkey(), True, False),
                ],
            ),
        ],
        payer, program,
    )
    return program.pubkey()
