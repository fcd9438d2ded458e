"""Pure helpers for a CachePolicy's ``status``: conditions, mode, readable errors."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from llmcache.policy import Budget, CachePolicySpec, describe_error

from .ledger import micro_usd, period_spend, period_start, usd


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Conditions with ``type_`` set; ``lastTransitionTime`` moves only when the status does."""
    value = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions or []:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        moved = cond.get("status") != value
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "observedGeneration": generation or 0,
                "lastTransitionTime": (now or now_iso())
                if moved
                else cond.get("lastTransitionTime") or now or now_iso(),
            }
        )
    if not found:
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "observedGeneration": generation or 0,
                "lastTransitionTime": now or now_iso(),
            }
        )
    return out


def budget_status(
    budget: Budget, replicas: Mapping[str, Any], now: datetime.datetime
) -> dict[str, Any]:
    """``status.budget``: the current period's spend over all replicas' ledgers."""
    spend = period_spend(replicas, budget.period, now)
    amount, spent = micro_usd(budget.amount_usd), spend["spentMicroUsd"]
    ratio = spent / amount
    return {
        "period": budget.period,
        "periodStart": period_start(budget.period, now),
        "amountUsd": budget.amount_usd,
        "spentUsd": usd(spent),
        "savedUsd": usd(spend["savedMicroUsd"]),
        "remainingUsd": usd(amount - spent),
        "usedRatio": round(ratio, 4),
        "threshold": max((t for t in budget.thresholds if ratio >= t), default=0.0),
        "exhausted": spent >= amount,
    }


def budget_message(doc: Mapping[str, Any]) -> str:
    return (
        f"spent ${doc['spentUsd']:.2f} of ${doc['amountUsd']:.2f} "
        f"({100 * doc['usedRatio']:.0f}%) this {doc['period']} (since {doc['periodStart']})"
    )


def condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def mode(spec: CachePolicySpec) -> str:
    """What ``kubectl get cachepolicies`` shows under MODE."""
    layers = []
    if spec.exact.enabled:
        layers.append("exact" if spec.redis.url or spec.redis.url_secret_ref else "exact(l1)")
    if spec.semantic.enabled:
        layers.append("semantic(shadow)" if spec.semantic.shadow else "semantic")
    if spec.rag.enabled:
        layers.append("rag")
    return "+".join(layers) or "off"


def readable(exc: ValidationError) -> str:
    """The condition message and event: what to fix, credentials masked."""
    return describe_error(exc)
