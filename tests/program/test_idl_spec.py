"""Issue 23 item 6: the Anchor 0.30+ specification IDLs (program/idl/spec/) are generated
from the legacy IDLs (checked against the programs by test_idl.py) and never edited by hand:
each committed file equals scripts/gen_idl_spec.py's output. Their shape is what
@coral-xyz/anchor's `Program` constructor needs (tests/clients/ constructs it from them)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scripts.gen_idl_spec import SPEC_DIR, SPEC_VERSION, expected, spec_of, spec_type
from vault_client.idl import discriminator, load_idl

NAMES = ["collateral_vault", "position_manager"]


def spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SPEC_DIR / f"{name}.json").read_text())
    return loaded


def test_committed_spec_files_are_the_generators_output() -> None:
    generated = expected()
    assert {path.name for path in generated} == {f"{name}.json" for name in NAMES}
    assert {path.name for path in SPEC_DIR.glob("*.json")} == {path.name for path in generated}
    for path, text in generated.items():
        assert path.read_text() == text, f"{path} is stale: run `make idl` (scripts/gen_idl_spec.py)"


@pytest.mark.parametrize("name", NAMES)
def test_spec_header_and_discriminators_match_the_legacy_idl(name: str) -> None:
    legacy, s = load_idl(name), spec(name)
    assert s["address"] == str(legacy.address)
    assert s["metadata"] == {"name": name, "version": legacy.raw["version"], "spec": SPEC_VERSION,
                             "description": s["metadata"]["description"]}
    legacy_ix = {ix.name: ix.discriminator for ix in legacy.instructions.values()}
    assert {ix["name"]: bytes(ix["discriminator"]) for ix in s["instructions"]} == legacy_ix
    for kind, named in (("account", s["accounts"]), ("event", s["events"])):
        assert all(bytes(a["discriminator"]) == discriminator(kind, a["name"]) for a in named)
    assert {a["name"] for a in s["accounts"]} == set(legacy.accounts)
    assert {e["name"] for e in s["events"]} == set(legacy.events)
    assert {e["code"]: (e["name"], e["msg"]) for e in s["errors"]} == legacy.errors


@pytest.mark.parametrize("name", NAMES)
def test_every_account_event_and_defined_type_has_its_layout_in_types(name: str) -> None:
    s = spec(name)
    types = {t["name"]: t for t in s["types"]}
    assert len(types) == len(s["types"])
    for named in (*s["accounts"], *s["events"]):
        assert types[named["name"]]["type"]["kind"] == "struct"

    def defined(ty: Any) -> list[str]:
        if isinstance(ty, dict):
            if "defined" in ty:
                return [ty["defined"]["name"]]
            return [n for v in ty.values() for n in defined(v)]
        if isinstance(ty, list):
            return [n for v in ty for n in defined(v)]
        return []

    assert set(defined(s)) <= set(types)
    for ix in s["instructions"]:
        assert len(ix["discriminator"]) == 8
        assert all(set(a) <= {"name", "docs", "writable", "signer", "optional"} for a in ix["accounts"])
        assert all(a["name"] == a["name"].lower() for a in (*ix["accounts"], *ix["args"]))


def test_legacy_types_become_spec_types_and_unknown_ones_are_refused() -> None:
    assert spec_type("publicKey") == "pubkey"
    assert spec_type({"array": [{"defined": "ProgramLock"}, 4]}) == {"array": [{"defined": {"name": "ProgramLock"}}, 4]}
    assert spec_type({"vec": {"defined": "SettlePair"}}) == {"vec": {"defined": {"name": "SettlePair"}}}
    with pytest.raises(ValueError):
        spec_type({"tuple": ["u8"]})
    with pytest.raises(ValueError):
        spec_of({"name": "x", "version": "0", "instructions": [], "metadata": {}})
