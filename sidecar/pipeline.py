"""The path of one LLM API request through the sidecar, top to bottom.

0. a body whose exact bytes this tenant sent before goes straight to the exact layers with
   the key decided then, unparsed (the hit path; a policy change forgets these decisions);
1. read and parse the body (clear 4xx in the API's own error shape when it is bad);
2. decide whether the request may be cached at all (policy, statefulness, per-request
   ``cache-control``), else pass it through untouched;
3. derive the tenant partition and the key, and walk the layers (L1, L2, semantic);
4. on a miss, join an identical in-flight call or make the upstream call, streaming it to the
   client as it arrives while assembling the complete answer;
5. store the answer only if it succeeded and ended normally; never an error, a truncated,
   refused or interrupted answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from fnmatch import fnmatchcase
from typing import Any

import orjson
from aiohttp import web

from llmcache.policy import CachePolicySpec
from llmcache.prices import cost_usd, price_for
from llmcache.serving import BODY_TIMEOUT

from . import budget, keys, tracing
from .batching import EmbeddingBatcher
from .http_client import UPSTREAM_ERRORS, Client, Response, describe, send
from .layers import CacheRequest, Entry, Hit
from .peers import Lease
from .providers.base import Json, Provider, Usage
from .providers.sse import SSEParser
from .runtime import Runtime, Seen
from .target import BadTarget, upstream_tail
from .target import check as check_target
from .upstream import api_error, request_headers, response_headers

log = logging.getLogger(__name__)

SSE_HEADERS = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))
TAG_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
MAX_TAGS = 16
MAX_TTL = 31 * 86_400
STATUS_CLASS = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx")
TOO_DEEP = "request body is nested too deeply"
PER_REQUEST_HEADERS = ("cache-control", "x-llmcache-ttl", "x-llmcache-tags")
_JSON = {"content-type": "application/json"}
_JSON_HIT_HEADERS = {
    layer: {**_JSON, "x-llmcache": "hit", "x-llmcache-layer": layer}
    for layer in ("l1", "l2", "semantic", "rag", "coalesced")
}


class BadRequest(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


async def handle(
    request: web.Request, rt: Runtime, client: Client, provider: Provider, family: str
) -> web.StreamResponse:
    started = time.perf_counter()
    policy = rt.policy
    rt.stats.requests += 1
    resp: web.StreamResponse
    try:
        check_target(request)
        raw = await read_body(request, policy.limits.max_body_bytes)
        partition = keys.partition(
            policy.sharing,
            request.headers,
            rt.settings.namespace or "",
            keys.variant(family, request.raw_headers, request.rel_url.raw_query_string),
        )
        # 0. The same bytes from the same tenant were seen before: straight to the exact
        # layers, without parsing (SDKs send byte-identical bodies for identical calls).
        seen_key = _seen_key(request, policy, provider, partition, raw)
        if seen_key is not None and (seen := rt.seen.get(seen_key)) is not None:
            cached = rt.l1.lookup(seen.key)
            if cached is not None and not seen.stream:  # the hottest path: no coroutine
                resp = json_hit(rt, provider, Hit(cached, "l1"))
                _observe(rt, provider.name, "hit", "l1", started)
                return resp
            fast = Hit(cached, "l1") if cached else await _l2_hit(rt, seen)
            if fast is not None:
                resp = await respond_hit(request, rt, provider, seen.stream, seen.body, fast)
                _observe(rt, provider.name, "hit", fast.layer, started)
                return resp
        body = parse_json(raw)
        req = prepare(request, rt, policy, provider, body, partition)
    except (BadRequest, BadTarget, RecursionError) as exc:
        rt.stats.errors += 1
        rt.metrics.child(rt.metrics.requests, provider.name, "error", "none").inc()
        if isinstance(exc, BadRequest):
            return api_error(family, exc.status, exc.kind, str(exc))
        message = TOO_DEEP if isinstance(exc, RecursionError) else str(exc)
        return api_error(family, 400, "invalid_request_error", message)

    refused = budget.refusal(rt, family)  # cacheOnly and the budget is spent
    if refused is not None and isinstance(req, str):
        return _refuse(rt, provider, refused)
    if isinstance(req, str):  # a bypass reason
        tracing.note("llmcache.bypass.reason", req)
        rt.stats.bypasses += 1
        rt.metrics.child(rt.metrics.bypasses, provider.name, req).inc()
        resp = await forward(request, rt, client, family, raw, "bypass", provider, body)
        _observe(rt, provider.name, "bypass", "none", started)
        return resp
    if seen_key is not None:
        rt.remember(seen_key, req)
    for extra in rt.extra_layers:  # e.g. the semantic layer embeds while L1 and L2 look
        extra.begin(req)

    if req.lookup:
        for layer in rt.layers:
            t0 = time.perf_counter()
            found = await layer.get(req)
            elapsed = time.perf_counter() - t0
            rt.metrics.lookup_duration.observe((layer.name,), elapsed)
            if found is not None:
                if found.layer != "l1":
                    await rt.promote(req.key, found, req.ttl)
                resp = await respond_hit(request, rt, provider, req.stream, req.body, found)
                _observe(rt, provider.name, "hit", found.layer, started)
                return resp

    if refused is not None:  # a miss: no upstream call
        return _refuse(rt, provider, refused)
    rt.stats.misses += 1
    leader = req.lookup and policy.batching.mode != "off"
    waiter: asyncio.Future[Entry | None] | None = rt.inflight.get(req.key) if leader else None
    if waiter is not None:
        tracing.joined(req.key)  # a link to the span of the request making the call
        joined = await asyncio.shield(waiter)
        if joined is not None:
            return await _coalesced(request, rt, provider, req, Hit(joined, "coalesced"), started)
        leader = False  # the leader's answer was not storable: make our own call
    own: asyncio.Future[Entry | None] | None = None
    if leader:
        own = asyncio.get_running_loop().create_future()
        rt.inflight[req.key] = own
        tracing.leading(req.key)
    entry: Entry | None = None
    lease: Lease | None = None
    try:
        if leader and rt.peers is not None and policy.batching.peer_wait_ms:
            peer = await rt.peers.lead_or_join(req, policy.batching.peer_wait_ms)
            if isinstance(peer, Hit):  # another pod made this call
                entry = peer.entry
                await rt.promote(req.key, peer, req.ttl)
                return await _coalesced(request, rt, provider, req, peer, started)
            lease = peer
        resp, entry = await call_upstream(request, rt, client, provider, family, req, raw)
    finally:
        if own is not None:
            rt.inflight.pop(req.key, None)
            tracing.led(req.key)
            own.set_result(entry)
        if lease is not None:
            lease.release()
    _observe(rt, provider.name, "miss", "none", started)
    return resp


async def _coalesced(
    request: web.Request,
    rt: Runtime,
    provider: Provider,
    req: CacheRequest,
    hit: Hit,
    started: float,
) -> web.StreamResponse:
    """Answer with the answer of an identical request's call, made here or by another pod."""
    rt.metrics.child(rt.metrics.coalesced, provider.name).inc()
    rt.stats.misses -= 1
    resp = await respond_hit(request, rt, provider, req.stream, req.body, hit)
    _observe(rt, provider.name, "hit", "coalesced", started)
    return resp


