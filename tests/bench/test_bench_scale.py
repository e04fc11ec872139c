"""bench_scale end to end at a tiny N (the system as make up runs it): every measure is
there, and nothing the benchmark does is reported as a mismatch."""

from __future__ import annotations

import pytest

from bench import bench_scale
from bench.environment import temporary_database

VAULTS = 6


async def test_bench_scale_at_a_tiny_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CV_PROFILE", "development")
    monkeypatch.setattr(bench_scale, "LOAD_SECONDS", 3.0)
    monkeypatch.setattr(bench_scale, "LATENCY_CALLS", 30)
    async with temporary_database("cvbench") as db:
        result = await bench_scale.measure(db, VAULTS)
    everyone = VAULTS + bench_scale.GENESIS_VAULTS
    assert result["population"]["vaults"] == VAULTS and result["population"]["transactions"] == VAULTS // 2
    alone, loaded = result["alone"], result["under_load"]
    assert alone["list_walk"]["vaults"] == everyone and alone["get_tvl"]["calls"] == 30
    assert len(alone["list_walk"]["walks_seconds"]) == bench_scale.ALONE_WALKS
    assert alone["reconciliation"] == {**alone["reconciliation"], "vaults_checked": everyone, "mismatches": 0}
    assert loaded["reconciliation"]["mismatches"] == 0 and loaded["reconciliation"]["vaults_checked"] == everyone
    assert loaded["deposit"]["calls"] > 0 and loaded["get_vault"]["calls"] > 0 and loaded["get_tvl"]["calls"] > 0
    assert loaded["list_walks"]["completed"] >= 1 and loaded["seconds"] >= 3.0
    # GetVault on its schedule (300/s): every call it sent was handled and timed; the probes
    # and vault_manager looked at their own event loops meanwhile
    assert loaded["get_vault"]["calls"] >= 0.5 * bench_scale.GET_VAULT_RATE * 3.0
    assert loaded["vault_manager"]["get_vault_handler"]["calls"] >= loaded["get_vault"]["calls"]
    assert loaded["vault_manager"]["loop_lag"]["looks"] > 0
    assert all(loaded["probe_loop_lag"][name]["looks"] > 0 for name in ("get_vault", "get_tvl", bench_scale.CONTROL))
    # the control: the same schedule against a lone server, its calls apart from vault_manager's
    assert loaded[bench_scale.CONTROL]["calls"] >= 0.5 * bench_scale.GET_VAULT_RATE * 3.0
    assert "perf_get_vault_server" in loaded["cpu"]["processes"]
    # who had the cores: the services under load ran and are named by their modules
    assert {"vault_manager", "monitor", "scale_readers", "localnet"} <= set(loaded["cpu"]["processes"])
    assert loaded["cpu"]["processes"]["vault_manager"]["cpu_s"] > 0 and 0 < loaded["cpu"]["busy_share"] <= 1
    assert result["snapshot_pass"]["rows"] == everyone
    catch_up = result["catch_up"]
    assert catch_up["events"] >= 2 * VAULTS + loaded["deposit"]["calls"]
    assert catch_up["node_get_transaction"]["transactions_per_second"] > 0
    assert catch_up["indexer_events_per_second"] is None  # a history this short gives no rate
