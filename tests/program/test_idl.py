"""The IDL cannot drift from the program: discriminators the program accepts, error codes
and names, event names and account field order are checked against the Rust sources and
the running program. (Field layouts of accounts and events are also exercised by every
decode in the instruction tests.)"""

from __future__ import annotations

import json
import random
import re

import pytest
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from localnet.genesis import program_keypair
from localnet.svm import ROOT
from services.common.idl import CodecError, Layout, camel, discriminator, load_idl, snake
from services.common.vault_program import IDL, PM_IDL
from tests.support.vault_env import VaultEnv, error_name

SRC = ROOT / "program" / "collateral-vault" / "src"


def rust_struct_fields(path: str, struct: str) -> list[str]:
    text = (SRC / path).read_text()
    body = text[text.index(f"pub struct {struct} {{"):]
    body = body[: body.index("\n}")]
    return [name for name in re.findall(r"^\s+pub (\w+):", body, re.M) if name != "discriminator"]


def test_every_idl_instruction_is_recognised_by_the_program() -> None:
    env = VaultEnv()
    payer = env.chain.wallet()
    for name, ix in IDL.instructions.items():
        data = ix.discriminator + b"\x00" * sum(
            {"u64": 8, "u8": 1, "publicKey": 32}[a["type"]] for a in ix.args)
        result = env.fails([Instruction(env.vault_id, data, [])], payer)
        # Decoded, then refused for missing accounts: the discriminator and arg sizes match.
        assert error_name(result) == "MissingAccounts", name
    result = env.fails([Instruction(env.vault_id, discriminator("global", "no_such_ix"), [])], payer)
    assert error_name(result) == "InvalidInstruction"


def test_rust_instruction_names_match_the_idl() -> None:
    text = (SRC / "instruction.rs").read_text()
    assert set(re.findall(r'instruction\("(\w+)"\)', text)) == set(IDL.instructions)


def test_errors_match_the_rust_enum() -> None:
    text = (SRC / "error.rs").read_text()
    rust = {int(code): name for name, code in re.findall(r"^\s+(\w+) = (\d+),", text, re.M)}
    assert rust == {code: name for code, (name, _) in IDL.errors.items()}
    assert len(set(rust.values())) == len(rust)


def test_events_match_the_rust_constants() -> None:
    text = (SRC / "events.rs").read_text()
    assert set(re.findall(r'event\("(\w+)"\)', text)) == set(IDL.events)


@pytest.mark.parametrize(("path", "struct"), [("state/vault.rs", "CollateralVault"),
                                               ("state/authority.rs", "VaultAuthority")])
def test_account_fields_in_rust_order(path: str, struct: str) -> None:
    assert rust_struct_fields(path, struct) == [snake(f["name"]) for f in IDL.accounts[struct]]


def test_account_discriminators_in_real_accounts() -> None:
    env = VaultEnv()
    user = env.user()
    vault = bytes(env.chain.account(env.program.vault(user.key)).data)
    assert vault[:8] == discriminator("account", "CollateralVault")
    assert bytes(env.chain.account(env.program.authority).data)[:8] == discriminator("account", "VaultAuthority")


def test_idl_addresses_are_the_dev_program_keys() -> None:
    assert IDL.address == program_keypair("collateral_vault").pubkey()
    assert PM_IDL.address == program_keypair("position_manager").pubkey()
    pm_src = (ROOT / "program" / "position-manager" / "src" / "lib.rs").read_text()
    body = pm_src[pm_src.index("pub const COLLATERAL_VAULT_ID: Pubkey = ["):]
    numbers = [int(n) for n in re.findall(r"\d+", body[: body.index("];")])]
    assert Pubkey.from_bytes(bytes(numbers)) == IDL.address


def test_idl_is_anchor_legacy_format() -> None:
    raw = json.loads((ROOT / "program" / "idl" / "collateral_vault.json").read_text())
    assert {"version", "name", "instructions", "accounts", "events", "errors", "metadata"} <= raw.keys()
    for ix in raw["instructions"]:
        assert ix["name"] == camel(snake(ix["name"]))  # camelCase names
        for account in ix["accounts"]:
            assert {"name", "isMut", "isSigner"} <= account.keys()
    assert load_idl("collateral_vault").name == "collateral_vault"


@pytest.mark.parametrize("kind", ["account", "event"])
def test_compiled_layouts_decode_exactly_as_the_field_by_field_codec(kind: str) -> None:
    rng = random.Random(7)
    for idl in (IDL, PM_IDL):
        named = idl.accounts if kind == "account" else idl.events
        for name, fields in named.items():
            layout = Layout.compile(fields)
            assert layout is not None, f"{name} has a field the compiled layout cannot hold"
            for _ in range(50):
                data = discriminator(kind, name) + rng.randbytes(layout.struct.size)
                decoded = idl.decode_account(name, data) if kind == "account" else idl.decode_event(data).fields
                assert decoded == idl.decode_fields(fields, data)
            with pytest.raises(CodecError):  # one byte short is refused, not misread
                data = discriminator(kind, name) + bytes(layout.struct.size - 1)
                idl.decode_account(name, data) if kind == "account" else idl.decode_event(data)
