"""How a backfill reads getTransaction answers (services/balance_tracker/indexer/backfill.py,
issue 25 item 6): only the slot, block time and log are built (`TRANSACTIONS`); an answer of
any other shape is read in full as before. Either way a backfill gets the same transactions
and fails the same way. Real transactions on localnet, answers through an RPC proxy (real
HTTP over loopback) that reshapes them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from pydantic_core import ValidationError, from_json
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.signature import Signature

from bench.traffic import burst, users_with_vaults
from localnet.node import Node
from localnet.node_harness import running_node
from services.balance_tracker.indexer.backfill import TRANSACTIONS, BackfillError, _parsed, fetch
from tests.services.test_rpc_http import endpoint
from tests.support.rpc_proxy import RpcProxy
from vault_client.http_client import HttpClient
from vault_client.rpc_http import RpcTransportError

Fetched = tuple[str, int, list[str], datetime | None]
Rewrite = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
async def history() -> AsyncIterator[tuple[Node, list[tuple[int, str]]]]:
    async with running_node() as node:
        assert node.ledger is not None
        async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
            accounts = await users_with_vaults(node, client, 4)
            # burst does not wait for confirmation: list once every one of its transactions
            # (and each vault's initialization) is confirmed, else the newest may be missing
            expected = len(accounts) + await burst(node.ledger.deployment.program, client, accounts, 20)
            deadline = time.monotonic() + 30
            while True:
                listed = (await client.get_signatures_for_address(node.ledger.deployment.program.program_id,
                                                                  limit=1000, commitment=Confirmed)).value
                if len(listed) >= expected or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        yield node, [(s.slot, str(s.signature)) for s in reversed(listed)]


def _item(signature: str, slot: int, logs: list[str], block_time: datetime | None) -> Fetched:
    return signature, slot, logs, block_time


async def fetched(node: Node, signatures: list[tuple[int, str]], max_batch: int, rewrite: Rewrite | None = None
                  ) -> list[Fetched]:
    proxy = RpcProxy(node.rpc_url, rewrite=rewrite)
    async with proxy.running():
        http = HttpClient(proxy.url, timeout=60)
        try:
            return await fetch(http, signatures, "confirmed", max_batch, 2, _item)
        finally:
            await http.close()


def _transactions(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def rewrite(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") == "getTransaction" and isinstance(answer.get("result"), dict):
            answer = json.loads(json.dumps(answer))
            change(answer["result"])
        return answer
    return rewrite


def _float_block_time(result: dict[str, Any]) -> None:
    result["blockTime"] = float(result["blockTime"])


@pytest.mark.parametrize("max_batch", [1, 5])
async def test_answers_of_another_shape_are_read_in_full_and_give_the_same_transactions(
        history: tuple[Node, list[tuple[int, str]]], max_batch: int) -> None:
    """A block time sent as a float does not fit the strict shape: those answers are read as
    plain JSON, and the backfill gets exactly what the shaped reading gives (the node's own
    slots, logs and block times, checked against solders' typed answer)."""
    node, signatures = history
    shaped = await fetched(node, signatures, max_batch)
    plain = await fetched(node, signatures, max_batch, _transactions(_float_block_time))
    assert plain == shaped
    assert len(shaped) == len(signatures) >= 20
    async with AsyncClient(node.rpc_url, commitment=Confirmed) as client:
        for (signature, slot, logs, block_time), (_, listed) in zip(shaped[:5], signatures[:5], strict=True):
            typed = (await client.get_transaction(Signature.from_string(listed), max_supported_transaction_version=0)
                     ).value
            assert typed is not None and typed.transaction.meta is not None
            assert (signature, slot, logs) == (listed, typed.slot, typed.transaction.meta.log_messages)
            assert block_time is not None and int(block_time.timestamp()) == typed.block_time


@pytest.mark.parametrize("change", [
    lambda r: r.update(meta=None),
    lambda r: r.pop("meta"),
    lambda r: r.update(meta=None, blockTime=float(r["blockTime"])),  # another shape: read in full
])
async def test_an_answer_without_its_transaction_fails_the_backfill_either_way(
        history: tuple[Node, list[tuple[int, str]]], change: Callable[[dict[str, Any]], None]) -> None:
    node, signatures = history
    with pytest.raises(BackfillError, match="returned nothing"):
        await fetched(node, signatures[:6], 3, _transactions(change))


async def test_an_error_answer_fails_the_backfill_either_way(history: tuple[Node, list[tuple[int, str]]]) -> None:
    node, signatures = history
    failing = signatures[2][1]

    def refuse(extra: dict[str, Any]) -> Rewrite:
        def rewrite(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
            if request.get("method") == "getTransaction" and request["params"][0] == failing:
                return {"jsonrpc": "2.0", "id": answer["id"], "error": {"code": -32009, "message": "gone"}, **extra}
            return answer
        return rewrite

    for extra in ({}, {"result": 7}):  # the second does not fit the shape (a result that is no transaction)
        with pytest.raises(BackfillError, match=failing):
            await fetched(node, signatures[:6], 3, refuse(extra))


def _answer(result: Any, id_: Any = 0, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result, **extra}


_RESULT = {"slot": 7, "blockTime": 1_700_000_000, "version": 0, "transaction": ["AAAA", "base64"],
           "meta": {"err": None, "fee": 5000, "logMessages": ["Program x invoke [1]", "Program data: AAAA"],
                    "innerInstructions": [{"index": 0, "instructions": []}], "postTokenBalances": []}}


@pytest.mark.parametrize("text", [
    json.dumps([_answer(_RESULT), _answer(None, 1), _answer({**_RESULT, "blockTime": None}, 2),
                _answer({**_RESULT, "meta": {"logMessages": None}}, 3), _answer({"slot": 1}, 4)]),
    json.dumps([_answer(_RESULT), {"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "no"}}]),
    json.dumps([_answer({**_RESULT, "meta": {"logMessages": ["Program log: dépôt ✓ 🚀", "Program data: AAAA"]}})],
               ensure_ascii=False),
])
def test_the_shape_keeps_what_a_backfill_reads_of_each_answer(text: str) -> None:
    shaped = _parsed(text, TRANSACTIONS[1])
    full = from_json(text)
    assert _parsed(text.encode(), TRANSACTIONS[1]) == shaped  # the body as it came reads the same
    assert [a["id"] for a in shaped] == [a["id"] for a in full]
    assert ["error" in a for a in shaped] == ["error" in a for a in full]
    for mine, theirs in zip(shaped, full, strict=True):
        result, whole = mine.get("result"), theirs.get("result")
        assert (result is None) == (whole is None)
        if whole is not None:
            assert result["slot"] == whole["slot"] and result.get("blockTime") == whole.get("blockTime")
            assert (result.get("meta") or {}).get("logMessages") == (whole.get("meta") or {}).get("logMessages")


@pytest.mark.parametrize("text", [
    json.dumps(_answer(_RESULT)),  # one answer where a batch was asked for
    json.dumps([_answer({**_RESULT, "slot": 7.0})]),
    json.dumps([_answer({**_RESULT, "meta": {"logMessages": ["ok", 5]}})]),
    json.dumps([_answer("a string")]),
    json.dumps([{"jsonrpc": "2.0", "result": _RESULT}]),  # no id
    json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch too large"}}),
    json.dumps([[1, 2], 3]),
])
def test_an_answer_of_another_shape_is_read_in_full(text: str) -> None:
    with pytest.raises(ValidationError):
        TRANSACTIONS[1].validate_json(text)
    assert _parsed(text, TRANSACTIONS[1]) == from_json(text) == _parsed(text.encode(), TRANSACTIONS[1])


@pytest.mark.parametrize("text", ["", "not json", "[{\"id\": 0, \"result\": ", "\x00"])
def test_text_that_is_not_json_is_refused_either_way(text: str) -> None:
    for shape in (None, *TRANSACTIONS):
        for body in (text, text.encode()):
            with pytest.raises(ValueError):
                _parsed(body, shape)


async def test_a_batch_answered_as_one_error_is_refused_as_before(history: tuple[Node, list[tuple[int, str]]]
                                                                  ) -> None:
    """A node that refuses batches answers with one JSON-RPC error: the transport error that
    says to send requests alone, as before."""
    _, signatures = history

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no batches"}})

    async with endpoint(refuse) as url:
        http = HttpClient(url, timeout=60)
        try:
            with pytest.raises(RpcTransportError, match="RPC_MAX_BATCH=1"):
                await fetch(http, signatures[:3], "confirmed", 3, 1, _item)
        finally:
            await http.close()
