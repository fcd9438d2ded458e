"""In-memory view of the cluster's CachePolicies and of what their sidecars report.

Every operator replica keeps its own ``PolicyStore`` fed by its own watch (not by kopf's
handlers, which pause on the replicas that lose peering), so any replica can answer a
long poll or an admission request. ``StatsStore`` keeps the latest report per pod that
reached this replica (the Service spreads sidecars over all replicas); every replica publishes
its reports into ``status.sidecars`` and the active one sums them (``handlers.stats``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from llmcache.policy import CachePolicySpec

DEFAULT_POLICY = "default"


@dataclass(frozen=True)
class PolicyRecord:
    namespace: str
    name: str
    generation: int
    spec: CachePolicySpec
    uid: str = ""
    redis_epoch: int = 0
    """``status.redisUser.epoch``: the current password of the policy's shared-Redis user
    (0: none yet, or not in admin-credential mode)."""

    def document(self, redis_url: str | None = None) -> dict[str, Any]:
        """The delivery payload (contracts: ``{"generation", "spec"}``, plus ``redisUrl``
        for a sidecar that proved it runs in the policy's namespace)."""
        doc: dict[str, Any] = {"generation": self.generation, "spec": self.spec.to_json()}
        if redis_url is not None:
            doc["redisUrl"] = redis_url
        return doc

    def tag(self, credential: str | None = None) -> str:
        """The ETag: the generation; when the Redis credential is delivered too, also its
        epoch and ``credential`` (which names the key it is derived with)."""
        if credential and self.redis_epoch:
            return f"{self.generation}.{self.redis_epoch}.{credential}"
        return str(self.generation)


class PolicyStore:
    """Valid policies by (namespace, name); waiters wake on any change."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], PolicyRecord] = {}
        self._changed = asyncio.Condition()
        self.synced = asyncio.Event()
        """Set once the watches have listed: before that, "no such policy" means "not yet"."""

    def get(self, namespace: str, name: str) -> PolicyRecord | None:
        return self._records.get((namespace, name))

    def in_namespace(self, namespace: str) -> list[PolicyRecord]:
        return sorted(
            (r for (ns, _), r in self._records.items() if ns == namespace), key=lambda r: r.name
        )

    def default_for(self, namespace: str) -> PolicyRecord | None:
        """The policy a pod gets without ``llmcache.dev/policy``: the namespace's only
        one, or the one named ``default``."""
        records = self.in_namespace(namespace)
        if len(records) == 1:
            return records[0]
        return self.get(namespace, DEFAULT_POLICY)

    def __len__(self) -> int:
        return len(self._records)

    async def put(self, record: PolicyRecord) -> None:
        async with self._changed:
            self._records[(record.namespace, record.name)] = record
            self._changed.notify_all()

    async def remove(self, namespace: str, name: str) -> None:
        async with self._changed:
            self._records.pop((namespace, name), None)
            self._changed.notify_all()

    async def replace_all(self, records: list[PolicyRecord]) -> None:
        """After a (re-)list: the listed set is the truth."""
        async with self._changed:
            self._records = {(r.namespace, r.name): r for r in records}
            self._changed.notify_all()

    async def wait_change(
        self, namespace: str, name: str, known_tag: str | None, credential: str | None = None
    ) -> PolicyRecord | None:
        """The record once its tag differs from ``known_tag`` (or it is gone: ``None``);
        callers bound the wait with ``asyncio.timeout``."""

        def changed() -> bool:
            record = self.get(namespace, name)
            return record is None or record.tag(credential) != known_tag

        async with self._changed:
            await self._changed.wait_for(changed)
        return self.get(namespace, name)


@dataclass
class _Report:
    stats: dict[str, Any]
    at: float
    published: bool = False


# The counters a sidecar reports and ``status`` sums (``GET /stats`` names).
COUNTERS: dict[str, type[int] | type[float]] = {
    "requests": int, "hits": int, "savedUsd": float, "spentUsd": float, "tokensSaved": int,
    "redisFaults": int,
}  # fmt: skip


Reports = dict[tuple[str, str], dict[str, dict[str, Any]]]  # (namespace, name) -> pod -> counters


@dataclass
class StatsStore:
    """Latest ``GET /stats`` document per pod, per policy, as heard by this replica."""

    max_age: float = 45.0
    _reports: dict[tuple[str, str], dict[str, _Report]] = field(default_factory=dict)

    def record(
        self, namespace: str, name: str, pod: str, stats: dict[str, Any], now: float | None = None
    ) -> None:
        at = time.monotonic() if now is None else now
        self._reports.setdefault((namespace, name), {})[pod] = _Report(stats, at)

    def forget(self, namespace: str, name: str) -> None:
        self._reports.pop((namespace, name), None)

    def take_new(self, now: float | None = None) -> Reports:
        """Reports not yet published into ``status``, per policy (now marked published); pods
        silent for ``max_age`` are dropped."""
        at = time.monotonic() if now is None else now
        out: Reports = {}
        for key, pods in list(self._reports.items()):
            for pod, report in list(pods.items()):
                if at - report.at > self.max_age:
                    del pods[pod]
                elif not report.published:
                    report.published = True
                    counters = {c: kind(_number(report.stats, c)) for c, kind in COUNTERS.items()}
                    out.setdefault(key, {})[pod] = counters
            if not pods:
                del self._reports[key]
        return out


def summed(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The status totals of some pods' reports."""
    requests = sum(int(_number(s, "requests")) for s in reports)
    hits = sum(int(_number(s, "hits")) for s in reports)
    return {
        "injectedPods": len(reports),
        "requests": requests,
        "hits": hits,
        "hitRate": round(hits / requests, 4) if requests else 0.0,
        "savedUsd": round(sum(_number(s, "savedUsd") for s in reports), 6),
        "spentUsd": round(sum(_number(s, "spentUsd") for s in reports), 6),
        "tokensSaved": sum(int(_number(s, "tokensSaved")) for s in reports),
        "redisFaults": sum(int(_number(s, "redisFaults")) for s in reports),
    }


def _number(stats: dict[str, Any], key: str) -> float | int:
    value = stats.get(key, 0)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0
