"""Anthropic Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``."""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import ApiError, anthropic_error_body, request_id
from .promptcache import AnthropicUsage, Block
from .runtime import Pace, SimState, credential_scope
from .sse import SSE, StreamCut
from .text import (
    Words,
    answer_length,
    canonical,
    cut_at_stop,
    dumps,
    estimate_tokens,
    fingerprint,
    schema_value,
    short_hash,
    strip_key,
)

# Fields that do not change the sampled text (cache_control is stripped everywhere). The
# limits (max_tokens, stop_sequences) only cut that text, as with a real model.
IGNORED = frozenset(
    {
        "stream",
        "metadata",
        "service_tier",
        "cache_control",
        "container",
        "inference_geo",
        "diagnostics",
        "user_profile_id",
        "workspace_id",
        "speed",
        "max_tokens",
        "stop_sequences",
    }
)
_TTL_1H = 3600.0
_TTL_5M = 300.0
_IMAGE_TOKENS = 1600
_PIECE_TOKENS = 3  # tokens per streamed delta


@dataclass
class Piece:
    text: str
    tokens: int


@dataclass
class PlannedBlock:
    kind: str  # "thinking" | "text" | "tool_use"
    pieces: list[Piece] = field(default_factory=list)
    signature: str = ""
    tool_id: str = ""
    tool_name: str = ""
    tool_input: Any = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)


@dataclass
class Plan:
    blocks: list[PlannedBlock]
    stop_reason: str
    stop_sequence: str | None
    usage: AnthropicUsage

    @property
    def output_tokens(self) -> int:
        return max(1, sum(b.tokens for b in self.blocks))


def _validate(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "model: Field required")
    if not isinstance(body.get("messages"), list):
        raise ApiError(400, "messages: Field required")
    if not body["messages"]:
        raise ApiError(400, "messages: at least one message is required")
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ApiError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise ApiError(400, f"messages.{i}.content: Field required")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0.0 <= temperature <= 1.0
    ):
        raise ApiError(400, "temperature: Input should be less than or equal to 1")
    return body


