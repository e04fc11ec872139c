"""The indexer reads the vault's events by layouts compiled once from the IDL
(services/balance_tracker/events.py `_compiled`, issue 25 item 6): every event of both
programs' IDLs, with random field values, gives exactly the rows and admin records the IDL
walk gives (`compiled=False`), and data that does not fit (cut short, longer, unknown) is
handled the same way: a cut event is skipped, as the walk's CodecError skips it. Pure
functions over logs built from the IDLs (the programs' own events are decoded from real
logs in tests/services/test_exchange_events.py and the backfill tests)."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from solders.keypair import Keypair

from services.balance_tracker.events import KINDS, _compiled, decode
from vault_client.idl import Idl, _encode, discriminator
from vault_client.vault_program import IDL, PM_IDL

PROGRAM = str(IDL.address)
EXCHANGE = str(PM_IDL.address)
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _value(ty: Any, rng: random.Random) -> Any:
    if ty == "publicKey":
        return Keypair().pubkey()
    if ty == "bool":
        return rng.random() < 0.5
    if isinstance(ty, dict) and "array" in ty:
        inner, count = ty["array"]
        return [_value(inner, rng) for _ in range(count)]
    bits = int(ty[1:])
    if ty.startswith("u"):
        return rng.choice([0, 1, 2 ** bits - 1, rng.randrange(2 ** bits)])
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1)
    return rng.choice([0, -1, low, high - 1, rng.randrange(low, high)])


def event_data(idl: Idl, name: str, rng: random.Random) -> bytes:
    data = discriminator("event", name)
    for spec in idl.events[name]:
        data += _encode(spec["type"], _value(spec["type"], rng), idl.types)
    return data


def logs(program: str, *events: bytes) -> list[str]:
    return [f"Program {program} invoke [1]", "Program log: Instruction: Something",
            *(f"Program data: {base64.b64encode(e).decode()}" for e in events), f"Program {program} success"]


def both(lines: list[str]) -> tuple[Any, Any]:
    args = ("sig", lines, 9, WHEN, "confirmed", PROGRAM, EXCHANGE)
    return decode(*args), decode(*args, compiled=False)


def test_every_vault_event_kind_is_compiled() -> None:
    assert {event.name for event in _compiled(IDL).values()} == set(KINDS)


@pytest.mark.parametrize("name", sorted(IDL.events))
def test_each_vault_event_decodes_as_the_idl_walk_decodes_it(name: str) -> None:
    rng = random.Random(name)
    for _ in range(25):
        fast, walked = both(logs(PROGRAM, event_data(IDL, name, rng), event_data(IDL, name, rng)))
        assert fast == walked
        assert len(fast[0]) + len(fast[1]) == 2  # a row or an admin record each


@pytest.mark.parametrize("name", sorted(PM_IDL.events))
def test_exchange_events_decode_as_before(name: str) -> None:
    rng = random.Random(name)
    for _ in range(10):
        fast, walked = both(logs(EXCHANGE, event_data(PM_IDL, name, rng)))
        assert fast == walked


def test_a_transaction_of_every_kind_in_nested_invocations_decodes_as_the_idl_walk() -> None:
    rng = random.Random(7)
    events = [event_data(IDL, name, rng) for name in sorted(IDL.events)]
    lines = [f"Program {EXCHANGE} invoke [1]", *logs(PROGRAM, *events[:5])[:-1],
             f"Program {PROGRAM} invoke [2]", *logs(PROGRAM, *events[5:])[2:-1], f"Program {PROGRAM} success",
             f"Program {PROGRAM} success",
             f"Program data: {base64.b64encode(event_data(PM_IDL, 'GrantSet', rng)).decode()}",
             f"Program {EXCHANGE} success", *logs(PROGRAM, *events)]
    fast, walked = both(lines)
    assert fast == walked
    assert len(fast[0]) + len(fast[1]) == 2 * len(events) + 1  # and the exchange's grant


@pytest.mark.parametrize("name", sorted(KINDS))
def test_data_that_does_not_fit_a_compiled_event_is_handled_as_the_idl_walk_handles_it(name: str) -> None:
    """Cut short anywhere (even inside the discriminator): skipped by both; longer: the
    extra bytes ignored by both; the next event of the same log still read."""
    rng = random.Random(name)
    whole, after = event_data(IDL, name, rng), event_data(IDL, "Deposited", rng)
    for cut in range(len(whole)):
        fast, walked = both(logs(PROGRAM, whole[:cut], after))
        assert fast == walked
        assert [row.kind for row in fast[0]] == ["deposit"]
    fast, walked = both(logs(PROGRAM, whole + b"\x00" * 5, after))
    assert fast == walked and len(fast[0]) == 2


def test_unknown_events_and_other_programs_are_skipped_by_both() -> None:
    rng = random.Random(3)
    known = event_data(IDL, "Deposited", rng)
    lines = [*logs(PROGRAM, b"\x01" * 8 + known[8:], b"", known),
             *logs(str(Keypair().pubkey()), known)]  # not a program followed
    fast, walked = both(lines)
    assert fast == walked
    assert [(row.event_index, row.kind) for row in fast[0]] == [(2, "deposit")]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_vault_row_holds_its_event_s_fields_where_they_belong(name: str) -> None:
    """The row's fields by name, against the IDL's decoded event (both ways of reading build
    the row with the same code, so this checks that code)."""
    data = event_data(IDL, name, random.Random(name))
    fields = IDL.decode_event(data).fields
    lines = [f"Program {PROGRAM} invoke [1]", f"Program {PROGRAM} invoke [1]",
             f"Program data: {base64.b64encode(event_data(IDL, 'Deposited', random.Random(1))).decode()}",
             f"Program data: {base64.b64encode(data).decode()}", f"Program {PROGRAM} success"]
    for compiled in (True, False):
        rows, admin = decode("sig", lines, 9, WHEN, "processed", PROGRAM, EXCHANGE, compiled=compiled)
        row = rows[1]
        assert not admin and (row.signature, row.instruction_index, row.event_index) == ("sig", 1, 1)
        assert (row.kind, row.slot, row.block_time, row.commitment) == (KINDS[name], 9, WHEN, "processed")
        owner = fields.get("owner", fields.get("from_owner"))
        assert row.owner == str(owner) and row.amount == fields.get("amount", 0)
        assert row.vault_seq == fields.get("seq", fields.get("from_seq"))
        assert row.balances is not None
        if "available_balance" in fields:
            assert row.balances.available == fields["available_balance"]
        if "total_balance" in fields:
            assert row.balances.total == fields["total_balance"]
        if "locked_balance" in fields:
            assert row.balances.locked == fields["locked_balance"]
        if name == "CollateralTransferred":
            assert (row.counterparty, row.caller_program) == (str(fields["to_owner"]), str(fields["caller_program"]))
            assert row.balances.total == fields["from_total_balance"] and row.details == {"to_seq": fields["to_seq"]}
