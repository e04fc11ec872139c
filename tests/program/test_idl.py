"""The IDLs cannot drift from the programs, for both collateral_vault and position_manager:
the discriminators and argument sizes each program accepts (checked against the running
program), error codes and names, event names, account and type field order, types and sizes
(against the Rust sources), and every event's exact byte length as the program emits it."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from localnet.genesis import program_keypair
from localnet.loader_v3 import deploy_upgradeable
from localnet.svm import ROOT, Chain, program_path
from localnet.vault_env import USDT, VaultEnv, error_name
from vault_client import spl_token
from vault_client.idl import CodecError, Idl, Layout, camel, discriminator, load_idl, snake
from vault_client.program_logs import data_lines
from vault_client.vault_program import IDL, PM_IDL, ConfigChange, ExchangeProgram, SettlePair, VaultProgram

PROGRAM = ROOT / "program"


@dataclass(frozen=True)
class Sources:
    """Where each program's Rust definitions live."""

    idl: Idl
    instructions: Path
    errors: Path
    events: Path
    structs: dict[str, Path]


VAULT = Sources(IDL, PROGRAM / "vault-interface/src/instruction.rs", PROGRAM / "collateral-vault/src/error.rs",
                PROGRAM / "collateral-vault/src/events.rs",
                {"CollateralVault": PROGRAM / "vault-interface/src/state.rs",
                 "ProgramLock": PROGRAM / "vault-interface/src/state.rs",
                 "VaultAuthority": PROGRAM / "collateral-vault/src/state/authority.rs",
                 "PendingChange": PROGRAM / "collateral-vault/src/state/authority.rs"})
EXCHANGE = Sources(PM_IDL, PROGRAM / "position-manager/src/instruction.rs", PROGRAM / "position-manager/src/error.rs",
                   PROGRAM / "position-manager/src/events.rs",
                   {"ExchangeConfig": PROGRAM / "position-manager/src/state.rs",
                    "Grant": PROGRAM / "position-manager/src/state.rs",
                    "PendingChange": PROGRAM / "position-manager/src/state.rs"})
BOTH = pytest.mark.parametrize("src", [VAULT, EXCHANGE], ids=["collateral_vault", "position_manager"])


def rust_struct(path: Path, struct: str) -> list[tuple[str, str]]:
    text = path.read_text()
    body = text[text.index(f"pub struct {struct} {{"):]
    body = body[: body.index("\n}")]
    return [(name, ty) for name, ty in re.findall(r"^\s+pub (\w+): (.+),$", body, re.M) if name != "discriminator"]


def rust_constant(name: str) -> int:
    """A `const NAME: usize = N;` anywhere in the programs (array lengths)."""
    for path in PROGRAM.glob("*/src/**/*.rs"):
        found = re.search(rf"const {name.split('::')[-1]}: usize = (\d+);", path.read_text())
        if found:
            return int(found.group(1))
    raise AssertionError(f"no constant {name}")


def idl_type_of(rust: str) -> Any:
    rust = rust.strip()
    array = re.fullmatch(r"\[(.+); (.+)\]", rust)
    if array:
        length = array.group(2)
        return {"array": [idl_type_of(array.group(1)), int(length) if length.isdigit() else rust_constant(length)]}
    return {"Pubkey": "publicKey"}.get(rust, rust if rust in ("u8", "u64", "i64") else {"defined": rust})


def arg_bytes(ty: Any) -> bytes:
    """Zero-valued Borsh bytes of an argument (an empty vec for a vec)."""
    sizes = {"u64": 8, "i64": 8, "u8": 1, "bool": 1, "publicKey": 32}
    if isinstance(ty, dict) and "vec" in ty:
        return bytes(4)
    return bytes(sizes[ty])


@BOTH
def test_every_idl_instruction_is_recognised_by_the_program(src: Sources) -> None:
    env = VaultEnv()
    program_id = env.vault_id if src is VAULT else env.pm_id
    payer = env.chain.wallet()
    for name, ix in src.idl.instructions.items():
        data = ix.discriminator + b"".join(arg_bytes(a["type"]) for a in ix.args)
        # Decoded, then refused for missing accounts: the discriminator and arg sizes match.
        assert error_name(env.fails([Instruction(program_id, data, [])], payer)) == "MissingAccounts", name
        for bad in (data + b"\x00", data[:-1] if len(data) > 8 else b""):
            result = env.fails([Instruction(program_id, bad, [])], payer)
            assert error_name(result) == "InvalidInstruction", (name, bad)
    result = env.fails([Instruction(program_id, discriminator("global", "no_such_ix"), [])], payer)
    assert error_name(result) == "InvalidInstruction"


@BOTH
def test_rust_instruction_names_match_the_idl(src: Sources) -> None:
    assert set(re.findall(r'instruction\("(\w+)"\)', src.instructions.read_text())) == set(src.idl.instructions)


