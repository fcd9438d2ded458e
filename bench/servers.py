"""The floors the sidecar is measured against, each a tiny aiohttp process.

``bare``: reads the request and returns a fixed body (what aiohttp itself costs).
``dict``: the same plus a SHA-256 of the body and a dict lookup (the cheapest possible cache).
``proxy``: a minimal pass-through proxy to an upstream (the floor of the miss path); with
``--redis-url``, the minimal cache in front of it: redis-py ``GET sha256(body)`` before the
call and ``SET`` (with a TTL) after it, so the sidecar's shared-L2 miss has a floor too.
``otlp``: an OTLP/HTTP traces endpoint (``POST /v1/traces``) that counts the spans it
receives (``GET /spans``): where the tracing rows' sidecars export.

Run: ``python -m llmcache.bench.servers bare --listen 127.0.0.1:0 --body-file F``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from llmcache import serving

FORWARDED = ("content-type", "x-api-key", "anthropic-version", "authorization")


def bare_app(body: bytes) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def dict_app(body: bytes) -> web.Application:
    table: dict[str, bytes] = {}

    async def handle(request: web.Request) -> web.Response:
        key = hashlib.sha256(await request.read()).hexdigest()
        found = table.get(key)
        if found is None:
            found = table[key] = body
        return web.Response(body=found, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def proxy_app(upstream: str, redis_url: str | None = None) -> web.Application:
    session_key = web.AppKey("session", ClientSession)
    redis_key = web.AppKey("redis", aioredis.Redis)
    base = upstream.rstrip("/")

    async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
        connector = TCPConnector(limit=0, keepalive_timeout=60)
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=300)) as s:
            app[session_key] = s
            if redis_url:
                app[redis_key] = aioredis.Redis.from_url(redis_url)
            yield
            if redis_url:
                await app[redis_key].aclose()

    async def handle(request: web.Request) -> web.Response:
        data = await request.read()
        redis, key = request.app.get(redis_key), hashlib.sha256(data).hexdigest()
        if redis is not None and (cached := await redis.get(key)) is not None:
            return web.Response(body=cached, content_type="application/json")
        headers = {k: v for k in FORWARDED if (v := request.headers.get(k)) is not None}
        tail = request.match_info["tail"]
        async with request.app[session_key].request(
            request.method, f"{base}/{tail}", data=data, headers=headers
        ) as up:
            payload = await up.read()
        if redis is not None and up.status == 200:
            await redis.set(key, payload, ex=3600)
        return web.Response(
            status=up.status, body=payload, headers={"content-type": up.content_type}
        )

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def otlp_app() -> web.Application:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received = {"spans": 0, "exports": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        received["exports"] += 1
        received["bytes"] += len(body)
        received["spans"] += sum(
            len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans
        )
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def spans(request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/spans", spans)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["bare", "dict", "proxy", "otlp"])
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--body-file", help="the fixed response body (bare, dict)")
    parser.add_argument("--upstream", help="base URL to forward to (proxy)")
    parser.add_argument("--redis-url", help="look up and store answers in Redis (proxy)")
    args = parser.parse_args()
    body = Path(args.body_file).read_bytes() if args.body_file else b'{"ok":true}'
    if args.kind == "proxy":
        if not args.upstream:
            parser.error("proxy needs --upstream")
        app = proxy_app(args.upstream, args.redis_url)
    elif args.kind == "otlp":
        app = otlp_app()
    else:
        app = bare_app(body) if args.kind == "bare" else dict_app(body)
    serving.run(serving.serve(app, args.listen, backlog=1024))


if __name__ == "__main__":
    main()
