"""In-memory view of the cluster's CachePolicies and of what their sidecars report.

Every operator replica keeps its own ``PolicyStore`` fed by its own watch (not by kopf's
handlers, which pause on the replicas that lose peering), so any replica can answer a
long poll or an admission request. ``StatsStore`` holds the statistics reports that reached
this replica (the Service spreads sidecars over all replicas) until ``publish`` adds them to
the replica's own running sums in ``status.ledger``; the active replica sums the replicas
(``handlers.stats``).
"""

from __future__ import annotations

import asyncio
import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from llmcache.policy import CachePolicySpec

from .ledger import Counters, ReplicaSums, ceiling, delta

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
    budget_exhausted: bool = False
    """``status.budget.exhausted``: sidecars of a ``cacheOnly`` budget stop calling upstream."""

    def document(self, redis_url: str | None = None) -> dict[str, Any]:
        """The delivery payload (contracts: ``{"generation", "spec"}``, plus ``redisUrl``
        for a sidecar that proved it runs in the policy's namespace)."""
        doc: dict[str, Any] = {"generation": self.generation, "spec": self.spec.to_json()}
        if self.budget_exhausted:
            doc["budgetExhausted"] = True
        if redis_url is not None:
            doc["redisUrl"] = redis_url
        return doc

    def tag(self, credential: str | None = None) -> str:
        """The ETag: the generation; when the Redis credential is delivered too, also its
        epoch and ``credential`` (which names the key it is derived with); ``x`` at the end
        while the budget is exhausted."""
        mark = "x" if self.budget_exhausted else ""  # wakes the long poll when it flips
        if credential and self.redis_epoch:
            return f"{self.generation}.{self.redis_epoch}.{credential}{mark}"
        return f"{self.generation}{mark}"


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
class _Instance:
    last: Counters
    """The highest ``to`` of this sidecar instance that is written (or being written)."""
    heard: float


@dataclass
class Batch:
    """Reports taken for one write: the sums they add, and who waits for the outcome."""

    sums: ReplicaSums
    reports: int
    instances: dict[str, Counters]
    waiters: list[asyncio.Future[bool]]


@dataclass
class _Policy:
    written: ReplicaSums | None = None
    """This replica's sums as in status; ``None`` until read back (after a restart)."""
    pending: ReplicaSums = field(default_factory=ReplicaSums)
    reports: int = 0
    pending_last: dict[str, Counters] = field(default_factory=dict)
    waiters: list[asyncio.Future[bool]] = field(default_factory=list)
    instances: dict[str, _Instance] = field(default_factory=dict)
    pods: dict[str, float] = field(default_factory=dict)
    """Pod name → when it last reported here (the count goes to status, never the names)."""


@dataclass
class StatsStore:
    """This replica's share of the ledger: reports since the last write, per policy, and
    the last ``to`` per sidecar instance (deduplication). A report is acknowledged only once
    the write holding it succeeded (``Batch.waiters``)."""

    live_seconds: float = 45.0
    forget_seconds: float = 3600.0
    _policies: dict[tuple[str, str], _Policy] = field(default_factory=dict)

    def record(
        self,
        namespace: str,
        name: str,
        pod: str,
        instance: str,
        base: Counters | None,
        to: Counters,
        now: float | None = None,
        at: datetime.datetime | None = None,
    ) -> asyncio.Future[bool]:
        """Count ``to - base`` minus what this replica already counted of ``instance``;
        ``base=None`` (a cumulative-only report) counts from the first one heard, never
        its past. The future resolves with the outcome of the write."""
        mono = time.monotonic() if now is None else now
        policy = self._policies.setdefault((namespace, name), _Policy())
        seen = policy.instances.get(instance)
        pending = policy.pending_last.get(instance)
        if base is not None:
            known = base
        elif seen is not None or pending is not None:
            known = {}
        else:
            known = to
        for counted in (seen.last if seen is not None else None, pending):
            if counted is not None:
                known = ceiling(known, counted)
        policy.pending.add(delta(to, known), at or datetime.datetime.now(datetime.UTC))
        policy.pending_last[instance] = ceiling(to, known)
        policy.reports += 1
        policy.pods[pod] = mono
        if seen is not None:
            seen.heard = mono
        waiter = asyncio.get_running_loop().create_future()
        policy.waiters.append(waiter)
        return waiter

    def forget(self, namespace: str, name: str) -> None:
        policy = self._policies.pop((namespace, name), None)
        if policy is not None:
            _settle(policy.waiters, False)

    def take(self, now: float | None = None) -> dict[tuple[str, str], Batch]:
        """The reports of each policy since the last take; silent pods and instances are
        forgotten."""
        mono = time.monotonic() if now is None else now
        out: dict[tuple[str, str], Batch] = {}
        for key, policy in self._policies.items():
            policy.pods = {p: t for p, t in policy.pods.items() if mono - t <= self.live_seconds}
            policy.instances = {
                i: s for i, s in policy.instances.items() if mono - s.heard <= self.forget_seconds
            }
            if policy.reports:
                out[key] = Batch(
                    policy.pending, policy.reports, policy.pending_last, policy.waiters
                )
                policy.pending, policy.reports = ReplicaSums(), 0
                policy.pending_last, policy.waiters = {}, []
        return out

    def pods(self, namespace: str, name: str) -> int:
        policy = self._policies.get((namespace, name))
        return len(policy.pods) if policy is not None else 0

    def written(self, namespace: str, name: str) -> ReplicaSums | None:
        policy = self._policies.get((namespace, name))
        return policy.written if policy is not None else None

    def committed(
        self, namespace: str, name: str, batch: Batch, sums: ReplicaSums, now: float | None = None
    ) -> None:
        """``batch`` is in status (``sums`` written): its instances are known, its waiters
        acknowledged."""
        mono = time.monotonic() if now is None else now
        policy = self._policies.setdefault((namespace, name), _Policy())
        policy.written = sums
        for instance, last in batch.instances.items():
            seen = policy.instances.get(instance)
            merged = ceiling(seen.last, last) if seen is not None else last
            policy.instances[instance] = _Instance(merged, mono)
        _settle(batch.waiters, True)

    def failed(self, batch: Batch) -> None:
        """Not written: nothing of it counts; the sidecars resend (their ``from`` stays)."""
        _settle(batch.waiters, False)


def _settle(waiters: list[asyncio.Future[bool]], ok: bool) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(ok)