@BOTH
def test_errors_match_the_rust_enum(src: Sources) -> None:
    text = src.errors.read_text()
    rust = {int(code): (name, doc.rstrip(".")) for doc, name, code in re.findall(r"/// (.+)\n\s+(\w+) = (\d+),", text)}
    assert rust == src.idl.errors
    assert len({name for name, _ in rust.values()}) == len(rust)


@BOTH
def test_events_match_the_rust_constants(src: Sources) -> None:
    assert set(re.findall(r'event\("(\w+)"\)', src.events.read_text())) == set(src.idl.events)


@BOTH
def test_account_and_type_fields_in_rust_order_with_rust_types(src: Sources) -> None:
    raw = src.idl.raw
    declared = {a["name"]: a["type"]["fields"] for a in raw["accounts"]}
    declared |= {t["name"]: t["type"]["fields"] for t in raw.get("types", []) if t["name"] in src.structs}
    assert set(declared) == set(src.structs)
    for struct, path in src.structs.items():
        rust = rust_struct(path, struct)
        assert [name for name, _ in rust] == [snake(f["name"]) for f in declared[struct]], struct
        for (name, ty), spec in zip(rust, declared[struct], strict=True):
            expected = idl_type_of(ty)
            if spec["type"] == "bool":  # a bool is stored as a u8 in the zero-copy layout
                expected = "bool" if ty == "u8" else expected
            assert spec["type"] == expected, (struct, name)


@BOTH
def test_account_sizes_match_the_rust_layouts(src: Sources) -> None:
    for account in src.idl.accounts:
        text = src.structs[account].read_text()
        size = int(re.search(rf"size_of::<{account}>\(\) == (\d+)\)", text).group(1))  # type: ignore[union-attr]
        layout = src.idl.layout("account", account)
        assert layout is not None and 8 + layout.struct.size == size, account


def test_account_discriminators_in_real_accounts() -> None:
    env = VaultEnv()
    user = env.trader()
    account = env.chain.account
    assert bytes(account(env.program.vault(user.key)).data)[:8] == discriminator("account", "CollateralVault")
    assert bytes(account(env.program.authority).data)[:8] == discriminator("account", "VaultAuthority")
    assert bytes(account(env.exchange.config).data)[:8] == discriminator("account", "ExchangeConfig")
    assert bytes(account(env.exchange.grant_account(user.key)).data)[:8] == discriminator("account", "Grant")


def test_every_event_is_emitted_with_exactly_its_idl_size() -> None:
    """A scenario that makes both programs emit every event they have: each decodes, and its
    length is exactly the IDL's (a field added, dropped or resized on one side fails)."""
    env = VaultEnv()
    seen: dict[str, set[str]] = {"vault": set(), "exchange": set()}

    def run(ixs: list[Instruction], *signers: Any) -> None:
        result = env.ok(ixs, *signers)
        for line in data_lines(result.logs()):
            idl, kind = (IDL, "vault") if line.program_id == str(env.vault_id) else (PM_IDL, "exchange")
            event = idl.decode_event(line.parts[0])
            layout = idl.layout("event", event.name)
            assert layout is not None and len(line.parts[0]) == 8 + layout.struct.size, event.name
            seen[kind].add(event.name)

    admin, ex = env.admin, env.exchange
    run([env.program.set_paused(admin.pubkey(), 0)], admin)
    run(env.program.authorize_program_now(admin.pubkey(), env.rogue_pm_id, env.authority().next_change_id + 1), admin)
    run([env.program.set_withdraw_limits(admin.pubkey(), env.authority().limits)], admin)  # equal: instant
    run([env.program.set_timelock_delay(admin.pubkey(), 0)], admin)
    run([env.program.cancel_change(admin.pubkey(), env.authority().next_change_id)], admin)
    run([env.program.remove_authorized_program(admin.pubkey(), env.rogue_pm_id)], admin)
    run([env.program.transfer_admin(admin.pubkey(), admin.pubkey())], admin)
    run([env.program.accept_admin(admin.pubkey())], admin)
    alice, bob = env.user(with_vault=False), env.user()
    run([env.program.initialize_vault(alice.key)], alice.wallet)
    run([env.program.deposit(alice.key, alice.token_account, 100 * USDT)], alice.wallet)
    run([env.program.withdraw(alice.key, alice.token_account, 1 * USDT)], alice.wallet)
    for trader in (alice, bob):
        run([ex.grant(trader.key, 50 * USDT, env.now() + 1000)], trader.wallet)
    run([ex.revoke(bob.key)], bob.wallet)
    run([ex.lock(env.operator.pubkey(), alice.key, 20 * USDT, env.next_op(alice.key))], env.operator)
    run([ex.release(env.operator.pubkey(), alice.key, 1 * USDT, env.next_op(alice.key))], env.operator)
    env.ok([spl_token.transfer(alice.token_account, env.program.vault_token(alice.key), alice.key, 1)],
           alice.wallet)  # a surplus, absorbed by the next operation
    run([ex.settle(env.operator.pubkey(), [SettlePair(alice.key, bob.key, 1 * USDT, env.next_op(alice.key))])],
        env.operator)
    run([ex.request_exit(alice.key)], alice.wallet)
    env.warp_slots(env.exit_delay_slots)
    run([ex.exit(alice.key)], alice.wallet)
    run([ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, value=5)], admin)
    run([ex.cancel_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY)], admin)
    run([ex.propose_config_change(admin.pubkey(), ConfigChange.EXIT_DELAY, value=5)], admin)
    env.warp_slots(env.config_delay_slots)
    run([ex.apply_config_change(ConfigChange.EXIT_DELAY)], admin)
    carol = env.trader(100 * USDT, 100 * USDT)
    env.lock(carol, 10 * USDT)
    run([env.program.remove_authorized_program(admin.pubkey(), env.pm_id)], admin)
    run([env.program.release_orphaned_lock(carol.key, env.pm_id)], carol.wallet)
    run([env.program.withdraw(alice.key, alice.token_account, env.vault(alice.key).total_balance)], alice.wallet)
    run([env.program.close_vault(alice.key)], alice.wallet)
    # the initializers: the second position_manager instance's exchange, and a fresh vault deployment
    rogue = ExchangeProgram(env.program, env.rogue_pm_id)
    result = env.ok([rogue.initialize_exchange(admin.pubkey(), env.operator.pubkey(), env.fee_owner,
                                               env.insurance_owner, 1, 1)], admin)
    seen["exchange"] |= {PM_IDL.decode_event(line.parts[0]).name for line in data_lines(result.logs())}
    chain = Chain()
    deployer = chain.wallet(100_000_000_000)
    deploy_upgradeable(chain, deployer, program_path("collateral_vault").read_bytes(),
                       program_keypair("collateral_vault"))
    fresh = VaultProgram(chain.create_mint(deployer, deployer.pubkey()))
    result = chain.send_ok([fresh.initialize_authority(deployer.pubkey(), 0)], deployer)
    seen["vault"] |= {IDL.decode_event(line.parts[0]).name for line in data_lines(result.logs())}
    assert seen["vault"] == set(IDL.events)
    assert seen["exchange"] == set(PM_IDL.events)


