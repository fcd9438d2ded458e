"""The statistics ledger's arithmetic: exact sums of what sidecars report, O(replicas).

A sidecar reports ``from`` (its counters at its last acknowledged report) and ``to`` (its
counters now); what it adds is ``to - from``. A replica keeps, per sidecar instance, the
highest ``to`` it has written, so a report resent after a lost acknowledgement adds only
what is new. Money is counted in integer micro-USD so sums over any number of reports and
replicas are exact (a float sum depends on its order). Each replica writes only its own
running sums; the totals are the sum over replicas (``totals``), and a budget period's
spend is the sum of the replicas' entries for that period (``period_spend``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LEDGER_COUNTERS = (
    "requests", "hits", "savedMicroUsd", "spentMicroUsd", "tokensSaved", "redisFaults",
)  # fmt: skip
PERIOD_COUNTERS = ("spentMicroUsd", "savedMicroUsd")
PERIODS = ("day", "month")
MAX_COUNTER = 2**62  # far above any real count; keeps int64 in the API server

Counters = dict[str, int]


def zero() -> Counters:
    return dict.fromkeys(LEDGER_COUNTERS, 0)


def parse_counters(doc: Any) -> Counters:
    """Counters from a report; a missing one is 0, anything but a non-negative integer is
    refused (``ValueError``): a bad report must not corrupt the sums."""
    if not isinstance(doc, dict):
        raise ValueError("counters must be an object")
    out = zero()
    for name in LEDGER_COUNTERS:
        value = doc.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_COUNTER:
            raise ValueError(f"{name} must be a non-negative integer")
        out[name] = value
    return out


def delta(to: Mapping[str, int], known: Mapping[str, int]) -> Counters:
    """What ``to`` adds beyond what is already counted (never negative)."""
    return {c: max(0, to.get(c, 0) - known.get(c, 0)) for c in LEDGER_COUNTERS}


def ceiling(a: Mapping[str, int], b: Mapping[str, int]) -> Counters:
    return {c: max(a.get(c, 0), b.get(c, 0)) for c in LEDGER_COUNTERS}


def period_key(period: str, at: datetime.datetime) -> str:
    """``2026-11-30`` (day) or ``2026-11`` (month), UTC: keys sort in time order."""
    at = at.astimezone(datetime.UTC)
    return at.strftime("%Y-%m-%d") if period == "day" else at.strftime("%Y-%m")


def period_start(period: str, at: datetime.datetime) -> str:
    """When the period holding ``at`` began, RFC 3339."""
    key = period_key(period, at)
    return (key if period == "day" else key + "-01") + "T00:00:00Z"


@dataclass
class ReplicaSums:
    """One replica's running sums for one policy: what it writes into
    ``status.ledger.replicas.<replica>`` (and reads back after a restart)."""

    counters: Counters = field(default_factory=zero)
    periods: dict[str, tuple[str, Counters]] = field(default_factory=dict)
    """``day``/``month`` → (period key, spend in that period); only the latest period."""

    def add(self, d: Mapping[str, int], at: datetime.datetime) -> None:
        for c in LEDGER_COUNTERS:
            self.counters[c] += d.get(c, 0)
        for kind in PERIODS:
            self._add_period(kind, period_key(kind, at), d)

    def merge(self, other: ReplicaSums) -> ReplicaSums:
        out = ReplicaSums(dict(self.counters), dict(self.periods))
        for c in LEDGER_COUNTERS:
            out.counters[c] += other.counters[c]
        for kind, (key, counts) in other.periods.items():
            out._add_period(kind, key, counts)
        return out

    def _add_period(self, kind: str, key: str, d: Mapping[str, int]) -> None:
        current = self.periods.get(kind)
        if current is not None and current[0] > key:
            return  # a report from a period already closed: the totals have it
        base = current[1] if current is not None and current[0] == key else {}
        self.periods[kind] = (key, {c: base.get(c, 0) + d.get(c, 0) for c in PERIOD_COUNTERS})

    def to_status(self, pods: int, at: str) -> dict[str, Any]:
        doc: dict[str, Any] = {**self.counters, "pods": pods, "at": at}
        for kind, (key, counts) in self.periods.items():
            doc[kind] = {"start": key, **counts}
        return doc

    @classmethod
    def from_status(cls, doc: Any) -> ReplicaSums:
        """Sums read back from status (a replica's restart); what is unreadable counts 0."""
        if not isinstance(doc, dict):
            return cls()
        counters = {c: _int(doc.get(c)) for c in LEDGER_COUNTERS}
        periods: dict[str, tuple[str, Counters]] = {}
        for kind in PERIODS:
            entry = doc.get(kind)
            if isinstance(entry, dict) and isinstance(entry.get("start"), str):
                periods[kind] = (entry["start"], {c: _int(entry.get(c)) for c in PERIOD_COUNTERS})
        return cls(counters, periods)


def totals(
    replicas: Mapping[str, Any], now: datetime.datetime, live_seconds: float
) -> dict[str, Any]:
    """The status totals: every replica's sums (a replica that stopped still counts what it
    wrote), and the pods heard from by replicas that wrote within ``live_seconds``."""
    sums = zero()
    pods = 0
    for doc in replicas.values():
        replica = ReplicaSums.from_status(doc)
        for c in LEDGER_COUNTERS:
            sums[c] += replica.counters[c]
        if _age(doc, now) <= live_seconds:
            pods += _int(doc.get("pods"))
    requests, hits = sums["requests"], sums["hits"]
    return {
        "injectedPods": pods,
        "requests": requests,
        "hits": hits,
        "hitRate": round(hits / requests, 4) if requests else 0.0,
        "savedUsd": usd(sums["savedMicroUsd"]),
        "spentUsd": usd(sums["spentMicroUsd"]),
        "tokensSaved": sums["tokensSaved"],
        "redisFaults": sums["redisFaults"],
    }


def period_spend(replicas: Mapping[str, Any], period: str, now: datetime.datetime) -> Counters:
    """Spend and savings of the period holding ``now``, over all replicas."""
    key = period_key(period, now)
    out = dict.fromkeys(PERIOD_COUNTERS, 0)
    for doc in replicas.values():
        entry = ReplicaSums.from_status(doc).periods.get(period)
        if entry is not None and entry[0] == key:
            for c in PERIOD_COUNTERS:
                out[c] += entry[1][c]
    return out


def usd(micro: int) -> float:
    return round(micro / 1e6, 6)


def micro_usd(amount: float) -> int:
    return round(amount * 1e6)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _age(doc: Any, now: datetime.datetime) -> float:
    try:
        at = datetime.datetime.fromisoformat(str(doc["at"]))
    except (TypeError, KeyError, ValueError):
        return float("inf")
    return (now - at).total_seconds()
