"""The sidecar's HTTP surface: API routes, pass-through, and the operational endpoints."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from llmcache import serving
from llmcache.policy import CachePolicySpec

from . import pipeline, rag, tracing
from .http_client import Client
from .layers import Selector
from .metrics import Metrics
from .providers import PROVIDERS
from .providers.base import Provider
from .runtime import Runtime, Settings
from .target import BadTarget
from .target import check as check_target
from .upstream import api_error, new_client

RUNTIME = web.AppKey("runtime", Runtime)
CLIENT = web.AppKey("client", Client)

# (path, provider, API family): the family names the upstream and the error shape.
API_ROUTES = (
    ("/anthropic/v1/messages", "anthropic.messages", "anthropic"),
    ("/openai/v1/chat/completions", "openai.chat", "openai"),
    ("/openai/v1/responses", "openai.responses", "openai"),
    ("/openai/v1/embeddings", "openai.embeddings", "openai"),
)


def create_app(
    settings: Settings,
    spec: CachePolicySpec,
    metrics: Metrics | None = None,
    limits: serving.Limits | None = None,
) -> web.Application:
    runtime = Runtime(settings, spec, metrics or Metrics())
    # The body limit is the policy's, checked per request; aiohttp's own must not cut first.
    app = web.Application(client_max_size=1 << 30)
    app[RUNTIME] = runtime
    app[serving.BODY_TIMEOUT] = (limits or serving.Limits()).body_timeout
    for path, name, family in API_ROUTES:
        app.router.add_post(path, _api_handler(PROVIDERS[name], family))
    for family in ("anthropic", "openai"):
        app.router.add_route("*", f"/{family}/{{tail:.*}}", partial(_passthrough, family=family))
    app.router.add_post("/admin/flush", _flush)
    rag.add_routes(app, RUNTIME, CLIENT)  # /rag/<name>/...: the vector-store query cache
    add_operational_routes(app)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    app.cleanup_ctx.append(_lifecycle)
    return app


def create_admin_app(runtime: Runtime) -> web.Application:
    """Probes and metrics only, for a listener reachable from outside the pod."""
    app = web.Application()
    app[RUNTIME] = runtime
    add_operational_routes(app)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


def add_operational_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/stats", _stats)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)


async def _lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
    runtime = app[RUNTIME]
    await runtime.start()
    client = app[CLIENT] = new_client()
    yield
    await client.close()
    await runtime.close()


def _api_handler(
    provider: Provider, family: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def api(request: web.Request) -> web.StreamResponse:
        app = request.app
        rt = app[RUNTIME]
        if rt.tracing.tracer is None:  # tracing off: this check is all it costs
            return await pipeline.handle(request, rt, app[CLIENT], provider, family)
        handling = pipeline.handle(request, rt, app[CLIENT], provider, family)
        return await tracing.serve(rt, request, provider.name, handling)

    return api


async def _passthrough(request: web.Request, family: str) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    if rt.tracing.tracer is None:
        return await _pass(request, rt, family)
    return await tracing.serve(rt, request, family, _pass(request, rt, family))


async def _pass(request: web.Request, rt: Runtime, family: str) -> web.StreamResponse:
    rt.stats.requests += 1
    try:
        check_target(request)
    except BadTarget as exc:
        rt.stats.errors += 1
        return api_error(family, 400, "invalid_request_error", str(exc))
    try:  # bounded like the API routes' bodies: in size (decoded) and in time
        raw = await pipeline.read_body(request, rt.policy.limits.max_body_bytes)
    except pipeline.BadRequest as exc:
        rt.stats.errors += 1
        return api_error(family, exc.status, exc.kind, str(exc))
    rt.stats.bypasses += 1
    rt.metrics.bypasses.labels(family, "route_not_cached").inc()
    rt.metrics.requests.labels(family, "bypass", "none").inc()
    return await pipeline.forward(request, rt, request.app[CLIENT], family, raw, "bypass")


async def _flush(request: web.Request) -> web.Response:
    try:
        raw = await pipeline.read_body(request, request.app[RUNTIME].policy.limits.max_body_bytes)
    except pipeline.BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    try:
        doc = json.loads(raw) if raw else {}
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
        selector = Selector.from_json(doc)
    except ValueError as exc:
        return web.json_response(
            {"error": f"flush body must be {{tagsAny, tagsAll, model}} JSON: {exc}"}, status=400
        )
    removed = await request.app[RUNTIME].flush(selector)
    return web.json_response({"removed": removed})


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[RUNTIME].metrics
    metrics.fold()
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME].stats_json())


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "policyGeneration": request.app[RUNTIME].generation})


async def _readyz(request: web.Request) -> web.Response:
    """Ready as soon as it serves: exact hits and misses need nothing loaded. The semantic
    index fills from Redis in the background; ``loading`` names the layers still at it."""
    rt = request.app[RUNTIME]
    loading = [layer.name for layer in rt.extra_layers if not getattr(layer, "loaded", True)]
    return web.json_response(
        {"status": "ok", "policyGeneration": rt.generation, "loading": loading}
    )


async def _not_found(request: web.Request) -> web.Response:
    """Anything unrouted: JSON that says what exists (registered last, so it catches all)."""
    known = ", ".join(path for path, _, _ in API_ROUTES)
    return web.json_response(
        {
            "error": {
                "message": f"llmcache: no route for {request.method} {request.path} (llmcache "
                f"serves {known}, /anthropic/*, /openai/*, /rag/<name>/*, /metrics, /stats)",
                "type": "not_found_error",
            }
        },
        status=404,
        headers={"x-llmcache": "bypass"},
    )
