"""URLs as they may be shown: in logs, error messages, gRPC statuses and HTTP bodies.

An endpoint URL can carry a secret in any part but the host: `user:password@`, an API key
in the query (`?api-key=...`) or in the path (`https://x.quiknode.pro/<token>/`). `url`
keeps only scheme://host[:port] and marks that something was left out; `scrub` removes a
URL and each of its secret parts from a text (an exception's message) that may quote them."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MARK = "/[redacted]"


def url(value: str, keep_path: bool = False) -> str:
    """scheme://host[:port], plus MARK when credentials, a path or a query were dropped.
    `keep_path` keeps a path that names no secret (a database's name, a Redis db number)."""
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "[a URL that does not parse]"
    if not parts.scheme or not host:
        return "[a URL that does not parse]"
    shown = f"[{host}]" if ":" in host else host
    out = f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")
    path = parts.path.rstrip("/") if keep_path else ""
    hidden = parts.username is not None or parts.password is not None or parts.query or parts.fragment \
        or (not keep_path and parts.path.strip("/"))
    return out + path + (MARK if hidden else "")


def _secrets(value: str) -> list[str]:
    """The parts of `value` that may be secret, longest first: credentials (3 characters or
    more), and path segments and query values long enough to be a token (8 or more)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return [value]
    found: set[str] = set()
    for part, shortest in ((parts.netloc.rpartition("@")[0], 3), (parts.username, 3), (parts.password, 3),
                           (parts.query, 8), (parts.fragment, 8)):
        if part and len(part) >= shortest:
            found |= {part, unquote(part)}
    tokens = [s for s in parts.path.split("/") if s] + [p.partition("=")[2] for p in parts.query.split("&")]
    found |= {t for token in tokens for t in (token, unquote(token)) if len(t) >= 8}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, *urls: str) -> str:
    """`text` with each of `urls` shown as `url(...)` and none of their secret parts left."""
    shown: list[str] = []
    for value in urls:
        if value and value in text:
            text = text.replace(value, f"\x00{len(shown)}\x00")
            shown.append(url(value))
    for value in urls:
        for secret in _secrets(value) if value else ():
            text = text.replace(secret, "[redacted]")
    for index, replacement in enumerate(shown):
        text = text.replace(f"\x00{index}\x00", replacement)
    return text