def _refuse(rt: Runtime, provider: Provider, resp: web.Response) -> web.Response:
    rt.stats.errors += 1
    rt.metrics.child(rt.metrics.requests, provider.name, "error", "none").inc()
    return resp


# -- 1. reading ------------------------------------------------------------------------------


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body as the handler sees it, at most ``limit`` bytes; every route that reads a
    body reads it here.

    aiohttp inflates ``content-encoding: gzip/deflate`` bodies (br/zstd when it can) as they
    are read, and their ``content-length`` is the compressed size, so the limit is counted on
    the decoded bytes as they come: reading stops at the limit, and a 20 KB body that would
    inflate to 20 MiB costs no more than ``limit`` of memory. The decoded bytes are what is
    forwarded (``content-encoding`` does not cross the proxy). A body still arriving when
    the listener's body timeout expires is a 408."""
    length = request.content_length
    plain = "content-encoding" not in request.headers
    if plain and length is not None and length > limit:
        raise _too_large(limit)
    try:
        if request.content.is_eof():  # the usual case: the whole body came with its head
            return await _read(request, limit, plain and length is not None)
        seconds = request.app[BODY_TIMEOUT]
        try:
            async with asyncio.timeout(seconds):
                return await _read(request, limit, plain and length is not None)
        except TimeoutError:
            message = f"request body not received within {seconds:g} s"
            raise BadRequest(408, "request_timeout", message) from None
    except web.RequestPayloadError as exc:  # undecodable content-encoding, broken chunking
        raise BadRequest(400, "invalid_request_error", f"unreadable request body: {exc}") from None


