"""OpenAI Responses API: ``POST /v1/responses`` and ``GET /v1/responses/{id}``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .errors import OPENAI_MESSAGES, ApiError, request_id
from .openai_common import IGNORED, Answer, answer, new_id, positive_int, render, text_of
from .runtime import Pace, SimState, credential_scope
from .sse import SSE, StreamCut
from .text import dumps, fingerprint, obj

_ARG_CHARS = 12


def _validate(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if not isinstance(raw.get("model"), str) or not raw["model"]:
        raise ApiError(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    if not isinstance(raw.get("input", ""), str | list):
        raise ApiError(
            400,
            "Invalid type for 'input': expected a string or an array.",
            param="input",
            code="invalid_type",
        )
    limit = raw.get("max_output_tokens")
    if limit is not None and isinstance(limit, int) and limit < 16:
        raise ApiError(
            400,
            "Invalid 'max_output_tokens': integer below minimum value. "
            f"Expected a value >= 16, but got {limit} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    return raw


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value or [])


def _last_user_text(items: list[Any]) -> str:
    for item in reversed(items):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            return ""  # the model answers the tool's result
        if item.get("role") == "user":
            return text_of(item.get("content"))
    return ""


def _context(state: SimState, body: dict[str, Any]) -> list[Any]:
    """Earlier turns when chained with ``previous_response_id``."""
    previous = body.get("previous_response_id")
    if previous is None:
        return []
    stored = state.responses.get(str(previous))
    if stored is None:
        raise ApiError(
            400,
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return [*stored["_input"], *stored["output"]]  # type: ignore[misc]


def _output_items(a: Answer, item_ids: list[str], status: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if a.reasoning_tokens:
        items.append({"id": item_ids[0], "type": "reasoning", "summary": []})
    if a.tool_call is not None:
        call = a.tool_call
        items.append(
            {
                "id": item_ids[1],
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments,
                "call_id": call.call_id,
                "name": call.name,
            }
        )
    elif a.text_tokens or not a.reasoning_tokens:
        items.append(
            {
                "id": item_ids[1],
                "type": "message",
                "status": status,
                "content": [_part(a.text)],
                "role": "assistant",
            }
        )
    return items


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _usage(prompt: int, cached: int, a: Answer) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": a.reasoning_tokens},
        "total_tokens": prompt + a.output_tokens,
    }


def _response(
    body: dict[str, Any],
    rid: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    reasoning = obj(body.get("reasoning"))
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": bool(body.get("background", False)),
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


async def _stream(
    request: web.Request,
    state: SimState,
    body: dict[str, Any],
    a: Answer,
    final: dict[str, Any],
    item_ids: list[str],
    pace: Pace,
) -> web.StreamResponse:
    sse = await SSE.open(request, {"x-request-id": request_id()}, state.options.stream_fault_after)
    seq = 0

    async def emit(kind: str, payload: dict[str, Any]) -> None:
        nonlocal seq
        await sse.event(kind, {"type": kind, **payload, "sequence_number": seq})
        seq += 1

    async def fault() -> bool:
        kind = sse.fault_due()
        if kind == "disconnect":
            await sse.cut()
        if kind == "error":
            failed = {
                **shell,
                "status": "failed",
                "error": {
                    "code": "server_error",
                    "message": OPENAI_MESSAGES[500],
                },
            }
            await emit("response.failed", {"response": failed})
            return True
        return False

    shell = _response(body, final["id"], final["created_at"], "in_progress", [], None)
    await emit("response.created", {"response": shell})
    await emit("response.in_progress", {"response": shell})
    done = a.reasoning_tokens
    for index, item in enumerate(final["output"]):
        if item["type"] == "reasoning":
            await emit("response.output_item.added", {"output_index": index, "item": item})
            await pace.wait(done - 1)
            await emit("response.output_item.done", {"output_index": index, "item": item})
        elif item["type"] == "function_call":
            await emit(
                "response.output_item.added",
                {"output_index": index, "item": {**item, "arguments": "", "status": "in_progress"}},
            )
            for i in range(0, len(item["arguments"]), _ARG_CHARS):
                done += 1
                await pace.wait(done - 1)
                if await fault():
                    return await sse.finish()
                await emit(
                    "response.function_call_arguments.delta",
                    {
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": item["arguments"][i : i + _ARG_CHARS],
                    },
                )
            await emit(
                "response.function_call_arguments.done",
                {
                    "item_id": item["id"],
                    "output_index": index,
                    "name": item["name"],
                    "arguments": item["arguments"],
                },
            )
            await emit("response.output_item.done", {"output_index": index, "item": item})
        else:
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            await emit(
                "response.output_item.added",
                {"output_index": index, "item": {**item, "status": "in_progress", "content": []}},
            )
            await emit("response.content_part.added", {**ids, "part": _part("")})
            for token in a.text_tokens:
                done += 1
                await pace.wait(done - 1)
                if await fault():
                    return await sse.finish()
                await emit("response.output_text.delta", {**ids, "delta": token, "logprobs": []})
            await emit("response.output_text.done", {**ids, "text": a.text, "logprobs": []})
            await emit("response.content_part.done", {**ids, "part": _part(a.text)})
            await emit("response.output_item.done", {"output_index": index, "item": item})
    terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
    await emit(terminal, {"response": final})
    return await sse.finish()


async def create_response(request: web.Request, state: SimState, raw: Any) -> web.StreamResponse:
    body = _validate(raw)
    model = str(body["model"])
    items = _items(body.get("input"))
    context = _context(state, body)
    instructions = body.get("instructions")
    parts: list[Any] = [*(body.get("tools") or [])]
    if instructions:
        parts.append({"role": "developer", "content": instructions})
    rendered, prompt_tokens = render([*parts, *context, *items])
    cached = state.openai_cache.account(credential_scope(request), model, rendered, prompt_tokens)
    seed = fingerprint({**body, "previous_response_id": context}, IGNORED)
    effort = obj(body.get("reasoning")).get("effort")
    a = answer(
        seed,
        model,
        prompt_tokens,
        _last_user_text(items),
        body.get("tools"),
        body.get("tool_choice"),
        positive_int(body, "max_output_tokens"),
        [],
        effort if isinstance(effort, str) else None,
    )
    status = "incomplete" if a.truncated else "completed"
    item_ids = [new_id("rs_"), new_id("fc_" if a.tool_call else "msg_")]
    rid = new_id("resp_")
    final = _response(
        body,
        rid,
        int(time.time()),
        status,
        _output_items(a, item_ids, status),
        _usage(prompt_tokens, cached, a),
    )
    if body.get("store", True) is not False:
        state.remember_response({**final, "_input": [*context, *items]})
    pace = state.latency.pace(request)
    if body.get("stream") is True:
        return await _stream(request, state, body, a, final, item_ids, pace)
    await pace.wait(max(a.output_tokens - 1, 0))
    if request.headers.get("x-sim-stream-fault", "").lower() == "disconnect":
        if request.transport is not None:
            request.transport.abort()
        raise StreamCut
    return web.Response(
        text=dumps(final), content_type="application/json", headers={"x-request-id": request_id()}
    )


async def get_response(request: web.Request, state: SimState) -> web.Response:
    stored = state.responses.get(request.match_info["response_id"])
    if stored is None:
        raise ApiError(
            404,
            f"Response with id '{request.match_info['response_id']}' not found.",
            param="response_id",
            code=None,
        )
    public = {k: v for k, v in stored.items() if not k.startswith("_")}
    return web.Response(text=dumps(public), content_type="application/json")
