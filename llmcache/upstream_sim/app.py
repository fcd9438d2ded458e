"""The simulator's aiohttp application: routing, auth, fault injection, JSON, counters."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import anthropic_api, embeddings, models, openai_chat, openai_responses
from .errors import ApiError, anthropic_error, openai_error
from .runtime import SimOptions, SimState
from .sse import StreamCut
from .text import VARIANT, VARIANT_HEADERS

STATE_KEY = web.AppKey("state", SimState)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BodyHandler = Callable[[web.Request, SimState, Any], Awaitable[web.StreamResponse]]


def _is_anthropic(request: web.Request) -> bool:
    if request.path.startswith("/v1/messages"):
        return True
    return models.is_anthropic(request)


def _error(request: web.Request, err: ApiError) -> web.Response:
    if _is_anthropic(request):
        return anthropic_error(err.status, err.message)
    return openai_error(err.status, err.message, err.param, err.code)


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    if route.resource is None or isinstance(request.match_info.http_exception, Exception):
        return "unmatched"
    return f"{request.method} {route.resource.canonical}"


def _check_auth(request: web.Request) -> None:
    bearer = request.headers.get("authorization", "")
    has_bearer = bearer.lower().startswith("bearer ") and bool(bearer[7:].strip())
    if _is_anthropic(request):
        if not (request.headers.get("x-api-key") or has_bearer):
            raise ApiError(401, "x-api-key header is required")
        if request.path.startswith("/v1/messages") and "anthropic-version" not in request.headers:
            raise ApiError(400, "anthropic-version: header is required")
    elif not has_bearer:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="",
        )


def _injected_status(request: web.Request) -> int | None:
    raw = request.headers.get("x-sim-status")
    if raw is None:
        return None
    try:
        status = int(raw)
    except ValueError:
        return None
    return status if 400 <= status <= 599 else None


@web.middleware
async def _gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_sim/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    state.requests[_route_name(request)] += 1
    if "traceparent" in request.headers:
        state.traceparents.append(request.headers["traceparent"])
    try:
        _check_auth(request)
        status = _injected_status(request)
        if status is not None:
            raise ApiError(status, "")
        return await handler(request)
    except ApiError as err:
        if not err.message:
            return (
                anthropic_error(err.status) if _is_anthropic(request) else openai_error(err.status)
            )
        return _error(request, err)
    except web.HTTPNotFound:
        if _is_anthropic(request):
            return anthropic_error(404, "Not Found")
        return openai_error(404, f"Invalid URL ({request.method} {request.path})", code="")
    except web.HTTPMethodNotAllowed:
        return _error(request, ApiError(405, f"Method {request.method} not allowed", code=""))
    except StreamCut:
        return web.Response(status=499)  # never reaches the client: its connection is gone
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        # A body of the wrong shape somewhere deep: the real APIs answer 400, not 500.
        return _error(request, ApiError(400, f"Invalid request: {err!r}", code=""))


def _with_body(fn: BodyHandler) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                400,
                "There was an error parsing the body of your request: invalid JSON",
                code="",
            ) from None
        VARIANT.set(variant(request))  # this request's task only
        return await fn(request, request.app[STATE_KEY], body)

    return handler


def variant(request: web.Request) -> bytes:
    """What besides the body selects a different answer: see ``text.VARIANT_HEADERS``.
    Empty for the plain SDK call, so answers without a variant stay what they were."""
    found = [(name, request.headers[name]) for name in VARIANT_HEADERS if name in request.headers]
    if request.query_string:
        found.append(("?", request.query_string))
    return json.dumps(found).encode() if found else b""


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response(
        {"requests": dict(state.requests), "total": sum(state.requests.values())}
    )


async def _traceparents(request: web.Request) -> web.Response:
    return web.json_response({"traceparents": list(request.app[STATE_KEY].traceparents)})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"reset": True})


async def _get_response(request: web.Request) -> web.StreamResponse:
    return await openai_responses.get_response(request, request.app[STATE_KEY])


def create_app(**options: Any) -> web.Application:
    """The simulator as an aiohttp application; ``options`` are ``SimOptions`` fields."""
    app = web.Application(middlewares=[_gateway], client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = SimState(SimOptions(**options))
    app.router.add_post("/v1/messages", _with_body(anthropic_api.create_message))
    app.router.add_post("/v1/messages/count_tokens", _with_body(anthropic_api.count_tokens))
    app.router.add_post("/v1/chat/completions", _with_body(openai_chat.create_chat_completion))
    app.router.add_post("/v1/responses", _with_body(openai_responses.create_response))
    app.router.add_get("/v1/responses/{response_id}", _get_response)
    app.router.add_post("/v1/embeddings", _with_body(embeddings.create_embeddings))
    app.router.add_get("/v1/models", models.list_models)
    app.router.add_get("/v1/models/{model_id}", models.get_model)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_get("/_sim/traceparents", _traceparents)
    app.router.add_post("/_sim/reset", _reset)
    return app
