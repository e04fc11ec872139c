"""schemathesis against a running gateway: `python -m tests.support.openapi_conformance URL`
generates requests for every operation of the OpenAPI document at URL/openapi.json and
checks status codes, content types and response bodies against it (no 5xx allowed); it
prints how many operations it checked, and exits non-zero with hypothesis' report on the
first failure.

A process of its own, not a thread of the test: pytest rewrites the modules of every
installed pytest plugin (schemathesis is one) with `ast.parse` as they are imported, and on
CPython 3.11 the ast module's recursion-depth count is shared by the interpreter's threads,
so a parse in one thread while another converts an AST fails at random with "SystemError:
AST constructor recursion depth mismatch" (seen in CI; python/cpython#106905)."""

from __future__ import annotations

import sys
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

EXAMPLES = 15


def check_all(url: str) -> int:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            # A base58 pattern cannot say "decodes to exactly 32 bytes", so a schema-valid key
            # may still be refused with 400: that one check is excluded.
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        check()
        checked += 1
    return checked


if __name__ == "__main__":
    print(check_all(sys.argv[1]))