async def _read(request: web.Request, limit: int, bounded: bool) -> bytes:
    """All of the body; counted while it is read unless its declared length bounds it."""
    if bounded:
        return await request.read()
    content = request.content
    body = bytearray()
    while chunk := await content.readany():
        if len(body) + len(chunk) > limit:
            raise _too_large(limit)
        body += chunk
    return bytes(body)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(413, "request_too_large", f"request body over {limit} bytes")


def parse_json(raw: bytes) -> Json:
    try:
        body = json.loads(raw)  # not orjson: it reads integers beyond 64 bits as floats
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            400, "invalid_request_error", f"request body is not valid JSON: {exc}"
        ) from None
    except RecursionError:
        raise BadRequest(400, "invalid_request_error", TOO_DEEP) from None
    if not isinstance(body, dict):
        raise BadRequest(400, "invalid_request_error", "request body must be a JSON object")
    return body


# -- 2. and 3. deciding and keying ------------------------------------------------------------


def _seen_key(
    request: web.Request, policy: CachePolicySpec, provider: Provider, partition: str, raw: bytes
) -> tuple[str, str, bytes] | None:
    """Identity of the raw request, when nothing but its bytes decides how it is cached."""
    headers = request.headers
    if not policy.exact.enabled:
        return None
    for name in PER_REQUEST_HEADERS:
        if name in headers:
            return None
    return (provider.name, partition, raw)


async def _l2_hit(rt: Runtime, seen: Seen) -> Hit | None:
    """The L2's answer for a request whose key is already known."""
    if rt.l2 is None:
        return None
    t0 = time.perf_counter()
    found = await rt.l2.lookup(seen.key, seen.ttl)
    rt.metrics.lookup_duration.observe(("l2",), time.perf_counter() - t0)
    if found is not None:
        await rt.promote(seen.key, found, seen.ttl)
    return found


def prepare(
    request: web.Request,
    rt: Runtime,
    policy: CachePolicySpec,
    provider: Provider,
    body: Json,
    partition: str,
) -> CacheRequest | str:
    """The cache request, or the reason it bypasses the cache."""
    headers = request.headers
    control = headers.get("cache-control", "").lower()
    no_store = "no-store" in control
    if no_store:
        return "no_store"
    reason = provider.uncacheable_reason(body) or _policy_reason(policy, provider, body)
    if reason:
        return reason
    model = provider.model(body)
    material = provider.key_material(body)
    return CacheRequest(
        route=provider.name,
        body=body,
        model=model,
        stream=provider.is_stream(body),
        partition=partition,
        key=keys.cache_key(provider.name, partition, material),
        ttl=_ttl(headers.get("x-llmcache-ttl"), policy.exact.ttl_seconds),
        tags=_tags(headers.get("x-llmcache-tags")),
        lookup="no-cache" not in control,
    )


def _policy_reason(policy: CachePolicySpec, provider: Provider, body: Json) -> str | None:
    c = policy.cacheability
    if c.include_routes and not any(fnmatchcase(provider.name, p) for p in c.include_routes):
        return "route_not_included"
    if any(fnmatchcase(provider.name, p) for p in c.exclude_routes):
        return "route_excluded"
    model = provider.model(body)
    if c.include_models and not any(fnmatchcase(model, p) for p in c.include_models):
        return "model_not_included"
    if any(fnmatchcase(model, p) for p in c.exclude_models):
        return "model_excluded"
    if c.max_temperature is not None:
        temperature = provider.temperature(body)
        if temperature is not None and temperature > c.max_temperature:
            return "temperature_above_ceiling"
    for tool in provider.live_tools(body):
        if tool not in c.cache_live_tools:
            return f"live_tool_{tool}"  # its answer would be stale or skip a side effect
    return None


