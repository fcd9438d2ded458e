"""Policy delivery and statistics intake: the HTTP side the sidecars talk to.

Long polling was chosen over a mounted ConfigMap (kubelet syncs those in up to a minute
and needs an object per policy and namespace) and over letting sidecars watch the API
server (every pod would need RBAC and a watch connection): one open request per idle
sidecar, a change reaches it within a round trip, and a sidecar that cannot reach the
operator keeps the policy it has. See docs/operator.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

from aiohttp import web

from .ledger import Counters, micro_usd, parse_counters, zero
from .metrics import OperatorMetrics
from .shared_redis import SharedRedis, TokenRejected, TokenVerifier
from .store import PolicyStore, StatsStore

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 300.0
MAX_STATS_BYTES = 64 * 1024
_ETAG = re.compile(r'^(?:W/)?"?(-?\d+(?:\.\d+\.[0-9a-f]+)?x?)"?$')

STORE: web.AppKey[PolicyStore] = web.AppKey("store", PolicyStore)
STATS: web.AppKey[StatsStore] = web.AppKey("stats", StatsStore)
METRICS: web.AppKey[OperatorMetrics] = web.AppKey("metrics", OperatorMetrics)
SHARED: web.AppKey[SharedRedis] = web.AppKey("shared_redis", SharedRedis)
VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("token_verifier", TokenVerifier)


def known_tag(header: str | None) -> str | None:
    """The tag a sidecar holds: ``<generation>``, or ``<generation>.<password epoch>.<key
    fingerprint>`` when it got its Redis credential too."""
    if not header:
        return None
    match = _ETAG.match(header.strip())
    return match.group(1) if match else None


async def _proves_namespace(request: web.Request, namespace: str) -> bool:
    """Whether the request carries a projected ServiceAccount token of ``namespace``
    (admin-credential mode only). A token that proves another namespace, or nothing, is
    refused outright (403): better a loud error than a sidecar silently without its L2."""
    header = request.headers.get("Authorization", "")
    shared, verifier = request.app.get(SHARED), request.app.get(VERIFIER)
    if not header.startswith("Bearer ") or shared is None or verifier is None:
        return False
    try:
        proven = await verifier.namespace_of(header.removeprefix("Bearer ").strip())
    except TokenRejected as exc:
        raise web.HTTPForbidden(text=f"{exc}\n") from exc
    except Exception as exc:  # the API server is unreachable: the sidecar retries
        log.warning("TokenReview failed: %s", exc)
        raise web.HTTPServiceUnavailable(text="cannot verify the token now\n") from exc
    if proven != namespace:
        raise web.HTTPForbidden(text=f"token of namespace {proven}, not {namespace}\n")
    return True


def _wait_seconds(request: web.Request) -> float:
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text="wait must be a number of seconds") from exc
    return min(max(wait, 0.0), MAX_WAIT_SECONDS)


async def get_policy(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    known = known_tag(request.headers.get("If-None-Match"))
    record = store.get(namespace, name)
    if record is None:
        raise web.HTTPNotFound(text=f"no CachePolicy {namespace}/{name}\n")
    shared = request.app.get(SHARED)
    proven = await _proves_namespace(request, namespace)
    credential = shared.fingerprint if proven and shared is not None else None
    if record.tag(credential) == known:
        wait = _wait_seconds(request)
        record = None
        if wait:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    record = await store.wait_change(namespace, name, known, credential)
        if record is None and store.get(namespace, name) is None:
            raise web.HTTPNotFound(text=f"no CachePolicy {namespace}/{name}\n")
        if record is None:
            return web.Response(status=304, headers={"ETag": f'"{known}"'})
    request.app[METRICS].policy_deliveries.inc()
    redis_url = shared.url_for(record) if credential and shared is not None else None
    return web.json_response(
        record.document(redis_url), headers={"ETag": f'"{record.tag(credential)}"'}
    )


async def post_stats(request: web.Request) -> web.Response:
    """A sidecar's report: ``{"pod", "instance", "from", "to"}`` (ledger counters, ``from``
    being what it last had acknowledged, ``null`` at first), or the cumulative ``{"pod",
    "stats"}`` of earlier sidecars. Answered once the report is written into status (204),
    or 503 when that write failed: nothing of it counted, the sidecar sends it again."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if request.content_length is not None and request.content_length > MAX_STATS_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_STATS_BYTES, actual_size=request.content_length
        )
    try:
        doc: Any = json.loads(await request.read())
        pod, instance, base, to = parse_report(doc)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from exc
    if request.app[STORE].get(namespace, name) is None:
        raise web.HTTPNotFound(text=f"no CachePolicy {namespace}/{name}\n")
    written = await request.app[STATS].record(namespace, name, pod, instance, base, to)
    if not written:
        raise web.HTTPServiceUnavailable(text="statistics not written; send them again\n")
    return web.Response(status=204)


def parse_report(doc: Any) -> tuple[str, str, Counters | None, Counters]:
    """(pod, instance, from, to) of a report; ``ValueError`` says what is wrong."""
    shape = 'body must be JSON {"pod": str, "instance": str, "from": {...} | null, "to": {...}}'
    if not isinstance(doc, dict) or not isinstance(doc.get("pod"), str) or not doc["pod"]:
        raise ValueError(shape)
    pod: str = doc["pod"][:253]
    if "stats" in doc and "to" not in doc:  # cumulative-only: counted from the first one heard
        return pod, f"pod:{pod}", None, legacy_counters(doc["stats"])
    instance = doc.get("instance")
    if not isinstance(instance, str) or not 0 < len(instance) <= 128:
        raise ValueError(shape)
    base = None if doc.get("from") is None else parse_counters(doc["from"])
    return pod, instance, base or zero(), parse_counters(doc.get("to"))


def legacy_counters(stats: Any) -> Counters:
    if not isinstance(stats, dict):
        raise ValueError("stats must be an object")

    def number(key: str) -> float:
        value = stats.get(key, 0)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        return float(value) if ok else 0.0

    return parse_counters(
        {
            "requests": int(number("requests")),
            "hits": int(number("hits")),
            "savedMicroUsd": micro_usd(number("savedUsd")),
            "spentMicroUsd": micro_usd(number("spentUsd")),
            "tokensSaved": int(number("tokensSaved")),
            "redisFaults": int(number("redisFaults")),
        }
    )


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_delivery_app(
    store: PolicyStore,
    stats: StatsStore,
    metrics: OperatorMetrics,
    shared: tuple[SharedRedis, TokenVerifier] | None = None,
) -> web.Application:
    """``shared``: admin-credential mode (the policy's Redis user goes to its sidecars)."""
    app = web.Application(client_max_size=MAX_STATS_BYTES)
    app[STORE] = store
    app[STATS] = stats
    app[METRICS] = metrics
    if shared is not None:
        app[SHARED], app[VERIFIER] = shared
    app.add_routes(
        [
            web.get("/v1/policies/{namespace}/{name}", get_policy),
            web.post("/v1/stats/{namespace}/{name}", post_stats),
            web.get("/healthz", healthz),
        ]
    )
    return app
