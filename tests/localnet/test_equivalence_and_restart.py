"""A transaction through localnet's RPC behaves exactly as the same transaction sent to
LiteSVM directly; and `--ledger DIR` keeps balances and history across a restart of the
real `python -m localnet` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from localnet import genesis
from localnet.node_harness import free_port, running_node, wait_healthy
from localnet.svm import ROOT, Chain
from vault_client import spl_token
from vault_client.idl import DecodedEvent
from vault_client.program_logs import data_lines
from vault_client.vault_program import IDL

USDT = 10**6


def events(logs: list[str]) -> list[DecodedEvent]:
    return [IDL.decode_event(line.parts[0]) for line in data_lines(logs) if line.program_id == str(IDL.address)]


async def test_rpc_and_direct_litesvm_agree() -> None:
    wallet, receiver = Keypair(), Keypair()
    direct = Chain(blockhash_check=False)
    deployment = genesis.create_dev(direct)
    vp = deployment.program
    async with running_node() as node, AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        # the same starting state on both sides
        for key in (wallet.pubkey(), receiver.pubkey()):
            sig = (await client.request_airdrop(key, 5 * 10**9)).value
            await client.confirm_transaction(sig, Confirmed, sleep_seconds=0.02)
            direct.svm.airdrop(key, 5 * 10**9)
        setup = [spl_token.create_associated_token_account(wallet.pubkey(), wallet.pubkey(), vp.mint),
                 spl_token.create_associated_token_account(wallet.pubkey(), receiver.pubkey(), vp.mint),
                 spl_token.mint_to(vp.mint, spl_token.associated_token_address(wallet.pubkey(), vp.mint),
                                   deployment.faucet.pubkey(), 100 * USDT),
                 vp.initialize_vault(wallet.pubkey())]
        source = spl_token.associated_token_address(wallet.pubkey(), vp.mint)
        dest = spl_token.associated_token_address(receiver.pubkey(), vp.mint)
        scenario = [[spl_token.transfer(source, dest, wallet.pubkey(), 7 * USDT)],
                    [vp.deposit(wallet.pubkey(), source, 30 * USDT)],
                    [vp.withdraw(wallet.pubkey(), source, 30 * USDT + 1)]]  # fails on both sides
        for step, ixs in enumerate([setup, *scenario]):
            blockhash = (await client.get_latest_blockhash()).value.blockhash
            signers = [wallet, deployment.faucet] if step == 0 else [wallet]
            tx = VersionedTransaction(Message.new_with_blockhash(ixs, wallet.pubkey(), blockhash), signers)
            via_rpc = (await client.simulate_transaction(tx)).value
            if via_rpc.err is None:
                sig = (await client.send_transaction(tx)).value
                await client.confirm_transaction(sig, Confirmed, sleep_seconds=0.02)
            at_direct = direct.svm.send_transaction(tx)
            meta = at_direct.meta() if isinstance(at_direct, FailedTransactionMetadata) else at_direct
            assert isinstance(at_direct, FailedTransactionMetadata) == (via_rpc.err is not None), step
            assert via_rpc.units_consumed == meta.compute_units_consumed(), step
            rpc_logs, direct_logs = list(via_rpc.logs or []), list(meta.logs())
            # event timestamps come from each chain's clock; everything else must match
            strip = [line for line in rpc_logs if not line.startswith("Program data: ")]
            assert strip == [line for line in direct_logs if not line.startswith("Program data: ")], step
            assert [(e.name, {k: v for k, v in e.fields.items() if k != "timestamp"}) for e in events(rpc_logs)] == [
                (e.name, {k: v for k, v in e.fields.items() if k != "timestamp"}) for e in events(direct_logs)]
        for key in (source, dest, vp.vault_token(wallet.pubkey())):
            via_rpc_account = (await client.get_account_info(key)).value
            assert via_rpc_account is not None
            assert bytes(via_rpc_account.data) == bytes(direct.account(key).data)
        vault_rpc = (await client.get_account_info(vp.vault(wallet.pubkey()))).value
        assert vault_rpc is not None
        vault_direct = bytes(direct.account(vp.vault(wallet.pubkey())).data)
        assert bytes(vault_rpc.data)[:112] == vault_direct[:112]  # all but created_at (each chain's clock)


def _start(ledger: Path, rpc: int, ws: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "localnet", "--ledger", str(ledger), "--rpc-port", str(rpc), "--ws-port", str(ws),
         "--slot-ms", "20", "--finality-depth", "4"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_restart_with_ledger_keeps_balances_and_history(tmp_path: Path) -> None:
    from localnet.faucet import fund

    rpc, ws = free_port(), free_port()
    url = f"http://127.0.0.1:{rpc}"
    wallet = Keypair()
    proc = _start(tmp_path, rpc, ws)
    try:
        await wait_healthy(url, proc)
        async with AsyncClient(url, commitment=Confirmed) as client:
            sig = (await client.request_airdrop(wallet.pubkey(), 2 * 10**9)).value
            await client.confirm_transaction(sig, Confirmed, sleep_seconds=0.02)
        token_account, fund_sig = await fund(url, wallet.pubkey(), 42 * USDT)
        async with AsyncClient(url, commitment=Confirmed) as client:
            slot_before = (await client.get_slot(Confirmed)).value
            genesis_before = (await client.get_genesis_hash()).value
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    proc = _start(tmp_path, rpc, ws)
    try:
        await wait_healthy(url, proc)
        async with AsyncClient(url, commitment=Confirmed) as client:
            assert (await client.get_genesis_hash()).value == genesis_before  # the same chain
            assert (await client.get_balance(wallet.pubkey())).value == 2 * 10**9
            assert (await client.get_token_account_balance(token_account)).value.amount == str(42 * USDT)
            from solders.signature import Signature

            tx = (await client.get_transaction(Signature.from_string(fund_sig), commitment=Confirmed)).value
            assert tx is not None and tx.slot <= slot_before
            history = (await client.get_signatures_for_address(token_account, commitment=Confirmed)).value
            assert str(history[0].signature) == fund_sig
            assert (await client.get_slot(Confirmed)).value >= slot_before
            # and the chain goes on: the restored mint still accepts the faucet
            await fund(url, wallet.pubkey(), 1 * USDT)
            assert (await client.get_token_account_balance(token_account)).value.amount == str(43 * USDT)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
