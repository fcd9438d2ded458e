"""kopf handlers for the policies' own users in a shared Redis (admin-credential mode,
``redis_acl.py``): create or update on create/resume/spec change, rotate on request
(``llmcache.dev/rotate-redis-password``) or on a schedule, drop the previous password when
the overlap ends, and delete the user with the policy (behind the finalizer).

The state is ``status.redisUser`` (epoch, times): every replica's watch sees it, so every
replica delivers the same password. Redis is told first and ``status`` second: a sidecar is
never handed a password Redis does not accept yet.
"""

from __future__ import annotations

import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from llmcache import redis_client
from llmcache.policy import CachePolicySpec
from llmcache.redact import redact

from . import redis_acl
from .handlers import RESOURCE
from .shared_redis import SharedRedis
from .status import now_iso

ROTATE_ANNOTATION = "llmcache.dev/rotate-redis-password"


def _admin(shared: SharedRedis) -> redis_client.Client:
    return redis_client.connect(shared.admin_url, socket_timeout=10, socket_connect_timeout=5)


def _parse(spec: Any) -> CachePolicySpec | None:
    try:
        return CachePolicySpec.model_validate(dict(spec or {}))
    except ValidationError:
        return None  # reported by the reconcile handler; the user stays as it is


def _at(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _later(seconds: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _apply(
    shared: SharedRedis,
    spec: CachePolicySpec,
    namespace: str,
    name: str,
    uid: str,
    epochs: list[int],
) -> None:
    """Make the user accept exactly the passwords of ``epochs``, on the policy's prefix."""
    passwords = [shared.password(namespace, name, uid, e) for e in epochs]
    admin = _admin(shared)
    try:
        await redis_acl.ensure_user(
            admin,
            redis_acl.username(namespace, name),
            shared.prefix(spec, namespace, name),
            passwords,
        )
    except Exception as exc:  # Redis down: kopf retries
        raise kopf.TemporaryError(redact(f"Redis ACL SETUSER: {exc}"), delay=5) from exc
    finally:
        await admin.aclose()


async def _rotate(
    shared: SharedRedis,
    spec: CachePolicySpec,
    namespace: str,
    name: str,
    uid: str,
    state: dict[str, Any],
    patch: kopf.Patch,
    rotation: str | None,
) -> None:
    epoch = int(state.get("epoch") or 1)
    await _apply(shared, spec, namespace, name, uid, [epoch + 1, epoch])
    record = {
        **state,
        "user": redis_acl.username(namespace, name),
        "epoch": epoch + 1,
        "rotatedAt": now_iso(),
        "previousValidUntil": _later(shared.overlap_seconds),
    }
    if rotation is not None:
        record["rotation"] = rotation
    patch.status["redisUser"] = record


def register(registry: kopf.OperatorRegistry, shared: SharedRedis) -> None:
    timer_interval = max(1.0, min(30.0, shared.overlap_seconds / 3))

    @kopf.on.resume(*RESOURCE, id="redis-user", registry=registry)
    @kopf.on.create(*RESOURCE, id="redis-user", registry=registry)
    @kopf.on.update(*RESOURCE, id="redis-user", field="spec", registry=registry)
    async def ensure(
        spec: kopf.Spec,
        status: kopf.Status,
        patch: kopf.Patch,
        uid: str | None,
        name: str,
        namespace: str | None,
        **_: Any,
    ) -> None:
        assert namespace is not None
        parsed = _parse(spec)
        if parsed is None:
            return
        state = dict(status.get("redisUser") or {})
        if not shared.manages(parsed):
            if state:  # now names a Redis of its own: the shared one forgets it
                await _delete(shared, namespace, name)
                patch.status["redisUser"] = None
            return
        epoch = int(state.get("epoch") or 1)
        until = _at(state.get("previousValidUntil"))
        overlap = until is not None and until > _now() and epoch > 1
        await _apply(shared, parsed, namespace, name, uid or "", [epoch, epoch - 1][: 1 + overlap])
        if state.get("epoch") != epoch:
            patch.status["redisUser"] = {
                "user": redis_acl.username(namespace, name),
                "epoch": epoch,
                "rotatedAt": now_iso(),
            }

    @kopf.on.field(*RESOURCE, id="redis-rotate", field="metadata.annotations",
                   annotations={ROTATE_ANNOTATION: kopf.PRESENT}, registry=registry)  # fmt: skip
    async def rotate(
        spec: kopf.Spec,
        annotations: kopf.Annotations,
        status: kopf.Status,
        patch: kopf.Patch,
        uid: str | None,
        name: str,
        namespace: str | None,
        **_: Any,
    ) -> None:
        assert namespace is not None
        request = annotations[ROTATE_ANNOTATION]
        state = dict(status.get("redisUser") or {})
        parsed = _parse(spec)
        if parsed is None or not shared.manages(parsed) or not state:
            return
        if state.get("rotation") == request:
            return  # done already (idempotent across restarts)
        await _rotate(shared, parsed, namespace, name, uid or "", state, patch, request)

    @kopf.timer(*RESOURCE, id="redis-password", interval=timer_interval, sharp=False,
                registry=registry)  # fmt: skip
    async def expire(
        spec: kopf.Spec,
        status: kopf.Status,
        patch: kopf.Patch,
        uid: str | None,
        name: str,
        namespace: str | None,
        **_: Any,
    ) -> None:
        """End the overlap when it is due; rotate when the schedule says so."""
        assert namespace is not None
        state = dict(status.get("redisUser") or {})
        parsed = _parse(spec)
        if parsed is None or not shared.manages(parsed) or not state.get("epoch"):
            return
        until = _at(state.get("previousValidUntil"))
        if until is not None and until <= _now():
            await _apply(shared, parsed, namespace, name, uid or "", [int(state["epoch"])])
            patch.status["redisUser"] = {**state, "previousValidUntil": None}
            return
        rotated = _at(state.get("rotatedAt"))
        age = (_now() - rotated).total_seconds() if rotated else 0.0
        if until is None and shared.rotation_seconds and age >= shared.rotation_seconds:
            await _rotate(shared, parsed, namespace, name, uid or "", state, patch, None)

    @kopf.on.delete(*RESOURCE, id="redis-user-cleanup", retries=3, backoff=5, registry=registry)
    async def cleanup(name: str, namespace: str | None, **_: Any) -> None:
        assert namespace is not None
        await _delete(shared, namespace, name)  # a user that does not exist is no error


async def _delete(shared: SharedRedis, namespace: str, name: str) -> None:
    admin = _admin(shared)
    try:
        await redis_acl.delete_user(admin, redis_acl.username(namespace, name))
    except Exception as exc:
        raise kopf.TemporaryError(redact(f"Redis ACL DELUSER: {exc}"), delay=5) from exc
    finally:
        await admin.aclose()
