"""``llmcache embedder``: one copy of the local model serving many sidecars over an
OpenAI-compatible ``POST /v1/embeddings``; concurrent requests share model calls."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .local import LocalEmbedder

EMBEDDER = web.AppKey("embedder", LocalEmbedder)
MAX_INPUTS = 2048


def create_app(
    window_ms: float = 2.0, max_batch: int = 64, cache_size: int = 10_000
) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)

    async def lifecycle(app: web.Application) -> Any:
        app[EMBEDDER] = LocalEmbedder(window_ms, max_batch, cache_size)
        yield
        await app[EMBEDDER].close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_post("/embeddings", _embeddings)
    app.router.add_get("/healthz", _healthz)
    return app


def _error(status: int, message: str) -> web.Response:
    doc = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    return web.json_response(doc, status=status)


async def _embeddings(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return _error(400, "request body is not valid JSON")
    raw = body.get("input") if isinstance(body, dict) else None
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return _error(400, "`input` must be a non-empty string or list of strings")
    if len(texts) > MAX_INPUTS:
        return _error(400, f"at most {MAX_INPUTS} inputs per request")
    embedder = request.app[EMBEDDER]
    rows = await embedder.embed(texts)
    tokens = sum(len(t.split()) for t in texts)
    doc = {
        "object": "list",
        "model": embedder.model,
        "data": [
            {"object": "embedding", "index": i, "embedding": [float(x) for x in row]}
            for i, row in enumerate(rows)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return web.json_response(doc)


async def _healthz(request: web.Request) -> web.Response:
    embedder = request.app[EMBEDDER]
    return web.json_response({"status": "ok", "model": embedder.model, "threads": embedder.threads})
