"""The gRPC server's own metrics (`grpc_server_requests_total`, `grpc_server_handling_seconds`,
`grpc_server_in_flight`), counted with plain integers.

prometheus_client takes a lock in every `inc` and walks a histogram's buckets in Python on
every `observe`; four such calls per RPC were a measurable share of a cached GetVault's
cost. Here a call adds to integers it owns: every handler of a grpc.aio server
runs on its process's one event loop thread, so nothing else writes them, and the scrape
thread only reads (a read may be one call behind, never torn). A histogram's `_count` is
taken from its own +Inf bucket, so the exposition is always self-consistent."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MethodStats:
    """One method's calls by status code and handling-time histogram."""

    __slots__ = ("buckets", "codes", "seconds")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0

    def record(self, code: str, seconds: float) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.seconds += seconds


class ServiceStats:
    """A service's calls in flight and per-method statistics."""

    __slots__ = ("in_flight", "methods")

    def __init__(self) -> None:
        self.in_flight = 0
        self.methods: dict[str, MethodStats] = {}

    def method(self, name: str) -> MethodStats:
        """Called when a handler is wrapped, not per call."""
        return self.methods.setdefault(name, MethodStats())


class GrpcServerCollector(Collector):
    def __init__(self) -> None:
        self.services: dict[str, ServiceStats] = {}

    def service(self, name: str) -> ServiceStats:
        return self.services.setdefault(name, ServiceStats())

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily("grpc_server_requests", "gRPC requests handled",
                                       labels=["service", "method", "code"])
        latency = HistogramMetricFamily("grpc_server_handling_seconds", "gRPC handling latency",
                                        labels=["service", "method"])
        in_flight = GaugeMetricFamily("grpc_server_in_flight", "gRPC requests in progress", labels=["service"])
        for service, stats in list(self.services.items()):
            in_flight.add_metric([service], stats.in_flight)
            for method, calls in list(stats.methods.items()):
                for code, count in list(calls.codes.items()):
                    requests.add_metric([service, method, code], count)
                counts, cumulative, total = list(calls.buckets), [], 0
                for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                    total += count
                    cumulative.append((_bound(bound), total))
                latency.add_metric([service, method], cumulative, calls.seconds)
        yield requests
        yield latency
        yield in_flight


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


GRPC_SERVER = GrpcServerCollector()
REGISTRY.register(GRPC_SERVER)
