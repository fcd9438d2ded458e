"""Anthropic Messages API (``POST /v1/messages``).

Wire format: a stream is ``message_start``, per content block ``content_block_start`` /
``content_block_delta``* / ``content_block_stop``, then ``message_delta`` (stop reason and
cumulative usage) and ``message_stop``; ``ping`` may come anywhere, ``error`` ends a failed
stream. Every event carries an ``event:`` name, which the SDK requires.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .base import Json, Usage
from .common import (
    DEFAULT_TEMPERATURE,
    SamplingRequest,
    as_int,
    drop_fields,
    dumps,
    loads_object,
    pieces,
    tool_types,
    versioned,
    without_key,
)
from .sse import encode

#: Fields that never change the answer (see docs/cache-key.md).
DROP = frozenset({"stream", "metadata", "cache_control", "user_profile_id"})

#: Server tools (``type`` without its date) whose answers depend on the time or act on the
#: world, and their names in ``live_tool_<name>``. Client tools (bash, text editor, computer,
#: memory) are run by the caller, whose results arrive in the next request's key.
LIVE_TOOLS = {
    "web_search": "web_search",
    "web_fetch": "web_fetch",
    "code_execution": "code_execution",
    "mcp_toolset": "mcp",
}

#: Stop reasons whose answer is not a complete one.
UNSTORABLE = {
    "max_tokens": "truncated",
    "model_context_window_exceeded": "truncated",
    "refusal": "refused",
    "pause_turn": "pause_turn",
}

CACHE_CONTROL = "cache_control"


class AnthropicMessages(SamplingRequest):
    name = "anthropic.messages"
    streams = True

    def uncacheable_reason(self, body: Json) -> str | None:
        if body.get("container") is not None:
            return "stateful_container"  # code-execution state lives in the container
        if body.get("thread") is not None:
            return "stateful_thread"  # beta: the conversation is held server-side
        return None

    def live_tools(self, body: Json) -> tuple[str, ...]:
        found = [
            name
            for kind in tool_types(body)
            for base, name in LIVE_TOOLS.items()
            if versioned(kind, base)
        ]
        if body.get("mcp_servers"):
            found.append("mcp")  # remote MCP servers the API calls during the turn
        return tuple(dict.fromkeys(found))

    def key_material(self, body: Json) -> Json:
        material = drop_fields(body, DROP)
        if material.get("temperature") == DEFAULT_TEMPERATURE:
            del material["temperature"]
        messages = body.get("messages")
        if isinstance(messages, list):
            material["messages"] = _canonical_messages(messages)
        if "system" in material:
            material["system"] = _canonical_content(material["system"])
        if "tools" in material:
            material["tools"] = without_key(material["tools"], CACHE_CONTROL)
        return material

    def upstream_body(self, body: Json) -> Json | None:
        return None

    def assembler(self, body: Json) -> MessageAssembler:
        return MessageAssembler()

    def unstorable_reason(self, response: Json, body: Json) -> str | None:
        if response.get("type") != "message":
            return "error" if response.get("type") == "error" else "malformed"
        stop = response.get("stop_reason")
        if stop is None:
            return "incomplete"
        return UNSTORABLE.get(stop)

    def replay(self, response: Json, body: Json) -> Iterator[bytes]:
        return replay_message(response)

    def replay_variant(self, body: Json) -> str:
        return ""

    def usage(self, response: Json) -> Usage:
        u = response.get("usage") or {}
        return Usage(
            input=as_int(u.get("input_tokens")),
            output=as_int(u.get("output_tokens")),
            cache_read=as_int(u.get("cache_read_input_tokens")),
            cache_write=as_int(u.get("cache_creation_input_tokens")),
        )


# -- key material ---------------------------------------------------------------------------


def _canonical_messages(messages: list[Any]) -> list[Any]:
    """Messages with ``cache_control`` markers stripped and one-text-block contents as the
    equivalent string; the same list object when nothing changes."""
    out: list[Any] | None = None
    for i, message in enumerate(messages):
        new = message
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, list):
                canon = _canonical_content(content)
                if canon is not content:
                    new = {**message, "content": canon}
        if new is not message and out is None:
            out = messages[:i]
        if out is not None:
            out.append(new)
    return messages if out is None else out


def _canonical_content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    blocks = without_key(content, CACHE_CONTROL)
    nested: list[Any] | None = None
    for i, block in enumerate(blocks):
        # tool_result blocks carry their own content blocks, which may be marked too.
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            stripped = without_key(inner, CACHE_CONTROL)
            if stripped is not inner:
                if nested is None:
                    nested = list(blocks)
                nested[i] = {**block, "content": stripped}
    if nested is not None:
        blocks = nested
    if len(blocks) == 1:
        block = blocks[0]
        if (
            isinstance(block, dict)
            and block.get("type") == "text"
            and len(block) == 2
            and isinstance(block.get("text"), str)
        ):
            return block["text"]  # the documented shorthand: a string is one text block
    return blocks


# -- assembling a live stream ---------------------------------------------------------------


class MessageAssembler:
    """Rebuilds the Message object from the stream, block by block, as the SDK does."""

    __slots__ = ("_blocks", "_broken", "_done", "_json", "_message")

    def __init__(self) -> None:
        self._message: Json | None = None
        self._blocks: dict[int, Json] = {}
        self._json: dict[int, list[str]] = {}
        self._done = False
        self._broken = False

    def feed(self, event: str | None, data: str) -> bool:
        if not data or self._broken or self._done:
            return True
        kind = event
        if kind == "ping":
            return True
        doc = loads_object(data)
        if doc is None:
            self._broken = True
            return True
        kind = kind or doc.get("type")
        try:
            self._apply(kind, doc)
        except (KeyError, TypeError, ValueError, AttributeError):
            self._broken = True
        return True

    def _apply(self, kind: str | None, doc: Json) -> None:
        if kind == "message_start":
            self._message = dict(doc["message"])
            self._message["usage"] = dict(self._message.get("usage") or {})
            return
        if self._message is None:
            if kind == "error":
                self._broken = True
            return
        if kind == "content_block_start":
            self._blocks[int(doc["index"])] = dict(doc["content_block"])
        elif kind == "content_block_delta":
            self._delta(self._blocks[int(doc["index"])], int(doc["index"]), doc["delta"])
        elif kind == "message_delta":
            self._message.update(doc.get("delta") or {})
            usage = self._message["usage"]
            for key, value in (doc.get("usage") or {}).items():
                if value is not None:
                    usage[key] = value
        elif kind == "message_stop":
            self._done = True
        elif kind == "error":
            self._broken = True
        # content_block_stop and unknown event kinds carry nothing to assemble.

    def _delta(self, block: Json, index: int, delta: Json) -> None:
        kind = delta["type"]
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta["text"]
        elif kind == "input_json_delta":
            self._json.setdefault(index, []).append(delta["partial_json"])
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta["thinking"]
        elif kind == "signature_delta":
            block["signature"] = delta["signature"]
        elif kind == "citations_delta":
            block["citations"] = [*(block.get("citations") or []), delta["citation"]]
        else:
            self._broken = True  # a delta we cannot assemble: better a miss than a wrong entry

    def result(self) -> Json | None:
        if not self._done or self._broken or self._message is None:
            return None
        content = []
        for index in sorted(self._blocks):
            block = self._blocks[index]
            parts = self._json.get(index)
            if parts is not None:
                text = "".join(parts)
                if text:
                    try:
                        block = {**block, "input": json.loads(text)}
                    except ValueError:
                        return None
            content.append(block)
        return {**self._message, "content": content}


# -- replaying a cached message -------------------------------------------------------------

_STOP_KEYS = ("stop_reason", "stop_sequence", "stop_details", "container")
_DELTA_USAGE = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "server_tool_use",
    "output_tokens_details",
)


_TOOL_USE = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def replay_message(message: Json) -> Iterator[bytes]:
    usage = message.get("usage") or {}
    start = {k: v for k, v in message.items() if k not in _STOP_KEYS and k != "content"}
    start.update(content=[], stop_reason=None, stop_sequence=None)
    # As upstream: message_start carries the input side; output_tokens grows until message_delta.
    start["usage"] = {**usage, "output_tokens": min(as_int(usage.get("output_tokens")), 1)}
    yield _event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(message.get("content") or []):
        yield from _replay_block(index, block)
    delta = {k: message.get(k) for k in _STOP_KEYS if k in message}
    delta.setdefault("stop_reason", None)
    delta.setdefault("stop_sequence", None)
    tail_usage = {k: usage[k] for k in _DELTA_USAGE if k in usage}
    tail_usage.setdefault("output_tokens", 0)
    yield _event("message_delta", {"type": "message_delta", "delta": delta, "usage": tail_usage})
    yield _event("message_stop", {"type": "message_stop"})


def _replay_block(index: int, block: Json) -> Iterator[bytes]:
    kind = block.get("type")
    deltas: list[Json] = []
    if kind == "text" and isinstance(block.get("text"), str):
        start = {**block, "text": ""}
        if isinstance(block.get("citations"), list):
            start["citations"] = []  # refilled by citations_delta, as upstream does
        deltas = [{"type": "text_delta", "text": t} for t in pieces(block["text"]) if t]
        deltas += [{"type": "citations_delta", "citation": c} for c in block.get("citations") or []]
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        start = {**block, "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in pieces(block["thinking"])]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind in _TOOL_USE and isinstance(block.get("input"), dict):
        # tool_use, server_tool_use, mcp_tool_use: the input arrives as JSON fragments.
        start = {**block, "input": {}}
        text = dumps(block["input"]) if block["input"] else ""
        deltas = [{"type": "input_json_delta", "partial_json": t} for t in pieces(text)]
    else:
        start = block  # redacted_thinking, *_tool_result, ...: complete in the start event
    yield _event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": start},
    )
    for delta in deltas:
        yield _event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
    yield _event("content_block_stop", {"type": "content_block_stop", "index": index})


def _event(name: str, payload: Json) -> bytes:
    return encode(name, dumps(payload))
