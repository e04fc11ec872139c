"""Structured JSON logging with a request id carried in a context variable (set by the
gRPC observability wrapper from the `x-request-id` metadata, or generated). Every line is
scrubbed of the process's endpoint URLs' secrets (`redact.scrub`): whatever a library
puts in an exception's message, no password, API key or path token reaches the log."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from vault_client import redact

# A string, or an object whose str() is the id (the gRPC wrapper's reads it only when asked).
request_id: contextvars.ContextVar[object] = contextvars.ContextVar("request_id", default="")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, secret_urls: Sequence[str] = ()) -> None:
        super().__init__()
        self.service = service
        self.secret_urls = tuple(secret_urls)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = str(request_id.get())
        if rid:
            entry["request_id"] = rid
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if self.secret_urls:
            entry = {key: redact.scrub(value, *self.secret_urls) if isinstance(value, str) else value
                     for key, value in entry.items()}
        return json.dumps(entry, default=str)


def configure(service: str, level: str = "INFO", secret_urls: Sequence[str] = ()) -> None:
    """JSON lines on stderr; `secret_urls` (the endpoints' URLs) never appear in them whole."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, secret_urls))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fields(**values: Any) -> dict[str, Any]:
    """`log.info("...", extra=fields(owner=..., amount=...))`."""
    return {"fields": values}
