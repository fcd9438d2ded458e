"""Prometheus metrics of one sidecar process (names are a documented contract: the chart's
dashboards and alerts use them, and a test checks that every name they use exists).

Each ``Metrics`` has its own registry so several sidecars can live in one test process.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily

# Hits are sub-millisecond, upstream calls take seconds: one bucket set covers both.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
SIMILARITY_BUCKETS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class LoopHistogram:
    """A labelled Prometheus histogram for the request path: one bisect and two additions
    per observation, no lock (the sidecar serves on one event-loop thread, and scrapes are
    served on that thread too)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = list(labelnames)
        self._bounds = list(buckets)
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        registry.register(self)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * (len(self._bounds) + 1), [0.0])
        series[0][bisect_left(self._bounds, value)] += 1
        series[1][0] += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, (counts, total) in self._series.items():
            cumulative, buckets = 0, []
            for bound, n in zip([*map(str, self._bounds), "+Inf"], counts, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            family.add_metric(list(labels), buckets, total[0])
        yield family


class FaultCounter(Counter):
    """A counter of fail-open faults whose increments also go to ``hook`` (set by
    ``sidecar/tracing.py``: an event on the span of the request that met the fault), so the
    layers that count faults need no tracing code of their own."""

    hook: ClassVar[Callable[[str, tuple[str, ...]], None] | None] = None

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        super().inc(amount, exemplar)
        if FaultCounter.hook is not None:
            FaultCounter.hook(self._name, self._labelvalues)


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._pending: dict[tuple[Any, tuple[str, ...]], float] = {}
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "llmcache_requests",
            "Proxied requests by route, result (hit, miss, bypass, error) and serving layer.",
            ["route", "result", "layer"],
            registry=r,
        )
        self.request_duration = LoopHistogram(
            "llmcache_request_duration_seconds",
            "Time from request to the end of the response, by route and result.",
            ["route", "result"],
            LATENCY_BUCKETS,
            r,
        )
        self.upstream_duration = LoopHistogram(
            "llmcache_upstream_duration_seconds",
            "Upstream call time to the end of the response, by route and status class.",
            ["route", "status_class"],
            LATENCY_BUCKETS,
            r,
        )
        self.lookup_duration = LoopHistogram(
            "llmcache_lookup_duration_seconds",
            "Time one cache layer took to answer a lookup (hit or miss).",
            ["layer"],
            LATENCY_BUCKETS,
            r,
        )
        self.response_bytes = Counter(
            "llmcache_response_bytes",
            "Response body bytes sent to clients, by route and result.",
            ["route", "result"],
            registry=r,
        )
        self.bypasses = Counter(
            "llmcache_bypass",
            "Requests not looked up or not stored, by reason.",
            ["route", "reason"],
            registry=r,
        )
        self.coalesced = Counter(
            "llmcache_coalesced_requests",
            "Requests answered by joining an identical in-flight upstream call.",
            ["route"],
            registry=r,
        )
        self.peer_coalescing = Counter(
            "llmcache_peer_coalescing",
            "Misses coordinated with the other pods of the policy through a Redis lease, by "
            "outcome: led (this pod called upstream), joined (served another pod's answer), "
            "timeout (batching.peerWaitMs ran out), fault (Redis failed; the request went "
            "upstream).",
            ["outcome"],
            registry=r,
        )
        self.tokens_saved = Counter(
            "llmcache_tokens_saved",
            "Tokens not bought from the upstream thanks to hits, by kind "
            "(input, output, cache_read, cache_write).",
            ["route", "model", "kind"],
            registry=r,
        )
        self.tokens_spent = Counter(
            "llmcache_tokens_spent",
            "Tokens bought from the upstream on misses and bypasses, by kind.",
            ["route", "model", "kind"],
            registry=r,
        )
        self.usd_saved = Counter(
            "llmcache_saved_usd",
            "Estimated USD not spent thanks to hits (list prices, policy overrides).",
            ["route", "model"],
            registry=r,
        )
        self.usd_spent = Counter(
            "llmcache_spent_usd",
            "Estimated USD spent upstream on misses and bypasses.",
            ["route", "model"],
            registry=r,
        )
        self.redis_faults = FaultCounter(
            "llmcache_redis_faults",
            "Redis operations that failed open (timeout, error, corrupt value).",
            ["op", "reason"],
            registry=r,
        )
        self.stores = Counter(
            "llmcache_stores",
            "Responses written to a cache layer.",
            ["layer"],
            registry=r,
        )
        self.l1_entries = Gauge("llmcache_l1_entries", "Entries in the L1.", registry=r)
        self.l1_bytes = Gauge("llmcache_l1_bytes", "Bytes held by the L1.", registry=r)
        self.l1_evictions = Counter(
            "llmcache_l1_evictions", "L1 entries evicted to stay within bounds.", registry=r
        )
        self.policy_generation = Gauge(
            "llmcache_policy_generation",
            "Generation of the CachePolicy the sidecar runs (0: file or defaults).",
            registry=r,
        )
        self.policy_reloads = Counter(
            "llmcache_policy_reloads",
            "Policy updates received, by result (applied, invalid, unchanged).",
            ["result"],
            registry=r,
        )
        # Exported at 0 from the start: a series born at 1 has no increase(), and the
        # LLMCachePolicyRejected alert would miss a pod's first rejected policy.
        for result in ("applied", "invalid", "unchanged"):
            self.policy_reloads.labels(result)
        self.upstream_batch_size = Histogram(
            "llmcache_upstream_batch_size",
            "Inputs per batched upstream call (batching.mode: batch).",
            ["route"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.invalidated = Counter(
            "llmcache_invalidated_entries",
            "Entries removed by flushes and write-through invalidation.",
            ["reason"],
            registry=r,
        )
        for reason in ("flush", "announced", "rag_write"):  # a first flush is an increase
            self.invalidated.labels(reason)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, resolved once: the hit path calls this a dozen times
        per request and ``labels()`` takes a lock and builds tuples every time."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def add(self, counter: Any, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Count without touching Prometheus yet: the hit path is a few microseconds and a
        locked ``inc()`` per counter would double it. ``fold()`` settles before scrapes."""
        key = (counter, labels)
        self._pending[key] = self._pending.get(key, 0.0) + amount

    def fold(self) -> None:
        pending, self._pending = self._pending, {}
        for (counter, labels), amount in pending.items():
            self.child(counter, *labels).inc(amount)

    def add_all(self, counts: Iterable[tuple[tuple[Any, tuple[str, ...]], float]]) -> None:
        pending = self._pending
        for key, amount in counts:
            pending[key] = pending.get(key, 0.0) + amount
