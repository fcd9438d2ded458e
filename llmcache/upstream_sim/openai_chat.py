"""OpenAI Chat Completions: ``POST /v1/chat/completions``."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from .errors import ApiError, openai_error_body, request_id
from .openai_common import (
    IGNORED,
    Answer,
    answer,
    fingerprint_id,
    new_id,
    positive_int,
    render,
    stops_of,
    text_of,
)
from .runtime import Pace, SimState, credential_scope
from .sse import SSE, StreamCut
from .text import dumps, fingerprint, obj

_ARG_CHARS = 12  # characters of tool-call arguments per streamed chunk


def _validate(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if not isinstance(raw.get("model"), str) or not raw["model"]:
        raise ApiError(
            400,
            "you must provide a model parameter",
            param="model",
            code="missing_required_parameter",
        )
    messages = raw.get("messages")
    if not isinstance(messages, list):
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not messages:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ):
            raise ApiError(
                400,
                f"Invalid value for 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
    temperature = raw.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise ApiError(
            400,
            "Invalid 'temperature': decimal above maximum value. "
            f"Expected a value <= 2, but got {temperature} instead.",
            param="temperature",
            code="decimal_above_max_value",
        )
    return raw


def _last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body["messages"]):
        if m.get("role") in ("tool", "function"):
            return ""  # the model answers the tool's result
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def _finish_reason(a: Answer) -> str:
    if a.tool_call is not None:
        return "tool_calls"
    return "length" if a.truncated else "stop"


def _message(a: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if a.tool_call else a.text,
        "refusal": None,
        "annotations": [],
    }
    if a.tool_call is not None:
        message["tool_calls"] = [
            {
                "id": a.tool_call.call_id,
                "type": "function",
                "function": {"name": a.tool_call.name, "arguments": a.tool_call.arguments},
            }
        ]
    return message


def _usage(prompt: int, cached: int, answers: list[Answer]) -> dict[str, Any]:
    completion = sum(a.output_tokens for a in answers)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": sum(a.reasoning_tokens for a in answers),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


async def _stream(
    request: web.Request,
    state: SimState,
    body: dict[str, Any],
    answers: list[Answer],
    usage: dict[str, Any],
    pace: Pace,
    rid: str,
) -> web.StreamResponse:
    sse = await SSE.open(request, {"x-request-id": rid}, state.options.stream_fault_after)
    options = obj(body.get("stream_options"))
    include_usage = bool(options.get("include_usage"))
    obfuscate = options.get("include_obfuscation", True) is not False
    base = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
        "service_tier": "default",
        "system_fingerprint": fingerprint_id(body["model"]),
    }

    async def chunk(
        index: int, delta: dict[str, Any], finish: str | None = None, pad: bool = False
    ) -> None:
        data = {
            **base,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if include_usage:
            data["usage"] = None
        if pad and obfuscate:
            data["obfuscation"] = secrets.token_urlsafe(6)[: 1 + secrets.randbelow(8)]
        await sse.event(None, data)

    async def fault() -> bool:
        kind = sse.fault_due()
        if kind == "disconnect":
            await sse.cut()
        if kind == "error":
            await sse.event(None, openai_error_body(500))
            return True
        return False

    done = 0
    for index, a in enumerate(answers):
        done += a.reasoning_tokens
        if a.tool_call is not None:
            call = a.tool_call
            await chunk(
                index,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call.call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ],
                    "refusal": None,
                },
            )
            for i in range(0, len(call.arguments), _ARG_CHARS):
                piece = call.arguments[i : i + _ARG_CHARS]
                done += 1
                await pace.wait(done - 1)
                if await fault():
                    return await sse.finish()
                await chunk(
                    index,
                    {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                    pad=True,
                )
        else:
            await chunk(index, {"role": "assistant", "content": "", "refusal": None}, pad=True)
            for token in a.text_tokens:
                done += 1
                await pace.wait(done - 1)
                if await fault():
                    return await sse.finish()
                await chunk(index, {"content": token}, pad=True)
        await chunk(index, {}, _finish_reason(a), pad=True)
    if include_usage:
        await sse.event(
            None,
            {
                **base,
                "choices": [],
                "usage": usage,
                **({"obfuscation": secrets.token_urlsafe(6)} if obfuscate else {}),
            },
        )
    await sse.event(None, "[DONE]")
    return await sse.finish()


async def create_chat_completion(
    request: web.Request, state: SimState, raw: Any
) -> web.StreamResponse:
    body = _validate(raw)
    model = str(body["model"])
    n = positive_int(body, "n") or 1
    max_tokens = positive_int(body, "max_completion_tokens", "max_tokens")
    rendered, prompt_tokens = render([*(body.get("tools") or []), *body["messages"]])
    cached = state.openai_cache.account(credential_scope(request), model, rendered, prompt_tokens)
    seed = fingerprint(body, IGNORED)
    effort = body.get("reasoning_effort")
    answers = [
        answer(
            seed,
            model,
            prompt_tokens,
            _last_user_text(body),
            body.get("tools"),
            body.get("tool_choice"),
            max_tokens,
            stops_of(body.get("stop")),
            effort if isinstance(effort, str) else None,
            label="text" if i == 0 else f"choice{i}",
        )
        for i in range(n)
    ]
    usage = _usage(prompt_tokens, cached, answers)
    pace = state.latency.pace(request)
    rid = request_id()
    if body.get("stream") is True:
        return await _stream(request, state, body, answers, usage, pace, rid)
    await pace.wait(max(sum(a.output_tokens for a in answers) - 1, 0))
    if request.headers.get("x-sim-stream-fault", "").lower() == "disconnect":
        if request.transport is not None:
            request.transport.abort()
        raise StreamCut
    completion = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": _message(a),
                "logprobs": None,
                "finish_reason": _finish_reason(a),
            }
            for i, a in enumerate(answers)
        ],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": fingerprint_id(model),
    }
    return web.Response(
        text=dumps(completion), content_type="application/json", headers={"x-request-id": rid}
    )
