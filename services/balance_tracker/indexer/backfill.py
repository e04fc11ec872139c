"""Catching up after downtime: the indexer's backfill as a pipeline.

1. *Signatures*: each followed program's successful transactions from the cursor's slot on
   (that slot's again: what is stored already is skipped when written), getSignaturesForAddress
   pages of 1,000. The node lists newest first, so every page down to the cursor is read before
   the oldest transaction can be written; the lists are merged oldest first (each program's
   order kept), each transaction once (one that mentions both programs is listed twice).
2. *Fetch*: the list in chunks of `batch_size`; a chunk's getTransaction requests go out as
   JSON-RPC batches of `max_batch` requests (1: each alone, for an endpoint without batches),
   `in_flight` round trips at a time; answers are read as plain JSON (pydantic_core's
   parser), keeping only the slot, block time and log (solders' typed answer parsed the
   whole transaction: most of the CPU a fetched transaction cost), and put back in the
   list's order whatever order they came in. The parser builds only those fields (the rest
   of an answer, most of its bytes, is skipped unbuilt); an answer of another shape is read
   again as plain JSON, so it is handled exactly as before.
3. *Write*: `write(chunk)` for each chunk, in the list's order, one at a time (the indexer
   decodes it, checks the event numbers and hands it to its write pipeline, which moves the
   cursor only after the batch commits). The fetcher runs ahead of the writer by at most
   `ahead` chunks: the node serves the next chunks while the previous ones are written, and
   memory stays bounded.

A transaction the node does not return (null) or answers with an error stops the backfill
with an error (the indexer starts over from its cursor): a backfill never skips one."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic_core import SchemaValidator, ValidationError, from_json, to_json
from pydantic_core import core_schema as cs
from solders.pubkey import Pubkey

from vault_client.http_client import HttpClient
from vault_client.rpc_http import RpcTransportError, post

T = TypeVar("T")
PAGE = 1_000  # getSignaturesForAddress' most per call
Listed = tuple[int, str]  # (slot, signature)
MakeItem = Callable[[str, int, list[str], datetime | None], T]


class BackfillError(RuntimeError):
    """The node could not give a transaction the backfill needs."""


def _answer_schema(result: cs.CoreSchema) -> cs.CoreSchema:
    """A JSON-RPC answer whose result is `result` (or null), its other members skipped."""
    return cs.typed_dict_schema({
        "id": cs.typed_dict_field(cs.any_schema()),
        "result": cs.typed_dict_field(cs.nullable_schema(result), required=False),
        "error": cs.typed_dict_field(cs.any_schema(), required=False)}, extra_behavior="ignore")


def _strict_int() -> cs.CoreSchema:
    return cs.int_schema(strict=True)


# getTransaction's answer as far as a backfill reads it (`fetch`): the slot, the block time
# and the log; everything else (the transaction, inner instructions, balances) is skipped by
# the parser without a Python object built for it. Strict: an answer of any other shape (a
# float slot, a log line that is not text, ...) fails here and is read as plain JSON instead.
_TRANSACTION = _answer_schema(cs.typed_dict_schema({
    "slot": cs.typed_dict_field(_strict_int()),
    "blockTime": cs.typed_dict_field(cs.nullable_schema(_strict_int()), required=False),
    "meta": cs.typed_dict_field(cs.nullable_schema(cs.typed_dict_schema({
        "logMessages": cs.typed_dict_field(cs.nullable_schema(cs.list_schema(cs.str_schema(strict=True))),
                                           required=False)}, extra_behavior="ignore")), required=False)},
    extra_behavior="ignore"))
_CONFIG: cs.CoreConfig = {"cache_strings": "all"}  # log lines repeat from one transaction to the next
TRANSACTIONS = (SchemaValidator(_TRANSACTION, config=_CONFIG),
                SchemaValidator(cs.list_schema(_TRANSACTION), config=_CONFIG))


def _parsed(text: str | bytes, shape: SchemaValidator | None) -> Any:
    """An answer's JSON: through `shape` (only the members it names are built) when it fits,
    else in full. Raises ValueError for text that is not JSON. Bytes as they came are read
    without a decoded copy (a batch of 100 answers: 5.9 µs a transaction from bytes, 7.7 from
    the decoded text)."""
    if shape is not None:
        try:
            return shape.validate_json(text)
        except ValidationError:
            pass  # another shape, or not JSON: read in full (its errors as before)
    # pydantic_core's parser (jiter, in Rust) reads a getTransaction batch in about half
    # json's time; it keeps short strings it has seen (log lines repeat from one
    # transaction to the next). Parsing was a quarter of a catch-up's CPU.
    return from_json(text, cache_strings="all")


async def _call(http: HttpClient, requests: Sequence[dict[str, Any]],
                shapes: tuple[SchemaValidator, SchemaValidator] | None = None) -> list[Any]:
    """The results of `requests` (ids 0..n-1) in one round trip, in the requests' order; any
    JSON-RPC error fails the whole call. `shapes`: how the answer to one request and to a
    batch are read when they fit (`TRANSACTIONS`); the results are then those members only."""
    single = len(requests) == 1
    # pydantic_core's serializer (in Rust) rather than json.dumps: the same requests
    response = await post(http, to_json(requests[0] if single else list(requests)))
    response.raise_for_status()
    try:
        answers = _parsed(response.body, None if shapes is None else shapes[0 if single else 1])
    except ValueError as exc:
        raise RpcTransportError(f"the RPC answered with invalid JSON: {response.text[:200]}") from exc
    if single:
        answers = [answers]
    if not isinstance(answers, list) or len(answers) != len(requests):
        raise RpcTransportError(f"the RPC refused a batch of {len(requests)} requests: {response.text[:200]} "
                                "(RPC_MAX_BATCH=1 sends every request alone)")
    results: list[Any] = [None] * len(requests)
    seen = set()
    for answer in answers:  # a batch's answers may come in any order
        index = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(requests) or index in seen:
            raise RpcTransportError(f"the RPC's batch answer names unknown ids: {response.text[:200]}")
        seen.add(index)
        if "error" in answer:
            method = requests[index]["method"]
            raise BackfillError(f"{method}({requests[index]['params'][0]}) failed: {answer['error']}")
        results[index] = answer.get("result")
    return results


def _request(index: int, method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": index, "method": method, "params": params}


async def signatures_since(http: HttpClient, program: Pubkey, since: int, commitment: str) -> list[Listed]:
    """A program's successful transactions from slot `since` on, oldest first. By slot, not by
    the cursor's signature: that may be another program's transaction."""
    listed: list[Listed] = []
    before: str | None = None
    while True:
        options: dict[str, Any] = {"limit": PAGE, "commitment": commitment}
        if before is not None:
            options["before"] = before
        [page] = await _call(http, [_request(0, "getSignaturesForAddress", [str(program), options])])
        listed.extend((s["slot"], s["signature"]) for s in page if s.get("err") is None and s["slot"] >= since)
        if len(page) < PAGE or page[-1]["slot"] < since:
            break
        before = page[-1]["signature"]
    listed.reverse()
    return listed


def merged(lists: Sequence[list[Listed]]) -> list[Listed]:
    """Oldest first, each list's order kept, each signature once."""
    out: list[Listed] = []
    taken: set[str] = set()
    for entry in heapq.merge(*lists, key=lambda s: s[0]):
        if entry[1] not in taken:
            taken.add(entry[1])
            out.append(entry)
    return out


