"""``/rag/<name>/...``: the policy's vector stores behind a query cache (see ``cache`` for
the keys and the invalidation, ``requests`` for which requests are queries and writes)."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from llmcache.policy import RagUpstream

from .. import keys, tracing
from ..http_client import UPSTREAM_ERRORS, Client, describe, send
from ..layers import Entry
from ..pipeline import BadRequest, read_body
from ..runtime import Runtime
from ..target import BadTarget, upstream_tail
from ..upstream import request_headers
from .cache import RagCache
from .requests import Query, Write, classify

ROUTE = "rag"
_STATE = web.AppKey("rag_state", dict)
# Response headers that must not be replayed from the cache.
_DROP = frozenset({"content-length", "transfer-encoding", "connection", "date", "content-encoding"})


def add_routes(
    app: web.Application, runtime_key: web.AppKey[Runtime], client_key: web.AppKey[Client]
) -> None:
    """Mount ``/rag/{name}/{tail}`` on the sidecar app."""
    app[_STATE] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        rt, client = request.app[runtime_key], request.app[client_key]
        if rt.tracing.tracer is None:  # tracing off: this check is all it costs
            return await _handle(request, rt, client)
        return await tracing.serve(rt, request, ROUTE, _handle(request, rt, client))

    async def cleanup(app: web.Application) -> None:
        cache = app[_STATE].pop("cache", None)
        if cache is not None:
            await cache.close()

    app.router.add_route("*", "/rag/{name}/{tail:.*}", handler)
    app.on_cleanup.append(cleanup)


def _cache(request: web.Request, rt: Runtime) -> RagCache:
    state = request.app[_STATE]
    wanted = (rt.policy.rag, rt.prefix, rt.redis_url)
    cache: RagCache | None = state.get("cache")
    if cache is None or state.get("key") != wanted:
        if cache is not None:
            state["closing"] = cache  # closed at shutdown; in-flight requests may use it
        cache = RagCache(
            rt.policy.rag, rt.metrics, rt.prefix, rt.redis_url, rt.policy.redis.timeout_ms
        )
        cache.start()
        state["cache"], state["key"] = cache, wanted
    return cache


def _json(status: int, message: str) -> web.Response:
    return web.json_response(
        {"status": {"error": f"llmcache: {message}"}},
        status=status,
        headers={"x-llmcache": "bypass"},
    )


async def _handle(request: web.Request, rt: Runtime, client: Client) -> web.StreamResponse:
    started = time.perf_counter()
    policy = rt.policy
    name = request.match_info["name"]
    upstream: RagUpstream | None = next((u for u in policy.rag.upstreams if u.name == name), None)
    if not policy.rag.enabled or upstream is None:
        return _json(404, f"no vector store named {name!r} in the policy's rag.upstreams")
    rt.stats.requests += 1
    try:
        tail = upstream_tail(request, f"/rag/{name}")
        raw = await read_body(request, policy.limits.max_body_bytes)
    except BadTarget as exc:
        return _json(400, str(exc))
    except BadRequest as exc:
        return _json(exc.status, str(exc))
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
    url = upstream.url.rstrip("/") + tail
    path = tail.partition("?")[0]
    what = classify(upstream.kind, request.method, path, body if isinstance(body, dict) else None)
    cache = _cache(request, rt)
    control = request.headers.get("cache-control", "").lower()

    if not isinstance(what, Query) or "no-store" in control:
        resp = await _forward(request, client, url, raw, "bypass")
        if isinstance(what, Write):  # after the store answered: see cache.py
            await cache.bump(name, what.collection)
        rt.stats.bypasses += 1
        rt.metrics.bypasses.labels(
            ROUTE, "rag_write" if isinstance(what, Write) else "rag_other"
        ).inc()
        _observe(rt, "bypass", "none", started)
        return resp

    # The whole path and query are part of the partition: they name the store's tenant,
    # database and collection, and whatever options the query string adds.
    tenant = keys.partition(policy.sharing, request.headers, rt.settings.namespace or "", tail)
    gen = await cache.generation(name, what.collection)
    if gen is None:  # Redis cannot tell whether a write happened: do not serve or store
        resp = await _forward(request, client, url, raw, "bypass")
        rt.stats.bypasses += 1
        _observe(rt, "bypass", "none", started)
        return resp
    partition, exact = cache.keys(name, tenant, what, gen)
    if "no-cache" not in control:
        t0 = time.perf_counter()
        found = await cache.lookup(partition, exact, what.vector)
        rt.metrics.lookup_duration.observe(("rag",), time.perf_counter() - t0)
        if found is not None:
            entry, score = found
            rt.stats.hits += 1
            rt.stats.layer_hits["rag"] = rt.stats.layer_hits.get("rag", 0) + 1
            headers = {"x-llmcache": "hit", "x-llmcache-layer": "rag",
                       "x-llmcache-similarity": f"{score:.4f}"}  # fmt: skip
            _observe(rt, "hit", "rag", started)
            return web.Response(
                body=entry.encoded(), content_type="application/json", headers=headers
            )

    rt.stats.misses += 1
    resp, payload = await _call(request, client, url, raw)
    if payload is not None:
        ttl = _ttl(request.headers.get("x-llmcache-ttl"), policy.rag.ttl_seconds)
        now = time.time()  # the expiry travels with the entry: no copy outlives the TTL
        entry = Entry(body=payload, model=what.collection, created=now, expires=now + ttl)
        cache.save(partition, exact, what.vector, entry, ttl)
        rt.metrics.stores.labels("rag").inc()
    _observe(rt, "miss", "none", started)
    return resp


def _ttl(value: str | None, default: int) -> int:
    try:
        return max(1, min(int(value), 31 * 86_400)) if value else default
    except ValueError:
        return default


def _observe(rt: Runtime, result: str, layer: str, started: float) -> None:
    rt.metrics.requests.labels(ROUTE, result, layer).inc()
    rt.metrics.request_duration.observe((ROUTE, result), time.perf_counter() - started)


async def _call(
    request: web.Request, client: Client, url: str, raw: bytes
) -> tuple[web.Response, bytes | None]:
    """Forward; also return the body when it is a storable success (a JSON object)."""
    sent = request_headers(request.headers)
    call = tracing.upstream_call(ROUTE, None, url, sent, request.method)
    try:
        async with send(client, request.method, url, raw, sent) as up:
            payload = await up.read()
            tracing.upstream_done(call, up.status)
            headers = {k: v for k, v in up.headers.items() if k.lower() not in _DROP}
            headers["x-llmcache"] = "miss"
            resp = web.Response(status=up.status, body=payload, headers=headers)
            storable = None
            if up.status == 200:
                try:
                    storable = payload if isinstance(json.loads(payload), dict) else None
                except ValueError:
                    storable = None
            return resp, storable
    except UPSTREAM_ERRORS as exc:
        tracing.upstream_done(call, error=describe(exc))
        return _json(502, f"vector store call failed: {describe(exc)}"), None


async def _forward(
    request: web.Request, client: Client, url: str, raw: bytes, label: str
) -> web.Response:
    resp, _ = await _call(request, client, url, raw)
    resp.headers["x-llmcache"] = label
    return resp
