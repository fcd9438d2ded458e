"""A sidecar's state: its process settings, the policy in force and the layers built from it.

Policy updates swap the derived state between requests: a request reads ``runtime.policy``
and ``runtime.layers`` once at its start and keeps them to its end, so a reload never
changes the rules half-way through a request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from llmcache import keyspace
from llmcache.policy import CachePolicySpec

from .batching import EmbeddingBatcher
from .l1 import L1
from .l2 import L2
from .layers import CacheRequest, EarlyLayer, Hit, Layer, Selector
from .metrics import Metrics
from .peers import PeerCoalescer
from .tracing import Tracing

log = logging.getLogger(__name__)

SEEN_MIN = 1024
SEEN_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Seen:
    """What the pipeline decided for a request body it has seen before."""

    key: str
    model: str
    ttl: int
    stream: bool
    body: dict[str, Any] | None  # kept for streams only: the SSE replay depends on it


@dataclass(frozen=True)
class Settings:
    """Process settings (flags and env); everything else comes from the policy."""

    listen: str = "127.0.0.1:8787"
    admin_listen: str | None = None
    anthropic_upstream: str | None = None  # overrides spec.upstreams.anthropic
    openai_upstream: str | None = None  # overrides spec.upstreams.openai
    redis_url: str | None = None  # overrides spec.redis.url
    namespace: str | None = None
    policy_name: str | None = None
    pod_name: str | None = None
    policy_file: str | None = None
    policy_url: str | None = None
    policy_token_file: str | None = None  # proves the namespace to the operator
    stats_url: str | None = None
    stats_interval: float = 15.0


@dataclass
class Stats:
    """Plain counters behind ``GET /stats`` (Prometheus has the labelled detail)."""

    requests: int = 0
    hits: int = 0
    misses: int = 0
    bypasses: int = 0
    errors: int = 0
    layer_hits: dict[str, int] = field(
        default_factory=lambda: {"l1": 0, "l2": 0, "semantic": 0, "rag": 0}
    )
    saved_usd: float = 0.0
    spent_usd: float = 0.0
    tokens_saved: int = 0
    started: float = field(default_factory=time.monotonic)


class Runtime:
    def __init__(self, settings: Settings, spec: CachePolicySpec, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stats = Stats()
        self.policy = spec
        self.generation = 0
        self.l1 = L1(
            spec.exact.l1_max_entries, spec.exact.l1_max_bytes, metrics, spec.exact.sliding_ttl
        )
        self.l2: L2 | None = None
        self.peers: PeerCoalescer | None = None  # coalescing across pods, through the L2's Redis
        self.layers: list[Layer] = []
        self.extra_layers: list[EarlyLayer] = []  # semantic (built by llmcache.sidecar.semantic)
        self.inflight: dict[str, Any] = {}
        # (route, partition, raw body) → what the full path decided: exact, no digest.
        self.seen: dict[tuple[str, str, bytes], Seen] = {}
        self._seen_bytes = 0
        self.batcher = EmbeddingBatcher(metrics)
        self.delivered_redis_url: str | None = None
        """The policy's own user in a shared Redis, delivered by the operator."""
        self.budget_exhausted = False
        """The operator says the policy's budget period is spent (``budget.py``)."""
        self.tracing = Tracing(_resource(settings))

    @property
    def prefix(self) -> str:
        return keyspace.policy_prefix(
            self.policy.redis.key_prefix, self.settings.namespace, self.settings.policy_name
        )

    @property
    def redis_url(self) -> str | None:
        return self.delivered_redis_url or self.settings.redis_url or self.policy.redis.url

    def upstream(self, family: str) -> str:
        if family == "anthropic":
            return (self.settings.anthropic_upstream or self.policy.upstreams.anthropic).rstrip("/")
        return (self.settings.openai_upstream or self.policy.upstreams.openai).rstrip("/")

    async def apply(self, spec: CachePolicySpec, generation: int = 0) -> None:
        """Make ``spec`` the policy in force; rebuild only what it changed."""
        old, self.policy, self.generation = self.policy, spec, generation
        self._forget_seen()  # decisions depend on the policy
        self.metrics.policy_generation.set(generation)
        ex = spec.exact
        self.l1.resize(ex.l1_max_entries, ex.l1_max_bytes, ex.sliding_ttl)
        if (
            self.l2 is None
            or self.l2.url != self.redis_url
            or self.l2.prefix != self.prefix
            or old.redis.timeout_ms != spec.redis.timeout_ms
        ):
            await self._swap_l2()
        elif self.l2 is not None:
            self.l2.sliding = ex.sliding_ttl
        await self._swap_extra_layers(old)
        self.layers = [*self._exact_layers(), *self.extra_layers]
        await self.tracing.apply(spec.tracing)

    async def start(self) -> None:
        await self.apply(self.policy, self.generation)

    def _exact_layers(self) -> list[Layer]:
        if not self.policy.exact.enabled:
            return []
        return [self.l1] + ([self.l2] if self.l2 is not None else [])

    async def _swap_l2(self) -> None:
        old, old_peers, url = self.l2, self.peers, self.redis_url
        self.l2 = self.peers = None
        if url:  # the new one first: requests under way finish on the old one
            p = self.policy
            self.l2 = L2(url, self.prefix, self.metrics, p.redis.timeout_ms, p.exact.sliding_ttl)
            self.l2.on_flush(self._on_announced_flush)
            self.peers = PeerCoalescer(self.l2, self.metrics)
        self.layers = [*self._exact_layers(), *self.extra_layers]
        if old_peers is not None:
            await old_peers.close()
        if old is not None:
            await old.close()

    async def _swap_extra_layers(self, old: CachePolicySpec) -> None:
        """Semantic layer: rebuilt when its settings change (hook for the semantic module)."""
        wanted = (self.policy.semantic, self.prefix, self.redis_url, self.policy.redis.timeout_ms)
        if getattr(self, "_extra_key", None) == wanted:
            return
        self._extra_key = wanted
        for layer in self.extra_layers:
            await layer.close()
        self.extra_layers = []
        if self.policy.semantic.enabled:
            from .semantic import make_layer  # the local model loads only when asked for
            from .semantic.metrics import semantic_metrics

            try:
                self.extra_layers = [
                    make_layer(
                        self.policy.semantic,
                        self.metrics,
                        self.prefix,
                        self.redis_url,
                        self.policy.redis.timeout_ms,
                    )
                ]
            except Exception as exc:  # fail open: the exact layers and the app keep working
                log.error(
                    "semantic layer unavailable, running without it: %s (an image without "
                    "the `embed` extra needs semantic.embedder.url)",
                    exc,
                )
                semantic_metrics(self.metrics).embedder_faults.labels("unavailable").inc()

    async def _on_announced_flush(self, selector: Selector) -> None:
        removed = await self.l1.invalidate(selector)
        for layer in self.extra_layers:
            removed += await layer.invalidate(selector)
        self.metrics.invalidated.labels("announced").inc(removed)

    async def flush(self, selector: Selector) -> int:
        """Flush this policy everywhere: Redis (announced to every sidecar) and locally."""
        removed = 0
        if self.l2 is not None:
            removed = await self.l2.invalidate(selector)
        local = await self.l1.invalidate(selector)
        for layer in self.extra_layers:
            local += await layer.invalidate(selector)
        self.metrics.invalidated.labels("flush").inc(max(removed, local))
        return max(removed, local)

    def remember(self, seen_key: tuple[str, str, bytes], req: CacheRequest) -> None:
        size = len(seen_key[2]) * (2 if req.stream else 1)  # streams also keep the parsed body
        if self._seen_bytes + size > SEEN_MAX_BYTES or len(self.seen) >= max(
            SEEN_MIN, 2 * self.l1.max_entries
        ):
            self._forget_seen()  # rebuilt by the next requests; cheaper than an LRU here
        body = req.body if req.stream else None
        self.seen[seen_key] = Seen(req.key, req.model, req.ttl, req.stream, body)
        self._seen_bytes += size

    def _forget_seen(self) -> None:
        self.seen.clear()
        self._seen_bytes = 0

    async def promote(self, key: str, hit: Hit, ttl: int) -> None:
        """Copy a hit from a shared layer into L1, for no longer than it still lives where it
        was found: never for the reader's own TTL, which may be longer."""
        if not self.policy.exact.enabled:
            return
        remaining = hit.expires - time.time()
        if hit.expires and remaining <= 0:
            return
        self.l1.insert(key, hit.entry, min(ttl, remaining) if hit.expires else ttl)

    async def close(self) -> None:
        if self.peers is not None:
            await self.peers.close()
        layers: list[Layer] = [self.l1, *([self.l2] if self.l2 else []), *self.extra_layers]
        for layer in layers:
            await layer.close()
        await self.tracing.close()

    def stats_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "requests": s.requests,
            "hits": s.hits,
            "misses": s.misses,
            "bypasses": s.bypasses,
            "errors": s.errors,
            "hitRate": s.hits / s.requests if s.requests else 0.0,
            "layers": {name: {"hits": n} for name, n in s.layer_hits.items()},
            "savedUsd": round(s.saved_usd, 6),
            "spentUsd": round(s.spent_usd, 6),
            "tokensSaved": s.tokens_saved,
            "redisFaults": int(_counter_total(self.metrics.redis_faults)),
            "policyGeneration": self.generation,
            "uptimeSeconds": round(time.monotonic() - s.started, 3),
            **{layer.name: part for layer in self.extra_layers if (part := layer.stats())},
        }


def _resource(settings: Settings) -> dict[str, str]:
    """OpenTelemetry resource attributes that say which sidecar a span comes from."""
    known = {
        "k8s.namespace.name": settings.namespace,
        "k8s.pod.name": settings.pod_name,
        "llmcache.policy": settings.policy_name,
    }
    return {name: value for name, value in known.items() if value}


def _counter_total(counter: Any) -> float:
    return sum(
        float(sample.value)
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
