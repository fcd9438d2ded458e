"""Pure helpers for a CachePolicy's ``status``: conditions, mode, readable errors."""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import ValidationError

from llmcache.policy import CachePolicySpec, describe_error

from .store import summed


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


def sidecar_totals(
    sidecars: dict[str, Any] | None, max_age: float, now: datetime.datetime | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Totals over the pods in ``status.sidecars`` heard from within ``max_age`` seconds, and
    the pods that have gone silent (to be removed)."""
    at = now or datetime.datetime.now(datetime.UTC)
    live: list[dict[str, Any]] = []
    stale: list[str] = []
    for pod, report in (sidecars or {}).items():
        try:
            age = (at - datetime.datetime.fromisoformat(report["at"])).total_seconds()
        except (TypeError, KeyError, ValueError):
            age = float("inf")
        if age <= max_age:
            live.append(report)
        else:
            stale.append(pod)
    return summed(live), stale


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