async def fetch(http: HttpClient, signatures: Sequence[Listed], commitment: str, max_batch: int, in_flight: int,
                item: MakeItem[T]) -> list[T]:
    """The transactions of `signatures` in their order, as `item(signature, slot, log, block
    time)`."""
    options = {"encoding": "base64", "commitment": commitment, "maxSupportedTransactionVersion": 0}
    groups = [signatures[i:i + max_batch] for i in range(0, len(signatures), max_batch)]
    out: list[list[T]] = [[] for _ in groups]
    gate = asyncio.Semaphore(in_flight)

    async def one(index: int) -> None:
        group = groups[index]
        async with gate:
            answers = await _call(http, [_request(i, "getTransaction", [sig, options]) for i, (_, sig) in
                                         enumerate(group)], TRANSACTIONS)
        items: list[T] = []
        for (_, signature), tx in zip(group, answers, strict=True):
            meta = tx.get("meta") if isinstance(tx, dict) else None
            if meta is None:
                raise BackfillError(f"getTransaction({signature}) returned nothing: cannot fill the gap")
            block_time = datetime.fromtimestamp(tx["blockTime"], UTC) if tx.get("blockTime") else None
            items.append(item(signature, tx["slot"], meta.get("logMessages") or [], block_time))
        out[index] = items

    await _gather(one(i) for i in range(len(groups)))
    return [entry for group in out for entry in group]


async def _gather(coros: Any) -> None:
    """Runs `coros` together; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def backfill(http: HttpClient, programs: Sequence[Pubkey], since: int, commitment: str,
                   write: Callable[[list[T]], Awaitable[None]], item: MakeItem[T], *, batch_size: int,
                   max_batch: int, in_flight: int, ahead: int = 2,
                   listed: Callable[[int], None] | None = None) -> int:
    """Every successful transaction of `programs` from slot `since` on, written chunk by chunk
    in slot order through `write` (see the module's docstring). Returns how many."""
    signatures = merged([await signatures_since(http, program, since, commitment) for program in programs])
    if listed is not None:
        listed(len(signatures))
    if not signatures:
        return 0
    chunks: asyncio.Queue[list[T]] = asyncio.Queue(maxsize=max(1, ahead))

    async def fetcher() -> None:
        for start in range(0, len(signatures), batch_size):
            await chunks.put(await fetch(http, signatures[start:start + batch_size], commitment, max_batch,
                                         in_flight, item))

    task = asyncio.create_task(fetcher())
    try:
        for _ in range(0, len(signatures), batch_size):
            get = asyncio.ensure_future(chunks.get())
            try:
                await asyncio.wait({get, task}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    task.result()  # the fetcher failed: its error; else it has put every chunk
                chunk = await get
            finally:
                get.cancel()
            await write(chunk)
        await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return len(signatures)
