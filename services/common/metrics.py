"""Prometheus metrics shared by every service (labelled by service), served on a separate
HTTP port by `serve_metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

# grpc_server_requests_total, grpc_server_handling_seconds and grpc_server_in_flight come
# from services/common/grpc_metrics.py (counted without a lock per call).
CACHE_LOOKUPS = Counter("vault_cache_lookups_total", "Vault cache lookups", ["service", "result"])
CHAIN_CALLS = Counter("chain_rpc_calls_total", "Solana RPC calls", ["service", "method", "outcome"])
TRANSACTIONS_SUBMITTED = Counter("transactions_submitted_total", "Signed transactions submitted",
                                 ["service", "outcome"])
GC_PAUSES = Histogram("python_gc_pause_seconds", "Pauses of the cyclic garbage collector (the event loop stops)",
                      ["service", "generation"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
LOOP_LAG = Histogram("event_loop_lag_seconds", "How much later than due the event loop woke a periodic look",
                     ["service"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))


def serve_metrics(host: str, port: int) -> None:
    """Starts the /metrics HTTP endpoint (a daemon thread)."""
    start_http_server(port, addr=host)
