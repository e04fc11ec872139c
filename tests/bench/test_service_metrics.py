"""bench_scale's reading of a service's metrics page (bench/service_metrics.py): the cache
lookups and collector pauses between two readings, from the text prometheus_client writes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from bench.service_metrics import diff, parse


def test_cache_lookups_and_slow_pauses_between_two_readings() -> None:
    registry = CollectorRegistry()
    lookups = Counter("vault_cache_lookups_total", "", ["service", "result"], registry=registry)
    pauses = Histogram("python_gc_pause_seconds", "", ["service", "generation"], registry=registry,
                       buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
    lag = Histogram("event_loop_lag_seconds", "", ["service"], registry=registry,
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
    lookups.labels("vault_manager", "hit").inc(3)
    pauses.labels("vault_manager", "2").observe(0.04)
    lag.labels("vault_manager").observe(0.3)
    before = parse(generate_latest(registry).decode())
    lookups.labels("vault_manager", "hit").inc(5)
    lookups.labels("vault_manager", "miss").inc(2)
    for seconds in (0.0001, 0.004, 0.006):
        pauses.labels("vault_manager", "0").observe(seconds)
    pauses.labels("vault_manager", "2").observe(0.07)
    for seconds in (0.0002, 0.02, 0.06, 0.3, 0.011):
        lag.labels("vault_manager").observe(seconds)
    assert diff(before, parse(generate_latest(registry).decode())) == {
        "cache_hits": 5, "cache_misses": 2,
        "gc_gen0": {"pauses": 3, "over_0.005_s": 1, "seconds": 0.01},
        "gc_gen1": {"pauses": 0, "over_0.005_s": 0, "seconds": 0.0},
        "gc_gen2": {"pauses": 1, "over_0.005_s": 1, "seconds": 0.07},
        "get_vault_handler": {"calls": 0, "over_0.01_s": 0, "over_0.05_s": 0},
        "loop_lag": {"looks": 5, "later_than_0.01_s": 4, "later_than_0.05_s": 2, "later_than_0.25_s": 1}}


def test_get_vault_handler_times_between_two_readings() -> None:
    def page(calls: int, within_10ms: int, within_50ms: int) -> str:
        labels = 'service="vault_manager",method="GetVault"'
        return (f'grpc_server_handling_seconds_bucket{{{labels},le="0.01"}} {within_10ms}\n'
                f'grpc_server_handling_seconds_bucket{{{labels},le="0.05"}} {within_50ms}\n'
                f'grpc_server_handling_seconds_count{{{labels}}} {calls}\n'
                'grpc_server_handling_seconds_count{service="vault_manager",method="ListVaults"} 99\n')

    assert diff(parse(page(10, 9, 10)), parse(page(110, 100, 108)))["get_vault_handler"] == {
        "calls": 100, "over_0.01_s": 9, "over_0.05_s": 2}
