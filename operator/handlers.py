"""kopf handlers for CachePolicies: validate and report, aggregate sidecar statistics into
``status``, flush on request (``llmcache.dev/flush`` annotation) and on deletion.

They run on the active replica only (kopf peering); delivery and injection do not depend
on them (see ``store.py``).
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from llmcache import keyspace, redis_client
from llmcache.policy import API_GROUP, API_VERSION, PLURAL, Budget, CachePolicySpec
from llmcache.redact import redact

from .ledger import totals
from .status import (
    budget_message,
    budget_status,
    condition,
    mode,
    now_iso,
    readable,
    set_condition,
)

FINALIZER = "llmcache.dev/finalizer"
KOPF_PREFIX = "kopf.llmcache.dev"
FLUSH_ANNOTATION = "llmcache.dev/flush"
FLUSH_TAGS_ANNOTATION = "llmcache.dev/flush-tags"
FLUSH_MODEL_ANNOTATION = "llmcache.dev/flush-model"
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
BUDGET_CONDITION = "BudgetExceeded"


def configure(settings: kopf.OperatorSettings) -> None:
    """Keep kopf's bookkeeping under our own prefix and out of the (structural) status."""
    settings.persistence.finalizer = FINALIZER
    # Not "llmcache.dev" itself: kopf leaves annotations under its storage prefix out of the
    # diffs it reacts to, and the flush annotation must be seen.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO


class FlushUnavailable(Exception):
    pass


async def redis_url(spec: CachePolicySpec, namespace: str, memo: Any) -> str:
    if spec.redis.url_secret_ref is not None:
        ref = spec.redis.url_secret_ref
        try:
            return str(await memo.cluster.secret_value(namespace, ref.name, ref.key))
        except KeyError as exc:
            raise FlushUnavailable(str(exc.args[0])) from exc
        except ApiException as exc:
            # Missing, or not ours to read: waiting will not fix it (a retry loop would
            # also hold a policy's deletion for nothing).
            if exc.status in (403, 404):
                raise FlushUnavailable(
                    f"cannot read Secret {namespace}/{ref.name} (HTTP {exc.status})"
                ) from exc
            raise
    if spec.redis.url:
        return spec.redis.url
    if memo.default_redis_url:
        return str(memo.default_redis_url)
    raise FlushUnavailable("the policy has no shared Redis (spec.redis), nothing to flush")


async def flush_policy(
    spec: CachePolicySpec,
    namespace: str,
    name: str,
    memo: Any,
    tags: list[str] | None = None,
    model: str | None = None,
) -> int:
    client = redis_client.connect(
        await redis_url(spec, namespace, memo), socket_timeout=10, socket_connect_timeout=5
    )
    try:
        prefix = keyspace.policy_prefix(spec.redis.key_prefix, namespace, name)
        return await keyspace.flush(client, prefix, tags_any=tags or (), model=model or None)
    finally:
        await client.aclose()


def _parse(spec: Any) -> CachePolicySpec | ValidationError:
    try:
        return CachePolicySpec.model_validate(dict(spec or {}))
    except ValidationError as exc:
        return exc


def _track(memo: Any, namespace: str, name: str, cond: str | None) -> None:
    if cond is None:
        memo.conditions.pop((namespace, name), None)
    else:
        memo.conditions[(namespace, name)] = cond
    memo.metrics.set_conditions(memo.conditions)


