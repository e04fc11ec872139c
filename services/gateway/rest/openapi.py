"""The gateway's OpenAPI 3.0 document (served at /openapi.json; the tests run schemathesis
against it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

U64 = {"type": "string", "pattern": "^[0-9]+$", "description": "u64 in base units (1 USDT = 1000000)"}
KEY = {"type": "string", "pattern": "^[1-9A-HJ-NP-Za-km-z]{32,44}$", "description": "base58 public key"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ok(ref: str) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


ERRORS = {"400": _error("invalid request"), "404": _error("not found"), "409": _error("refused by the vault's state"),
          "403": _error("a browser origin that is not allowed"), "408": _error("the body arrived too slowly"),
          "413": _error("request too large"), "429": _error("rate limited"), "503": _error("a backend is unavailable")}

OWNER = {"name": "owner", "in": "path", "required": True, "schema": KEY}

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Collateral Vault gateway", "version": "1.0.0",
             "description": "REST over the collateral vault services. Live events: WebSocket GET /ws?owner=<key>"
                            "[&since=<event id>] (JSON messages {type: event|error, ...})."},
    "paths": {
        "/healthz": {"get": {"operationId": "health", "description": (
            "Readiness: 200 while vault_manager and balance_tracker serve (status degraded when an optional "
            "backend, the monitor or Redis, does not); 503 when one of those two does not."),
            "responses": {"200": _ok("Health"), "503": {**_ok("Health"), "description": "not ready"}}}},
        "/tvl": {"get": {"operationId": "getTvl", "responses": {"200": _ok("Tvl"), **ERRORS}}},
        "/vaults/{owner}": {"get": {"operationId": "getVault", "parameters": [OWNER],
                                    "responses": {"200": _ok("Vault"), **ERRORS}}},
        "/vaults/{owner}/history": {"get": {
            "operationId": "getHistory",
            "parameters": [OWNER,
                           {"name": "kind", "in": "query", "required": False, "schema": {
                               "type": "string", "enum": ["deposit", "withdraw", "lock", "unlock", "transfer",
                                                          "vault_initialized", "vault_closed", "surplus"]}},
                           {"name": "page_size", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                           {"name": "page_token", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": _ok("History"), **ERRORS}}},
        "/transactions/deposit": {"post": {
            "operationId": "buildDeposit",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/DepositRequest"}}}},
            "responses": {"200": _ok("UnsignedTransaction"), **ERRORS}}},
        "/transactions/withdraw": {"post": {
            "operationId": "buildWithdraw",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/WithdrawRequest"}}}},
            "responses": {"200": _ok("UnsignedTransaction"), **ERRORS}}},
        "/transactions/submit": {"post": {
            "operationId": "submitTransaction",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/SubmitRequest"}}}},
            "responses": {"200": _ok("TransactionStatus"), **ERRORS, "503": _error(
                "the status could not be learned: the transaction may have landed (error.signature names it; "
                "submitting the same signed transaction again is safe and reports its status)")}}},
    },
    "components": {"schemas": {
        "Error": _object({"error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": False, "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "signature": {"type": "string", "description": "POST /transactions/submit only: the transaction that "
                              "may have landed (submit the same signed transaction again to learn its status)"}}}}),
        "Health": _object({"status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
                           "backends": {"type": "object", "additionalProperties": {"type": "string"}},
                           "optional": {"type": "array", "items": {"type": "string"}}}),
        "Tvl": _object({"total": U64, "locked": U64, "available": U64, "vault_count": {"type": "integer"},
                        "chain_matches": {"type": "boolean"}, "chain_total": U64, "slot": U64,
                        "reconciled_at": {"type": "string", "pattern": "^-?[0-9]+$"}}),
        "Vault": _object({"owner": KEY, "address": KEY, "token_account": KEY, "total_balance": U64,
                          "locked_balance": U64, "available_balance": U64, "total_deposited": U64,
                          "total_withdrawn": U64, "created_at": {"type": "string"}, "slot": U64,
                          "source": {"type": "string"}}),
        "VaultEvent": _object({"id": {"type": "string"}, "kind": {"type": "string"}, "owner": KEY,
                               "counterparty": {"type": "string"}, "amount": U64, "slot": U64,
                               "block_time": {"type": "string"}, "signature": {"type": "string"},
                               "total_balance": U64, "locked_balance": U64, "available_balance": U64,
                               "caller_program": {"type": "string"}, "seq": U64, "program_locked": U64,
                               "vault_seq": U64, "op_id": U64, "exit_deadline_slot": U64,
                               "by_operator": {"type": "boolean"},
                               "expires_at": {"type": "string", "pattern": "^-?[0-9]+$"}}),
        "History": _object({"events": {"type": "array", "items": {"$ref": "#/components/schemas/VaultEvent"}},
                            "next_page_token": {"type": "string"}}),
        "UnsignedTransaction": _object({
            "transaction_base64": {"type": "string"}, "fee_payer": KEY, "recent_blockhash": {"type": "string"},
            "last_valid_block_height": U64, "compute_unit_limit": {"type": "integer"},
            "simulated_compute_units": {"type": "integer"}, "priority_fee_micro_lamports": U64,
            "vault": {"type": "string"}}),
        "TransactionStatus": _object({"signature": {"type": "string"}, "commitment": {"type": "string"},
                                      "slot": U64, "error": {"type": "string"},
                                      "already_submitted": {"type": "boolean"}}),
        "DepositRequest": {"type": "object", "required": ["owner", "amount"], "properties": {
            "owner": KEY, "amount": U64, "source_token_account": KEY, "priority_fee_micro_lamports": U64}},
        "WithdrawRequest": {"type": "object", "required": ["owner", "amount"], "properties": {
            "owner": KEY, "amount": U64, "destination_token_account": KEY, "priority_fee_micro_lamports": U64}},
        "SubmitRequest": {"type": "object", "required": ["signed_transaction_base64"], "properties": {
            "signed_transaction_base64": {"type": "string"},
            "wait_for": {"type": "string", "enum": ["processed", "confirmed", "finalized"]}}},
    }},
}


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.json_response(SPEC)