def test_idl_addresses_are_the_dev_program_keys_and_the_built_ids() -> None:
    assert IDL.address == program_keypair("collateral_vault").pubkey()
    assert PM_IDL.address == program_keypair("position_manager").pubkey()
    pm_ids = (PROGRAM / "position-manager/src/generated_ids.rs").read_text()
    vault_ids = (PROGRAM / "collateral-vault/src/generated_ids.rs").read_text()
    assert f"`{IDL.address}`" in vault_ids and f"The collateral_vault program id: `{IDL.address}`" in pm_ids
    assert f"This program's id: `{PM_IDL.address}`" in pm_ids


@BOTH
def test_idl_is_anchor_legacy_format(src: Sources) -> None:
    raw = json.loads((PROGRAM / "idl" / f"{src.idl.name}.json").read_text())
    assert {"version", "name", "instructions", "accounts", "events", "errors", "metadata"} <= raw.keys()
    for ix in raw["instructions"]:
        assert ix["name"] == camel(snake(ix["name"]))  # camelCase names
        for account in ix["accounts"]:
            assert {"name", "isMut", "isSigner"} <= account.keys()
    assert load_idl(src.idl.name).name == src.idl.name


@pytest.mark.parametrize("kind", ["account", "event"])
def test_compiled_layouts_decode_exactly_as_the_field_by_field_codec(kind: str) -> None:
    rng = random.Random(7)
    for idl in (IDL, PM_IDL):
        named = idl.accounts if kind == "account" else idl.events
        for name, fields in named.items():
            layout = Layout.compile(fields, idl.types)
            assert layout is not None, f"{name} has a field the compiled layout cannot hold"
            for _ in range(50):
                data = discriminator(kind, name) + rng.randbytes(layout.struct.size)
                decoded = idl.decode_account(name, data) if kind == "account" else idl.decode_event(data).fields
                assert decoded == idl.decode_fields(fields, data)
            with pytest.raises(CodecError):  # one byte short is refused, not misread
                data = discriminator(kind, name) + bytes(layout.struct.size - 1)
                idl.decode_account(name, data) if kind == "account" else idl.decode_event(data)


def test_vec_and_struct_arguments_encode_as_borsh() -> None:
    ix = PM_IDL.instruction("settle", {name: Pubkey.default() for name in (
        "operator", "config", "vault_authority", "caller_authority", "token_program", "vault_program",
        "instructions")}, pairs=[(5, 1), {"amount": 7, "op_id": 2}])
    assert bytes(ix.data) == discriminator("global", "settle") + bytes.fromhex(
        "02000000" "0500000000000000" "0100000000000000" "0700000000000000" "0200000000000000")
    with pytest.raises(CodecError):
        PM_IDL.instruction("settle", {}, pairs=[])
