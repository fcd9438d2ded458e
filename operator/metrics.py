"""The operator's own Prometheus metrics (names fixed in the contracts) and the small
HTTP app that serves them with ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import contextlib

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .store import PolicyStore

CONDITIONS = ("Ready", "Degraded")


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.policies = Gauge(
            "llmcache_operator_policies",
            "CachePolicies by the condition that is True (Ready or Degraded)",
            ["condition"],
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "llmcache_webhook_requests",
            "Pod admissions by outcome (injected, skipped, error)",
            ["result"],
            registry=self.registry,
        )
        self.webhook_duration = Histogram(
            "llmcache_webhook_duration_seconds",
            "Time to decide and build one pod mutation",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.policy_deliveries = Counter(
            "llmcache_policy_deliveries",
            "Policy documents sent to sidecars (200 answers of the long poll)",
            registry=self.registry,
        )
        self.budget_remaining = Gauge(
            "llmcache_budget_remaining_usd",
            "USD left in the current budget period of a CachePolicy with spec.budget "
            "(negative: overshot), from the statistics ledger; active replica only. "
            "policy_namespace, not namespace: the scrape sets namespace to the operator's",
            ["policy_namespace", "policy"],
            registry=self.registry,
        )
        self.stats_writes = Counter(
            "llmcache_operator_stats_writes",
            "Status writes of this replica's statistics ledger, by result (ok, failed)",
            ["result"],
            registry=self.registry,
        )
        for condition in CONDITIONS:
            self.policies.labels(condition)
        for result in ("ok", "failed"):
            self.stats_writes.labels(result)
        for result in ("injected", "skipped", "error"):
            self.webhook_requests.labels(result)

    def set_budget(self, namespace: str, name: str, remaining_usd: float) -> None:
        self.budget_remaining.labels(namespace, name).set(remaining_usd)

    def forget_budget(self, namespace: str, name: str) -> None:
        with contextlib.suppress(KeyError):
            self.budget_remaining.remove(namespace, name)

    def set_conditions(self, conditions: dict[tuple[str, str], str]) -> None:
        """``conditions``: the True condition of each known policy."""
        for condition in CONDITIONS:
            self.policies.labels(condition).set(
                sum(1 for c in conditions.values() if c == condition)
            )


def create_metrics_app(
    metrics: OperatorMetrics, store: PolicyStore | None = None
) -> web.Application:
    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        """Ready once the policy store has listed: until then injection and delivery would
        answer "no such policy" for policies that exist."""
        if store is not None and not store.synced.is_set():
            return web.Response(status=503, text="policy store not synced\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.add_routes(
        [web.get("/metrics", scrape), web.get("/healthz", healthz), web.get("/readyz", readyz)]
    )
    return app