def _validate_create(body: dict[str, Any]) -> None:
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise ApiError(400, "max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise ApiError(400, "thinking.enabled.budget_tokens: Input should be >= 1024")
        if budget >= max_tokens:
            raise ApiError(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return estimate_tokens(block)
    if isinstance(block, dict):
        kind = block.get("type")
        if kind == "text":
            return estimate_tokens(str(block.get("text", "")))
        if kind == "image":
            return _IMAGE_TOKENS
    return estimate_tokens(canonical(strip_key(block, "cache_control")).decode())


def _ttl(block: Any) -> float | None:
    if not isinstance(block, dict):
        return None
    control = block.get("cache_control")
    if not isinstance(control, dict):
        return None
    return _TTL_1H if control.get("ttl") == "1h" else _TTL_5M


def render_blocks(body: dict[str, Any]) -> list[Block]:
    """The prompt as the cache sees it: tools, then system, then message blocks."""
    raw: list[tuple[Any, int]] = []  # (block, overhead tokens)
    for tool in body.get("tools") or []:
        raw.append((tool, 0))
    system = body.get("system")
    if isinstance(system, str) and system:
        raw.append((system, 0))
    elif isinstance(system, list):
        raw.extend((b, 0) for b in system)
    for message in body["messages"]:
        content = message["content"]
        blocks = [content] if isinstance(content, str) else content
        for i, b in enumerate(blocks):
            raw.append((b, 3 if i == 0 else 0))  # a role marker per turn
    blocks_out: list[Block] = []
    digest = hashlib.sha256(str(body["model"]).encode()).digest()
    total = 0
    auto = _ttl(body)  # top-level cache_control: a breakpoint on the last block
    for index, (block, overhead) in enumerate(raw):
        total += overhead + _block_tokens(block)
        digest = hashlib.sha256(digest + canonical(strip_key(block, "cache_control"))).digest()
        ttl = _ttl(block)
        if ttl is None and auto is not None and index == len(raw) - 1:
            ttl = auto
        blocks_out.append(Block(total, digest, ttl))
    return blocks_out


def count_input_tokens(body: dict[str, Any]) -> int:
    blocks = render_blocks(body)
    return max(1, blocks[-1].cumulative_tokens if blocks else 1)


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message.get("role") != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return content
        return " ".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _pick_tool(body: dict[str, Any], seed: bytes) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    if not tools:
        return None
    choice = body.get("tool_choice") or {}
    kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
    if kind == "none":
        return None
    if kind == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if kind == "any" or "use the tool" in _last_user_text(body).lower():
        return tools[seed[1] % len(tools)]
    return None


def _word_pieces(words: list[str]) -> list[Piece]:
    return [
        Piece("".join(words[i : i + _PIECE_TOKENS]), len(words[i : i + _PIECE_TOKENS]))
        for i in range(0, len(words), _PIECE_TOKENS)
    ]


def plan_message(body: dict[str, Any], usage: AnthropicUsage) -> Plan:
    """The whole answer, decided before the first byte goes out."""
    seed = fingerprint(
        strip_key(body, "cache_control", frozenset({"input_schema", "input"})), IGNORED
    )
    budget = int(body["max_tokens"])
    blocks: list[PlannedBlock] = []
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        n = min(24 + seed[2] % 48, budget)
        words = Words(seed, "thinking").take(n)
        signature = base64.b64encode(hashlib.sha512(seed + b"signature").digest() * 3).decode()
        blocks.append(PlannedBlock("thinking", _word_pieces(words), signature=signature))
        budget -= n
    tool = _pick_tool(body, seed)
    forced = isinstance(body.get("tool_choice"), dict) and body["tool_choice"].get("type") in (
        "any",
        "tool",
    )
    input_tokens = (
        usage.input_tokens + usage.cache_read + usage.cache_write_5m + usage.cache_write_1h
    )
    n_text = 8 + seed[3] % 10 if tool is not None else answer_length(seed, input_tokens)
    words = [] if tool is not None and forced else Words(seed, "text").take(n_text)
    words, stop = cut_at_stop(
        words, [s for s in body.get("stop_sequences") or [] if isinstance(s, str)]
    )
    stop_reason = "stop_sequence" if stop is not None else "end_turn"
    if len(words) > budget:
        words, stop_reason, stop, tool = words[:budget], "max_tokens", None, None
    budget -= len(words)
    if words:
        blocks.append(PlannedBlock("text", _word_pieces(words)))
    if tool is not None and stop is None:
        args = schema_value(tool.get("input_schema"), Words(seed, "tool").rng)
        raw = dumps(args)
        tool_tokens = 8 + estimate_tokens(raw)
        if tool_tokens > budget:
            stop_reason = "max_tokens"
        else:
            step = 4 * _PIECE_TOKENS
            pieces = [
                Piece(raw[i : i + step], math.ceil(len(raw[i : i + step]) / 4))
                for i in range(0, len(raw), step)
            ]
            pieces[0].tokens += 8
            blocks.append(
                PlannedBlock(
                    "tool_use",
                    pieces,
                    tool_id="toolu_01" + short_hash(seed, "toolu", 22),
                    tool_name=str(tool.get("name")),
                    tool_input=args,
                )
            )
            stop_reason = "tool_use"
    return Plan(blocks, stop_reason, stop, usage)


def _usage_json(plan: Plan, output_tokens: int) -> dict[str, Any]:
    u = plan.usage
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_5m + u.cache_write_1h,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": u.cache_write_5m,
            "ephemeral_1h_input_tokens": u.cache_write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _block_json(block: PlannedBlock) -> dict[str, Any]:
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    if block.kind == "tool_use":
        return {
            "type": "tool_use",
            "id": block.tool_id,
            "name": block.tool_name,
            "input": block.tool_input,
        }
    return {"type": "text", "text": block.text}


def _start_json(block: PlannedBlock) -> dict[str, Any]:
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if block.kind == "tool_use":
        return {"type": "tool_use", "id": block.tool_id, "name": block.tool_name, "input": {}}
    return {"type": "text", "text": ""}


def _delta_json(block: PlannedBlock, piece: Piece) -> dict[str, Any]:
    if block.kind == "thinking":
        return {"type": "thinking_delta", "thinking": piece.text}
    if block.kind == "tool_use":
        return {"type": "input_json_delta", "partial_json": piece.text}
    return {"type": "text_delta", "text": piece.text}


def message_json(body: dict[str, Any], plan: Plan, message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [_block_json(b) for b in plan.blocks],
        "stop_reason": plan.stop_reason,
        "stop_sequence": plan.stop_sequence,
        "usage": _usage_json(plan, plan.output_tokens),
    }


async def _stream(
    request: web.Request, state: SimState, body: dict[str, Any], plan: Plan, pace: Pace, rid: str
) -> web.StreamResponse:
    sse = await SSE.open(request, {"request-id": rid}, state.options.stream_fault_after)
    start = message_json(body, plan, new_message_id())
    start.update(content=[], stop_reason=None, stop_sequence=None, usage=_usage_json(plan, 1))
    await sse.event("message_start", {"type": "message_start", "message": start})
    done = 0
    for index, block in enumerate(plan.blocks):
        await sse.event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": _start_json(block)},
        )
        if index == 0:
            await sse.event("ping", {"type": "ping"})
        if block.kind == "tool_use":
            await sse.event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": ""},
                },
            )
        for piece in block.pieces:
            done += piece.tokens
            await pace.wait(done - 1)
            fault = sse.fault_due()
            if fault == "disconnect":
                await sse.cut()
            if fault == "error":
                await sse.event("error", anthropic_error_body(529, "Overloaded", rid))
                return await sse.finish()
            await sse.event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": _delta_json(block, piece)},
            )
        if block.kind == "thinking":
            await sse.event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block.signature},
                },
            )
        await sse.event("content_block_stop", {"type": "content_block_stop", "index": index})
    final_usage = _usage_json(plan, plan.output_tokens)
    del final_usage["cache_creation"], final_usage["service_tier"]
    await sse.event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
            "usage": final_usage,
        },
    )
    await sse.event("message_stop", {"type": "message_stop"})
    return await sse.finish()


def new_message_id() -> str:
    return "msg_01" + secrets.token_urlsafe(18).replace("-", "a").replace("_", "b")[:22]


async def create_message(request: web.Request, state: SimState, raw: Any) -> web.StreamResponse:
    body = _validate(raw)
    _validate_create(body)
    blocks = render_blocks(body)
    total = max(1, blocks[-1].cumulative_tokens)
    usage = state.anthropic_cache.account(
        credential_scope(request), str(body["model"]), blocks, total
    )
    plan = plan_message(body, usage)
    pace = state.latency.pace(request)
    rid = request_id("req_011")
    if body.get("stream") is True:
        return await _stream(request, state, body, plan, pace, rid)
    await pace.wait(max(plan.output_tokens - 1, 0))
    if request.headers.get("x-sim-stream-fault", "").lower() == "disconnect":
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise StreamCut
    return web.Response(
        text=dumps(message_json(body, plan, new_message_id())),
        content_type="application/json",
        headers={"request-id": rid},
    )


async def count_tokens(request: web.Request, state: SimState, raw: Any) -> web.Response:
    body = _validate(raw)
    return web.json_response({"input_tokens": count_input_tokens(body)}, dumps=dumps)
