"""bench/probes.py runs the services' measurement entry points in processes of their own and
reads their JSON result: a result comes back whole (a real entry point, on a real
database), and an entry point that fails, prints no JSON object or ends before it is ready
is a clear error, never a result."""

from __future__ import annotations

import pytest

from bench.environment import temporary_database
from bench.probes import probe, probe_after, run_probe


async def test_a_service_entry_point_measures_on_a_real_database() -> None:
    async with temporary_database("cvbench") as url:
        result = await probe("services.balance_tracker.perf_snapshots", url, "200")
    assert result["vaults"] == 200 and result["rows"] == 400 and result["active_vaults"] == 20
    assert result["bytes_per_row"] > 0 and result["idle_pass_ms"] >= 0


def test_a_failing_entry_point_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="ended with status 1 and no result"):
        run_probe("services.no_such_probe")


async def test_output_that_is_not_a_json_object_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not a JSON object"):
        await probe("this")  # prints the Zen of Python, no JSON


async def test_an_entry_point_that_ends_before_it_is_ready_is_an_error() -> None:
    called = []

    async def setup() -> str:
        called.append(True)
        return "{}"

    with pytest.raises(RuntimeError, match="ended before it was ready"):
        await probe_after("services.no_such_probe", setup, {})
    assert called == []
