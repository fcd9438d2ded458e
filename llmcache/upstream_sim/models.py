"""``GET /v1/models``: Anthropic's list shape when ``anthropic-version`` is sent, else OpenAI's."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import ApiError
from .prices import PRICES
from .text import dumps

_ANTHROPIC = {
    "claude-opus-4-6": ("Claude Opus 4.6", "2026-02-05T00:00:00Z"),
    "claude-sonnet-4-6": ("Claude Sonnet 4.6", "2026-02-17T00:00:00Z"),
    "claude-opus-4-5-20251101": ("Claude Opus 4.5", "2025-11-24T00:00:00Z"),
    "claude-sonnet-4-5-20250929": ("Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    "claude-haiku-4-5-20251001": ("Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
}
_OPENAI_CREATED = 1_700_000_000


def _anthropic_model(model_id: str) -> dict[str, Any]:
    name, created = _ANTHROPIC[model_id]
    return {"type": "model", "id": model_id, "display_name": name, "created_at": created}


def _openai_models() -> list[dict[str, Any]]:
    return [
        {"id": name, "object": "model", "created": _OPENAI_CREATED, "owned_by": "system"}
        for name in PRICES
        if not name.startswith("claude")
    ]


def is_anthropic(request: web.Request) -> bool:
    return "anthropic-version" in request.headers


async def list_models(request: web.Request) -> web.Response:
    if is_anthropic(request):
        data = [_anthropic_model(m) for m in _ANTHROPIC]
        body: dict[str, Any] = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
        }
    else:
        body = {"object": "list", "data": _openai_models()}
    return web.Response(text=dumps(body), content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    if is_anthropic(request):
        match = next((m for m in _ANTHROPIC if m == model_id or m.startswith(model_id + "-")), None)
        if match is None:
            raise ApiError(404, f"model: {model_id}")
        return web.Response(text=dumps(_anthropic_model(match)), content_type="application/json")
    found = next((m for m in _openai_models() if m["id"] == model_id), None)
    if found is None:
        raise ApiError(
            404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
        )
    return web.Response(text=dumps(found), content_type="application/json")
