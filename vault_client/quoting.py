"""Quoting a caller's input in an error message: a short prefix, never the whole value (a
malformed 4 MiB field must not come back whole in a status, a log line or a REST body)."""

from __future__ import annotations

EXCERPT_CHARACTERS = 48


def quoted(value: object, limit: int = EXCERPT_CHARACTERS) -> str:
    """`value` as repr() of at most `limit` characters of its text, saying how long the
    whole was when it was cut."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
