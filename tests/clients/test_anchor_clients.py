"""Issue 23's acceptance for items 5 and 6: two third-party Anchor clients, driven only by the
IDLs this repository ships, against `python -m localnet` (a real node process with the real
programs, started here): @coral-xyz/anchor 0.30+ from the npm registry reads the
specification IDLs (program/idl/spec/), anchorpy reads the legacy ones (program/idl/). Each
client constructs its `Program`s, creates a vault, deposits, decodes the vault account, the
exchange's configuration and the events, then overdraws. Checked here against the chain
(read and decoded by the project's own codec) and the IDL.

Nothing is skipped or mocked: node, npm and the registries must be reachable (the clients
are installed on first use and kept, tests/support/anchor_clients.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.faucet import fund
from localnet.genesis import dev_keypair
from localnet.node_harness import free_port, wait_healthy
from localnet.svm import ROOT
from tests.support.anchor_clients import (
    ANCHORPY_CLIENT,
    ANCHORPY_PYTHON,
    TS_CLIENT,
    ensure_anchorpy,
    ensure_ts_client,
    node_binary,
)
from vault_client.vault_program import IDL

pytestmark = pytest.mark.timeout(900)  # a first run installs both clients

AMOUNT = 25_000_000  # 25 USDT
OVERDRAW = {"code": "InsufficientAvailableBalance", "number": 6002,
            "message": "The amount exceeds the vault's available balance"}


@dataclass(frozen=True)
class Localnet:
    url: str
    ws_url: str
    tmp: Path


@pytest.fixture(scope="module")
def localnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    rpc, ws = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "localnet", "--rpc-port", str(rpc), "--ws-port", str(ws), "--slot-ms", "50",
         "--finality-depth", "4"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{rpc}"
    try:
        asyncio.run(wait_healthy(url, process))
        yield Localnet(url, f"ws://127.0.0.1:{ws}", tmp_path_factory.mktemp("anchor_clients"))
    finally:
        process.terminate()
        process.wait(timeout=30)


def funded_owner(net: Localnet, name: str) -> tuple[Keypair, Path]:
    """A new wallet with SOL for fees and AMOUNT test USDT; its keypair file for the client."""
    owner = Keypair()

    async def run() -> None:
        async with AsyncClient(net.url) as client:
            signature = (await client.request_airdrop(owner.pubkey(), 10**10)).value
            await client.confirm_transaction(signature, Confirmed)
        await fund(net.url, owner.pubkey(), AMOUNT)

    asyncio.run(run())
    path = net.tmp / f"{name}.json"
    path.write_text(json.dumps(list(bytes(owner))))
    return owner, path


def chain_vault(net: Localnet, owner: Pubkey) -> tuple[Pubkey, dict[str, Any]]:
    """The owner's vault as the project's own codec decodes it from the node."""
    vault = Pubkey.find_program_address([b"vault", bytes(owner)], IDL.address)[0]

    async def run() -> bytes:
        async with AsyncClient(net.url, commitment=Confirmed) as client:
            info = (await client.get_account_info(vault)).value
            assert info is not None
            return bytes(info.data)

    return vault, IDL.decode_account("CollateralVault", asyncio.run(run()))


def run_client(argv: list[str], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{argv[:2]} failed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check_common(result: dict[str, Any], net: Localnet, owner: Pubkey, key: dict[str, str]) -> None:
    """What both clients must have decoded: `key` maps the codec's field names to the client's."""
    vault, on_chain = chain_vault(net, owner)
    assert result["vaultAddress"] == str(vault)
    decoded = result["vault"]
    for codec_name, client_name in key.items():
        assert str(decoded[client_name]) == str(on_chain[codec_name]), codec_name
    assert decoded[key["total_balance"]] == decoded[key["available_balance"]] == str(AMOUNT)
    assert decoded[key["event_seq"]] == "2"
    assert result["exchangeOperator"] == str(dev_keypair("operator").pubkey())
    events = {e["name"][0].upper() + e["name"][1:]: e["data"] for e in result["events"]}
    assert set(events) == {"VaultInitialized", "Deposited"}
    assert events["VaultInitialized"]["owner"] == str(owner)
    assert events["VaultInitialized"]["seq"] == "1"
    assert events["Deposited"]["amount"] == str(AMOUNT)
    assert events["Deposited"]["seq"] == "2"
    assert {e["data"]["vault"] for e in result["events"]} == {str(vault)}


def test_anchor_typescript_client_reads_the_spec_idls_and_raises_anchor_error_by_name(localnet: Localnet) -> None:
    ensure_ts_client()
    owner, keypair = funded_owner(localnet, "ts-owner")
    argv = [node_binary(), "client.mjs", localnet.url, localnet.ws_url, str(keypair), str(AMOUNT)]
    result = run_client(argv, TS_CLIENT)
    major, minor = (int(part) for part in result["anchorVersion"].split(".")[:2])
    assert (major, minor) >= (0, 30), result["anchorVersion"]
    check_common(result, localnet, owner.pubkey(), {
        "owner": "owner", "token_account": "tokenAccount", "total_balance": "totalBalance",
        "available_balance": "availableBalance", "locked_balance": "lockedBalance", "event_seq": "eventSeq"})
    assert result["overdraw"] == {"raised": "AnchorError", **OVERDRAW, "program": str(IDL.address)}


def test_anchorpy_reads_the_legacy_idls_and_names_the_overdraw(localnet: Localnet) -> None:
    """anchorpy 0.21 does not parse the AnchorError line: it raises its ProgramError with the
    code and the IDL's message; the client names it from the IDL's errors."""
    ensure_anchorpy()
    owner, keypair = funded_owner(localnet, "anchorpy-owner")
    result = run_client([str(ANCHORPY_PYTHON), "client.py", localnet.url, str(keypair), str(AMOUNT)],
                        ANCHORPY_CLIENT)
    check_common(result, localnet, owner.pubkey(), {
        "owner": "owner", "token_account": "token_account", "total_balance": "total_balance",
        "available_balance": "available_balance", "locked_balance": "locked_balance", "event_seq": "event_seq"})
    line = (f"Program log: AnchorError occurred. Error Code: {OVERDRAW['code']}. Error Number: {OVERDRAW['number']}. "
            f"Error Message: {OVERDRAW['message']}.")
    assert result["overdraw"] == {"raised": "ProgramError", **OVERDRAW, "anchorLine": line}
