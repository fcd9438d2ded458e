"""OpenAI Responses API (``POST /v1/responses``), stateless requests only.

Wire format: named events whose data carries the same ``type`` and an increasing
``sequence_number``: ``response.created``, ``response.in_progress``, per output item
``response.output_item.added`` … ``response.output_item.done`` (with content-part and delta
events in between), then one terminal event: ``response.completed`` (the whole response),
``response.incomplete`` or ``response.failed``; ``error`` aborts. There is no ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import Json, Usage
from .common import (
    DEFAULT_TEMPERATURE,
    OPENAI_DROP,
    SamplingRequest,
    as_int,
    drop_fields,
    dumps,
    loads_object,
    pieces,
    versioned,
    without_key,
)
from .sse import encode

#: Fields that never change the answer (see docs/cache-key.md).
DROP = OPENAI_DROP

#: Hosted tools whose answers depend on the time or on server-side state, or act on the
#: world: web search (every ``web_search*`` version), file search over a vector store that
#: can change, remote MCP servers, code run in a container, and the shell in a hosted
#: container. Function, custom, computer, local shell and apply-patch tools are run by the
#: caller; image generation depends on the request only.
LIVE_TOOLS = ("web_search", "file_search", "mcp", "code_interpreter")
_HOSTED_SHELL = frozenset({"container_auto", "container_reference"})

BREAKPOINT = "prompt_cache_breakpoint"
_TEXT_ROLES = frozenset({"user", "system", "developer"})


class OpenAIResponses(SamplingRequest):
    name = "openai.responses"
    streams = True

    def uncacheable_reason(self, body: Json) -> str | None:
        # `store` defaults to true server-side, but the SDKs omit it: only an explicit
        # `store: true` says the caller relies on the stored response (docs/cache-key.md).
        if body.get("store") is True:
            return "stateful_store"
        if body.get("previous_response_id") is not None:
            return "stateful_previous_response"
        if body.get("conversation") is not None:
            return "stateful_conversation"
        if body.get("background") is True:
            return "background"
        prompt = body.get("prompt")
        if isinstance(prompt, dict) and prompt.get("version") is None:
            return "unpinned_prompt"  # the template's latest version can change any time
        return None

    def live_tools(self, body: Json) -> tuple[str, ...]:
        found: list[str] = []
        tools = body.get("tools")
        for tool in tools if isinstance(tools, list) else ():
            kind = tool.get("type") if isinstance(tool, dict) else None
            if not isinstance(kind, str):
                continue
            found += [name for name in LIVE_TOOLS if versioned(kind, name)]
            env = tool.get("environment")
            if kind == "shell" and isinstance(env, dict) and env.get("type") in _HOSTED_SHELL:
                found.append("shell")
        return tuple(dict.fromkeys(found))

    def key_material(self, body: Json) -> Json:
        material = drop_fields(body, DROP)
        if material.get("temperature") == DEFAULT_TEMPERATURE:
            del material["temperature"]
        if "input" in material:
            material["input"] = _canonical_input(material["input"])
        return material

    def upstream_body(self, body: Json) -> Json | None:
        return None  # usage always arrives with response.completed

    def assembler(self, body: Json) -> ResponseAssembler:
        return ResponseAssembler()

    def unstorable_reason(self, response: Json, body: Json) -> str | None:
        if response.get("object") != "response":
            return "malformed"
        status = response.get("status")
        if response.get("error"):
            return "error"
        if status == "incomplete" or response.get("incomplete_details"):
            return "truncated"
        if status != "completed":
            return "incomplete"
        for item in response.get("output") or []:
            if item.get("type") == "message":
                if item.get("status") not in (None, "completed"):
                    return "truncated"
                for part in item.get("content") or []:
                    if part.get("type") == "refusal":
                        return "refused"
        return None

    def replay(self, response: Json, body: Json) -> Iterator[bytes]:
        return replay_response(response)

    def replay_variant(self, body: Json) -> str:
        return ""

    def usage(self, response: Json) -> Usage:
        u = response.get("usage") or {}
        details = u.get("input_tokens_details") or {}
        cached = as_int(details.get("cached_tokens"))
        written = as_int(details.get("cache_write_tokens"))
        return Usage(
            input=max(as_int(u.get("input_tokens")) - cached - written, 0),
            output=as_int(u.get("output_tokens")),
            cache_read=cached,
            cache_write=written,
        )


def _canonical_input(value: Any) -> Any:
    """Strip prompt-cache breakpoints; a lone user text message is the same as a string."""
    if not isinstance(value, list):
        return value
    out: list[Any] | None = None
    for i, item in enumerate(value):
        new = item
        if isinstance(item, dict):
            content = item.get("content")
            if isinstance(content, list):
                stripped = without_key(content, BREAKPOINT)
                if (
                    item.get("role") in _TEXT_ROLES
                    and len(stripped) == 1
                    and isinstance(stripped[0], dict)
                    and len(stripped[0]) == 2
                    and stripped[0].get("type") == "input_text"
                    and isinstance(stripped[0].get("text"), str)
                ):
                    stripped = stripped[0]["text"]
                if stripped is not content:
                    new = {**item, "content": stripped}
            if new.get("type") == "message" and "role" in new and "id" not in new:
                new = {k: v for k, v in new.items() if k != "type"}  # the default item type
        if new is not item and out is None:
            out = value[:i]
        if out is not None:
            out.append(new)
    items = value if out is None else out
    if len(items) == 1 and isinstance(items[0], dict) and items[0].keys() == {"role", "content"}:
        only = items[0]
        if only["role"] == "user" and isinstance(only["content"], str):
            return only["content"]  # `input: "text"` is one user message
    return items


# -- assembling a live stream ---------------------------------------------------------------

_TERMINAL_OK = frozenset({"response.completed", "response.incomplete"})
_FAILED = frozenset({"response.failed", "error"})


class ResponseAssembler:
    """The final response arrives whole in ``response.completed``; the output items seen in
    ``response.output_item.done`` fill in for a completed event that omits them."""

    __slots__ = ("_broken", "_items", "_result")

    def __init__(self) -> None:
        self._items: dict[int, Json] = {}
        self._result: Json | None = None
        self._broken = False

    def feed(self, event: str | None, data: str) -> bool:
        if not data or self._broken or self._result is not None:
            return True
        doc = loads_object(data)
        if doc is None:
            self._broken = True
            return True
        kind = doc.get("type") or event
        if kind == "response.output_item.done":
            item, index = doc.get("item"), doc.get("output_index")
            if isinstance(item, dict) and isinstance(index, int):
                self._items[index] = item
        elif kind in _TERMINAL_OK:
            response = doc.get("response")
            if not isinstance(response, dict):
                self._broken = True
            elif response.get("output") is None:
                self._result = {**response, "output": [self._items[i] for i in sorted(self._items)]}
            else:
                self._result = response
        elif kind in _FAILED:
            self._broken = True
        return True

    def result(self) -> Json | None:
        return None if self._broken else self._result


# -- replaying a cached response ------------------------------------------------------------


class _Seq:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def event(self, kind: str, payload: Json) -> bytes:
        body = {"type": kind, **payload, "sequence_number": self.n}
        self.n += 1
        return encode(kind, dumps(body))


def replay_response(response: Json) -> Iterator[bytes]:
    seq = _Seq()
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    for key in ("completed_at", "incomplete_details", "error"):
        if key in pending:
            pending[key] = None
    yield seq.event("response.created", {"response": pending})
    yield seq.event("response.in_progress", {"response": pending})
    for index, item in enumerate(response.get("output") or []):
        yield from _replay_item(seq, index, item)
    yield seq.event("response.completed", {"response": response})


def _replay_item(seq: _Seq, index: int, item: Json) -> Iterator[bytes]:
    kind = item.get("type")
    item_id = item.get("id", "")
    where = {"item_id": item_id, "output_index": index}
    if kind == "message":
        yield seq.event(
            "response.output_item.added",
            {"output_index": index, "item": {**item, "status": "in_progress", "content": []}},
        )
        for c, part in enumerate(item.get("content") or []):
            yield from _replay_part(seq, {**where, "content_index": c}, part)
    elif kind == "function_call":
        added = {**item, "status": "in_progress", "arguments": ""}
        yield seq.event("response.output_item.added", {"output_index": index, "item": added})
        args = item.get("arguments") or ""
        for piece in pieces(args):
            yield seq.event("response.function_call_arguments.delta", {**where, "delta": piece})
        yield seq.event("response.function_call_arguments.done", {**where, "arguments": args})
    elif kind == "reasoning":
        added = {**item, "summary": []}
        if "content" in added:
            added["content"] = []
        yield seq.event("response.output_item.added", {"output_index": index, "item": added})
        for s, summary in enumerate(item.get("summary") or []):
            text = summary.get("text", "")
            at = {**where, "summary_index": s}
            yield seq.event(
                "response.reasoning_summary_part.added",
                {**at, "part": {"type": "summary_text", "text": ""}},
            )
            for piece in pieces(text):
                yield seq.event("response.reasoning_summary_text.delta", {**at, "delta": piece})
            yield seq.event("response.reasoning_summary_text.done", {**at, "text": text})
            yield seq.event("response.reasoning_summary_part.done", {**at, "part": summary})
    else:
        yield seq.event("response.output_item.added", {"output_index": index, "item": item})
    yield seq.event("response.output_item.done", {"output_index": index, "item": item})


def _replay_part(seq: _Seq, where: Json, part: Json) -> Iterator[bytes]:
    kind = part.get("type")
    if kind == "output_text":
        text = part.get("text", "")
        empty = {**part, "text": "", "annotations": []}
        if "logprobs" in empty:
            empty["logprobs"] = []
        yield seq.event("response.content_part.added", {**where, "part": empty})
        for piece in pieces(text):
            yield seq.event("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
        logprobs = part.get("logprobs") or []
        yield seq.event("response.output_text.done", {**where, "text": text, "logprobs": logprobs})
    elif kind == "refusal":
        text = part.get("refusal", "")
        yield seq.event("response.content_part.added", {**where, "part": {**part, "refusal": ""}})
        for piece in pieces(text):
            yield seq.event("response.refusal.delta", {**where, "delta": piece})
        yield seq.event("response.refusal.done", {**where, "refusal": text})
    else:
        yield seq.event("response.content_part.added", {**where, "part": part})
    yield seq.event("response.content_part.done", {**where, "part": part})