def _ttl(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        ttl = int(value)
    except ValueError:
        ttl = 0
    if not 1 <= ttl <= MAX_TTL:
        raise BadRequest(
            400, "invalid_request_error", f"x-llmcache-ttl must be 1..{MAX_TTL} seconds"
        )
    return ttl


def _tags(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    tags = tuple(sorted({t.strip() for t in value.split(",") if t.strip()}))
    if len(tags) > MAX_TAGS or not all(TAG_RE.match(t) for t in tags):
        raise BadRequest(
            400,
            "invalid_request_error",
            f"x-llmcache-tags takes up to {MAX_TAGS} comma-separated tags matching "
            f"{TAG_RE.pattern}",
        )
    return tags


# -- serving hits -----------------------------------------------------------------------------


async def respond_hit(
    request: web.Request, rt: Runtime, provider: Provider, stream: bool, body: Json | None, hit: Hit
) -> web.StreamResponse:
    """The cached answer in the form the client asked for: JSON, or this API's SSE."""
    if not stream:
        return json_hit(rt, provider, hit)
    _count_hit(rt, provider, hit)
    resp = web.StreamResponse(headers={**dict(SSE_HEADERS), **_hit_headers(hit)})
    await resp.prepare(request)
    sent = 0
    for chunk in provider.replay(hit.entry.response, body or {}):
        await resp.write(chunk)
        sent += len(chunk)
    await resp.write_eof()
    rt.metrics.add(rt.metrics.response_bytes, (provider.name, "hit"), sent)
    return resp


def json_hit(rt: Runtime, provider: Provider, hit: Hit) -> web.Response:
    _count_hit(rt, provider, hit)
    payload = hit.entry.encoded()
    rt.metrics.add(rt.metrics.response_bytes, (provider.name, "hit"), len(payload))
    if hit.score is None:
        return web.Response(body=payload, headers=_JSON_HIT_HEADERS[hit.layer])  # aiohttp copies
    return web.Response(body=payload, headers={**_hit_headers(hit), **_JSON})


def _hit_headers(hit: Hit) -> dict[str, str]:
    headers = {"x-llmcache": "hit", "x-llmcache-layer": hit.layer}
    if hit.score is not None:
        headers["x-llmcache-similarity"] = f"{hit.score:.4f}"
    return headers


def _count_hit(rt: Runtime, provider: Provider, hit: Hit) -> None:
    rt.stats.hits += 1
    if hit.layer in rt.stats.layer_hits:
        rt.stats.layer_hits[hit.layer] += 1
    _account_hit(rt, provider, hit.entry)


# -- 4. and 5. upstream ---------------------------------------------------------------------------


async def call_upstream(
    request: web.Request,
    rt: Runtime,
    client: Client,
    provider: Provider,
    family: str,
    req: CacheRequest,
    raw: bytes,
) -> tuple[web.StreamResponse, Entry | None]:
    """Make the upstream call for a miss; return the client's response and the stored entry."""
    changed = provider.upstream_body(req.body)
    data = raw if changed is None else json.dumps(changed).encode()
    url = rt.upstream(family) + _tail(request, family)
    headers = request_headers(request.headers)
    call = tracing.upstream_call(provider.name, req.model, url, headers)  # None: not traced
    batching = rt.policy.batching
    inputs = None
    if batching.mode == "batch" and provider.name == "openai.embeddings":
        inputs = EmbeddingBatcher.inputs(req.body, batching.max_size)
    t0 = time.perf_counter()
    resp: web.StreamResponse
    payload: bytes | None
    try:
        if inputs is not None:
            reply = await rt.batcher.call(
                client, url, headers, req.body, inputs, batching.window_ms, batching.max_size
            )
            status, payload = reply.status, reply.payload
            resp = web.Response(status=status, body=payload, headers=reply.headers)
            resp.headers["x-llmcache"] = "miss"
            response = _json_object(payload) if status == 200 else None
        else:
            async with send(client, request.method, url, data, headers) as up:
                status = up.status
                resp, response, payload = await _exchange(request, rt, up, provider, req)
    except UPSTREAM_ERRORS as exc:
        # Never sent again: the upstream may have read it and be generating (and billing).
        tracing.upstream_done(call, error=describe(exc))
        rt.stats.errors += 1
        return api_error(family, 502, "api_error", f"upstream call failed: {describe(exc)}"), None
    elapsed = time.perf_counter() - t0
    rt.metrics.upstream_duration.observe((provider.name, STATUS_CLASS[status // 100]), elapsed)
    if response is None:
        tracing.upstream_done(call, status)
        return resp, None
    usage = _usage(provider, response)
    tracing.upstream_done(call, status, usage)
    _account_spent(rt, provider.name, req.model, usage)
    reason = provider.unstorable_reason(response, req.body)
    if reason is not None:
        rt.metrics.child(rt.metrics.bypasses, provider.name, f"unstorable_{reason}").inc()
        return resp, None
    entry = Entry(
        # Stored and served as the upstream sent it; an assembled stream as compact JSON.
        # Only the bytes are kept: parsed objects would make every garbage-collector pass
        # walk the whole cache (the object comes back, parsed, when a replay needs it).
        body=payload if payload is not None else orjson.dumps(response),
        model=req.model,
        created=(now := time.time()),
        expires=now + req.ttl,
        tags=req.tags,
        usage=usage,
    )
    if req.store:
        for layer in rt.layers:
            await layer.put(req, entry)
    return resp, entry


async def _exchange(
    request: web.Request, rt: Runtime, up: Response, provider: Provider, req: CacheRequest
) -> tuple[web.StreamResponse, Json | None, bytes | None]:
    """The client's response and, for a success, the complete response object (and its
    bytes, when the upstream sent it whole)."""
    extra = (("x-llmcache", "miss"),)
    ok = 200 <= up.status < 300
    if ok and up.content_type == "text/event-stream":
        resp, response = await _relay_stream(request, rt, up, provider, req, extra)
        return resp, response, None
    payload = await up.read()
    rt.metrics.add(rt.metrics.response_bytes, (provider.name, "miss"), len(payload))
    resp = web.Response(status=up.status, body=payload, headers=response_headers(up, extra))
    response = _json_object(payload) if ok else None
    return resp, response, payload if response is not None else None


async def _relay_stream(
    request: web.Request,
    rt: Runtime,
    up: Response,
    provider: Provider,
    req: CacheRequest,
    extra: tuple[tuple[str, str], ...],
) -> tuple[web.StreamResponse, Json | None]:
    """Forward each event as it completes, assembling the answer on the side."""
    resp = web.StreamResponse(status=up.status, headers=response_headers(up, extra))
    await resp.prepare(request)
    parser = SSEParser()
    assembler = provider.assembler(req.body)
    sent = 0
    try:
        async for chunk in up.content.iter_any():
            out = [raw for event, data, raw in parser.feed(chunk) if assembler.feed(event, data)]
            if out:
                block = b"".join(out)
                await resp.write(block)
                sent += len(block)
    except UPSTREAM_ERRORS as exc:
        # Cut the client's connection too: ending the stream cleanly would make a
        # truncated answer look complete.
        log.info("upstream stream interrupted: %s", describe(exc))
        rt.metrics.response_bytes.labels(provider.name, "miss").inc(sent)
        if request.transport is not None:
            request.transport.abort()
        return resp, None
    rest = parser.remainder()  # an unterminated last event still reaches the client
    if rest:
        await resp.write(rest)
        sent += len(rest)
    await resp.write_eof()
    rt.metrics.response_bytes.labels(provider.name, "miss").inc(sent)
    return resp, assembler.result()


async def forward(
    request: web.Request,
    rt: Runtime,
    client: Client,
    family: str,
    raw: bytes | None,
    label: str,
    provider: Provider | None = None,
    body: Json | None = None,
) -> web.StreamResponse:
    """Pass a request through untouched, streaming the answer back as it comes."""
    if raw is None:
        raw = await request.read()
    url = rt.upstream(family) + _tail(request, family)
    model = provider.model(body or {}) if provider is not None else None
    headers = request_headers(request.headers)
    route = provider.name if provider is not None else family
    call = tracing.upstream_call(route, model, url, headers, request.method)  # None: not traced
    resp: web.StreamResponse | None = None
    try:
        async with send(client, request.method, url, raw, headers) as up:
            resp = web.StreamResponse(
                status=up.status, headers=response_headers(up, (("x-llmcache", label),))
            )
            await resp.prepare(request)
            payload = bytearray() if provider is not None and up.status == 200 else None
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
                if payload is not None and up.content_type == "application/json":
                    payload += chunk
            await resp.write_eof()
    except UPSTREAM_ERRORS as exc:
        tracing.upstream_done(call, error=describe(exc))
        if resp is not None and resp.prepared:  # cut mid-answer: cut the client's too
            log.info("upstream answer interrupted: %s", describe(exc))
            if request.transport is not None:
                request.transport.abort()
            return resp
        return api_error(family, 502, "api_error", f"upstream call failed: {describe(exc)}")
    usage = None
    if provider is not None and model is not None and payload:
        response = _json_object(bytes(payload))
        if response is not None:
            usage = _usage(provider, response)
            _account_spent(rt, provider.name, model, usage)
    tracing.upstream_done(call, up.status, usage)
    return resp


# -- accounting --------------------------------------------------------------------------------


def _usage(provider: Provider, response: Json) -> Usage:
    try:
        return provider.usage(response)
    except Exception:  # an odd response must not fail the request over accounting
        return Usage()


def _account_hit(rt: Runtime, provider: Provider, entry: Entry) -> None:
    """What a hit saved; priced once per entry and price table, counted in plain sums."""
    if entry.usage is None:
        entry.usage = _usage(provider, entry.response)
    u = entry.usage
    if u.cache_write:  # a repeated call would have read the provider's warm prompt cache
        u = Usage(u.input, u.output, u.cache_read + u.cache_write, 0)
    prices = rt.policy.prices
    if entry.priced is None or entry.priced[0] is not prices:
        m, route, model = rt.metrics, provider.name, entry.model
        usd = cost_usd(price_for(model, prices), u.input, u.output, u.cache_read, u.cache_write)
        increments: list[tuple[tuple[Any, tuple[str, ...]], float]] = [
            ((m.tokens_saved, (route, model, kind)), n) for kind, n in _kinds(u) if n
        ]
        increments.append(((m.usd_saved, (route, model)), usd))
        tokens = u.input + u.output + u.cache_read + u.cache_write
        entry.priced = (prices, usd, tokens, tuple(increments))
    _, usd, tokens, counts = entry.priced
    rt.metrics.add_all(counts)
    rt.stats.saved_usd += usd
    rt.stats.tokens_saved += tokens


def _account_spent(rt: Runtime, route: str, model: str, usage: Usage) -> None:
    """Tokens and list-price USD an upstream call cost."""
    price = price_for(model, rt.policy.prices)
    usd = cost_usd(price, usage.input, usage.output, usage.cache_read, usage.cache_write)
    _count_tokens(rt, rt.metrics.tokens_spent, route, model, usage)
    rt.metrics.add(rt.metrics.usd_spent, (route, model), usd)
    rt.stats.spent_usd += usd


def _count_tokens(rt: Runtime, counter: Any, route: str, model: str, usage: Usage) -> None:
    for kind, n in _kinds(usage):
        if n:
            rt.metrics.add(counter, (route, model, kind), n)


def _kinds(u: Usage) -> tuple[tuple[str, int], ...]:
    return (
        ("input", u.input),
        ("output", u.output),
        ("cache_read", u.cache_read),
        ("cache_write", u.cache_write),
    )


def _observe(rt: Runtime, route: str, result: str, layer: str, started: float) -> None:
    m = rt.metrics
    m.add(m.requests, (route, result, layer))
    m.request_duration.observe((route, result), time.perf_counter() - started)


def _tail(request: web.Request, family: str) -> str:
    """``/anthropic/v1/messages?x`` → ``/v1/messages?x`` (the target was checked on entry)."""
    return upstream_tail(request, "/" + family)


def _json_object(payload: bytes) -> Json | None:
    try:
        doc = orjson.loads(payload)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
