"""POST /transactions/deposit and /transactions/withdraw (unsigned transactions from the
Transaction Builder) and /transactions/submit (a signed one; when it may have gone out but
the answer was lost, the 503 names its signature so that the same bytes can be retried)."""

from __future__ import annotations

import base64

import grpc
from aiohttp import web
from collateral_vault.v1 import common_pb2, transaction_builder_pb2, transaction_builder_pb2_grpc
from solders.transaction import VersionedTransaction

from services.gateway.responses import as_json, error, error_body
from services.gateway.rest import body as bodies
from vault_client.config import GatewayConfig

COMMITMENTS = {"processed": common_pb2.COMMITMENT_PROCESSED, "confirmed": common_pb2.COMMITMENT_CONFIRMED,
               "finalized": common_pb2.COMMITMENT_FINALIZED}
# SubmitTransaction statuses that mean the transaction was not sent; after any other failure
# (the backend unreachable or timed out mid-call included) it may have been
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OUT_OF_RANGE,
           grpc.StatusCode.UNAUTHENTICATED}


def _first_signature(signed: str) -> str | None:
    """The signature a signed transaction (base64) is known by, if it decodes."""
    try:
        signatures = VersionedTransaction.from_bytes(base64.b64decode(signed, validate=True)).signatures
    except ValueError:
        return None
    return str(signatures[0]) if signatures else None


class Transactions:
    def __init__(self, builder: transaction_builder_pb2_grpc.TransactionBuilderStub, config: GatewayConfig) -> None:
        self.builder = builder
        self.config = config

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/transactions/deposit", self.deposit)
        router.add_post("/transactions/withdraw", self.withdraw)
        router.add_post("/transactions/submit", self.submit)

    async def deposit(self, request: web.Request) -> web.Response:
        body = await bodies.read(request)
        reply = await self.builder.BuildDeposit(transaction_builder_pb2.BuildDepositRequest(
            owner=bodies.string(body, "owner"), amount=bodies.amount(body, "amount"),
            source_token_account=bodies.string(body, "source_token_account"),
            priority_fee_micro_lamports=bodies.amount(body, "priority_fee_micro_lamports", False)),
            timeout=self.config.deadline_seconds)
        return web.json_response(as_json(reply.transaction))

    async def withdraw(self, request: web.Request) -> web.Response:
        body = await bodies.read(request)
        reply = await self.builder.BuildWithdraw(transaction_builder_pb2.BuildWithdrawRequest(
            owner=bodies.string(body, "owner"), amount=bodies.amount(body, "amount"),
            destination_token_account=bodies.string(body, "destination_token_account"),
            priority_fee_micro_lamports=bodies.amount(body, "priority_fee_micro_lamports", False)),
            timeout=self.config.deadline_seconds)
        return web.json_response(as_json(reply.transaction))

    async def submit(self, request: web.Request) -> web.Response:
        body = await bodies.read(request)
        wait_for = bodies.string(body, "wait_for") or "confirmed"
        if wait_for not in COMMITMENTS:
            return error(400, "INVALID_ARGUMENT", "wait_for must be processed, confirmed or finalized")
        signed = bodies.string(body, "signed_transaction_base64")
        try:
            reply = await self.builder.SubmitTransaction(transaction_builder_pb2.SubmitTransactionRequest(
                signed_transaction_base64=signed, wait_for=COMMITMENTS[wait_for]),
                timeout=self.config.deadline_seconds)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in REFUSED or (signature := _first_signature(signed)) is None:
                raise
            # the transaction may have gone out: the answer names it, and retrying the same
            # signed bytes is safe (it lands at most once) and reports its status
            answer = error_body(exc.code().name, exc.details() or exc.code().name)
            answer["error"]["signature"] = signature
            return web.json_response(answer, status=503, headers={"Retry-After": "1"})
        out = as_json(reply.status)
        out["commitment"] = out["commitment"].removeprefix("COMMITMENT_").lower()
        return web.json_response(out)
