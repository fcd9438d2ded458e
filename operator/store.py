"""In-memory view of the cluster's CachePolicies and of what their sidecars report.

Every operator replica keeps its own ``PolicyStore`` fed by its own watch (not by kopf's
handlers, which pause on the replicas that lose peering), so any replica can answer a
long poll or an admission request. ``StatsStore`` keeps only the latest report per pod.
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

    def document(self) -> dict[str, Any]:
        """The delivery payload (contracts: ``{"generation", "spec"}``)."""
        return {"generation": self.generation, "spec": self.spec.to_json()}


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
        self, namespace: str, name: str, known_generation: int | None
    ) -> PolicyRecord | None:
        """The record once its generation differs from ``known_generation`` (or it is
        gone: ``None``); callers bound the wait with ``asyncio.timeout``."""

        def changed() -> bool:
            record = self.get(namespace, name)
            return record is None or record.generation != known_generation

        async with self._changed:
            await self._changed.wait_for(changed)
        return self.get(namespace, name)


@dataclass
class _Report:
    stats: dict[str, Any]
    at: float


@dataclass
class StatsStore:
    """Latest ``GET /stats`` document per pod, per policy."""

    max_age: float = 45.0
    _reports: dict[tuple[str, str], dict[str, _Report]] = field(default_factory=dict)

    def record(
        self, namespace: str, name: str, pod: str, stats: dict[str, Any], now: float | None = None
    ) -> None:
        at = time.monotonic() if now is None else now
        self._reports.setdefault((namespace, name), {})[pod] = _Report(stats, at)

    def forget(self, namespace: str, name: str) -> None:
        self._reports.pop((namespace, name), None)

    def aggregate(self, namespace: str, name: str, now: float | None = None) -> dict[str, Any]:
        """Sums over the pods heard from within ``max_age``; silent pods are dropped."""
        at = time.monotonic() if now is None else now
        pods = self._reports.get((namespace, name), {})
        for pod in [p for p, r in pods.items() if at - r.at > self.max_age]:
            del pods[pod]
        live = [r.stats for r in pods.values()]
        requests = sum(_int(s, "requests") for s in live)
        hits = sum(_int(s, "hits") for s in live)
        return {
            "injectedPods": len(live),
            "requests": requests,
            "hits": hits,
            "hitRate": round(hits / requests, 4) if requests else 0.0,
            "savedUsd": round(sum(_float(s, "savedUsd") for s in live), 6),
            "spentUsd": round(sum(_float(s, "spentUsd") for s in live), 6),
            "tokensSaved": sum(_int(s, "tokensSaved") for s in live),
            "redisFaults": sum(_int(s, "redisFaults") for s in live),
        }


def _int(stats: dict[str, Any], key: str) -> int:
    value = stats.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(stats: dict[str, Any], key: str) -> float:
    value = stats.get(key, 0.0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