def register(registry: kopf.OperatorRegistry, stats_interval: float) -> None:
    @kopf.on.resume(*RESOURCE, id="reconcile", registry=registry)
    @kopf.on.create(*RESOURCE, id="reconcile", registry=registry)
    @kopf.on.update(*RESOURCE, id="reconcile", field="spec", registry=registry)
    def reconcile(
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        memo: Any,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        assert namespace is not None  # CachePolicies are namespaced
        generation = meta.get("generation")
        conditions = list(status.get("conditions") or [])
        parsed = _parse(spec)
        if isinstance(parsed, ValidationError):
            message = readable(parsed)
            was = condition(conditions, "Degraded")
            if not was or was.get("message") != message:
                kopf.warn(body, reason="InvalidSpec", message=message)
            logger.warning("invalid spec: %s", message)
            conditions = set_condition(
                conditions, "Ready", False, "InvalidSpec", message, generation
            )
            conditions = set_condition(
                conditions, "Degraded", True, "InvalidSpec", message, generation
            )
            _track(memo, namespace, name, "Degraded")
        else:
            message = "Valid; delivered to sidecars by long poll"
            conditions = set_condition(conditions, "Ready", True, "Valid", message, generation)
            conditions = set_condition(conditions, "Degraded", False, "Valid", "", generation)
            patch.status["mode"] = mode(parsed)
            _track(memo, namespace, name, "Ready")
        patch.status["conditions"] = conditions
        patch.status["observedGeneration"] = generation

    @kopf.timer(*RESOURCE, id="stats", interval=stats_interval, sharp=False, registry=registry)
    def stats(
        spec: kopf.Spec,
        status: kopf.Status,
        patch: kopf.Patch,
        meta: kopf.Meta,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        memo: Any,
        **_: Any,
    ) -> None:
        assert namespace is not None
        # Every replica writes its own running sums (publish.py); the totals are their sum.
        now = datetime.datetime.now(datetime.UTC)
        replicas = (status.get("ledger") or {}).get("replicas") or {}
        agg = totals(replicas, now, live_seconds=3 * stats_interval)
        faults = agg.pop("redisFaults")
        changed = {k: v for k, v in agg.items() if status.get(k) != v}
        if changed:
            patch.status.update(changed)
            patch.status["statsUpdated"] = now_iso()
        if status.get("sidecars") is not None:
            patch.status["sidecars"] = None  # the per-pod map of earlier versions
        # Degraded while sidecars report new Redis faults since the last tick.
        previous = memo.redis_faults.get((namespace, name), faults)
        memo.redis_faults[(namespace, name)] = faults
        conditions = list(status.get("conditions") or [])
        before = list(conditions)
        degraded = condition(conditions, "Degraded") or {}
        generation = meta.get("generation")
        if faults > previous and degraded.get("status") != "True":
            msg = f"sidecars report {faults - previous} new Redis faults; serving from L1 only"
            conditions = set_condition(conditions, "Degraded", True, "RedisFaults", msg, generation)
            _track(memo, namespace, name, "Degraded")
        elif faults <= previous and degraded.get("reason") == "RedisFaults":
            conditions = set_condition(conditions, "Degraded", False, "Valid", "", generation)
            _track(memo, namespace, name, "Ready")
        parsed = _parse(spec)
        budget = None if isinstance(parsed, ValidationError) else parsed.budget
        conditions = _budget(budget, status, patch, body, namespace, name, memo, now, conditions,
                             generation)  # fmt: skip
        if conditions != before:
            patch.status["conditions"] = conditions

    def _budget(
        budget: Budget | None,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        namespace: str,
        name: str,
        memo: Any,
        now: datetime.datetime,
        conditions: list[dict[str, Any]],
        generation: int | None,
    ) -> list[dict[str, Any]]:
        """``status.budget``, its condition, an Event per threshold crossed, the metric."""
        previous = status.get("budget") or {}
        if budget is None:
            if previous:
                patch.status["budget"] = None
                memo.metrics.forget_budget(namespace, name)
            return [c for c in conditions if c.get("type") != BUDGET_CONDITION]
        replicas = (status.get("ledger") or {}).get("replicas") or {}
        doc = budget_status(budget, replicas, now)
        same_period = previous.get("periodStart") == doc["periodStart"]
        crossed = previous.get("threshold", 0.0) if same_period else 0.0
        message = budget_message(doc)
        if doc["threshold"] > crossed:
            kopf.warn(body, reason="BudgetThreshold",
                      message=f"{message}: crossed {100 * doc['threshold']:.0f}%")  # fmt: skip
        if doc != previous:
            patch.status["budget"] = doc
        memo.metrics.set_budget(namespace, name, doc["remainingUsd"])
        reason = "Exhausted" if doc["exhausted"] else "ThresholdReached" if doc["threshold"] else (
            "WithinBudget")  # fmt: skip
        return set_condition(conditions, BUDGET_CONDITION, doc["exhausted"], reason, message,
                             generation)  # fmt: skip

    @kopf.on.resume(*RESOURCE, id="flush", annotations={FLUSH_ANNOTATION: kopf.PRESENT},
                    registry=registry)  # fmt: skip
    @kopf.on.create(*RESOURCE, id="flush", annotations={FLUSH_ANNOTATION: kopf.PRESENT},
                    registry=registry)  # fmt: skip
    @kopf.on.field(*RESOURCE, id="flush", field="metadata.annotations",
                   annotations={FLUSH_ANNOTATION: kopf.PRESENT}, registry=registry)  # fmt: skip
    async def flush(
        spec: kopf.Spec,
        annotations: kopf.Annotations,
        status: kopf.Status,
        patch: kopf.Patch,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        memo: Any,
        **_: Any,
    ) -> None:
        assert namespace is not None
        request = annotations[FLUSH_ANNOTATION]
        if (status.get("lastFlush") or {}).get("id") == request:
            return  # done already (idempotent across restarts)
        tags = [
            t.strip() for t in annotations.get(FLUSH_TAGS_ANNOTATION, "").split(",") if t.strip()
        ]
        model = annotations.get(FLUSH_MODEL_ANNOTATION) or None
        parsed = _parse(spec)
        record: dict[str, Any] = {"id": request, "tags": tags, "time": now_iso()}
        if model:
            record["model"] = model
        if isinstance(parsed, ValidationError):
            parsed = CachePolicySpec()
        try:
            removed = await flush_policy(parsed, namespace, name, memo, tags, model)
        except FlushUnavailable as exc:
            record.update(removed=0, error=str(exc))
            kopf.warn(body, reason="FlushFailed", message=f"flush {request}: {exc}")
        except Exception as exc:  # Redis down: retry with kopf's backoff
            raise kopf.TemporaryError(redact(f"flush {request}: {exc}"), delay=5) from exc
        else:
            record["removed"] = removed
            what = f"tags {','.join(tags)}" if tags else "all entries"
            if model:
                what += f" of model {model}"
            kopf.info(body, reason="Flushed",
                      message=f"flush {request}: removed {removed} entries ({what})")  # fmt: skip
        patch.status["lastFlush"] = record

    @kopf.on.delete(*RESOURCE, id="cleanup", retries=3, backoff=5, registry=registry)
    async def cleanup(
        spec: kopf.Spec,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        memo: Any,
        logger: kopf.Logger,
        retry: int,
        **_: Any,
    ) -> None:
        assert namespace is not None
        parsed = _parse(spec)
        if not isinstance(parsed, ValidationError) and parsed.on_delete == "flush":
            try:
                removed = await flush_policy(parsed, namespace, name, memo)
            except FlushUnavailable as exc:
                logger.info("onDelete flush skipped: %s", exc)
                if parsed.redis.url_secret_ref is not None:  # named a Redis it cannot reach
                    kopf.warn(body, reason="FlushFailed", message=f"onDelete flush skipped: {exc}")
            else:
                kopf.info(body, reason="Flushed", message=f"onDelete: removed {removed} entries")
        memo.stats.forget(namespace, name)
        memo.redis_faults.pop((namespace, name), None)
        memo.metrics.forget_budget(namespace, name)
        _track(memo, namespace, name, None)
