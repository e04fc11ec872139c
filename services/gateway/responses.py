"""The gateway's answers in one shape: an error body `{"error": {"code", "message"}}`, gRPC
statuses mapped to HTTP codes (the backend's message kept), protobuf messages as JSON, and
the request body limit. Shared by the REST handlers, the WebSocket and the middleware."""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

MAX_BODY = 64 * 1024
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


def bad_request(message: str) -> web.HTTPBadRequest:
    """A 400 to raise from request parsing, with the same body as `error`."""
    return web.HTTPBadRequest(text=json.dumps(error_body("INVALID_ARGUMENT", message)),
                              content_type="application/json")


def as_json(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
