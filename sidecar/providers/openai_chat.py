"""OpenAI Chat Completions (``POST /v1/chat/completions``).

Wire format: a stream is ``data: {chat.completion.chunk}`` lines (no ``event:`` names) ending
in ``data: [DONE]``; with ``stream_options.include_usage`` one extra chunk with empty
``choices`` carries the usage just before ``[DONE]``, and every other chunk has
``"usage": null``. The sidecar always asks for that usage chunk upstream (an entry without
usage could not be priced or replayed to a client that wants it) and hides it from clients
that did not ask.
"""

from __future__ import annotations

import re
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
    without_key,
)
from .sse import encode

#: Fields that never change the answer (see docs/cache-key.md).
DROP = OPENAI_DROP | {"store"}

#: finish_reason values whose answer is not a complete one.
UNSTORABLE = {"length": "truncated", "content_filter": "content_filter"}

#: Chat models that always search the web (gpt-4o-search-preview, gpt-5-search-api, ...).
SEARCH_MODEL = re.compile(r"-search-(preview|api)")

DONE = b"data: [DONE]\n\n"
BREAKPOINT = "prompt_cache_breakpoint"


class OpenAIChat(SamplingRequest):
    name = "openai.chat"
    streams = True

    def uncacheable_reason(self, body: Json) -> str | None:
        modalities = body.get("modalities")
        if isinstance(modalities, list) and "audio" in modalities:
            # Audio answers reference server-side audio by id, with an expiry.
            return "audio_output"
        return None

    def live_tools(self, body: Json) -> tuple[str, ...]:
        # The search models search the web on every request, options or not.
        model = self.model(body)
        if body.get("web_search_options") is not None or SEARCH_MODEL.search(model):
            return ("web_search",)
        return ()

    def key_material(self, body: Json) -> Json:
        material = drop_fields(body, DROP)
        if material.get("temperature") == DEFAULT_TEMPERATURE:
            del material["temperature"]
        stop = material.get("stop")
        if isinstance(stop, str):
            material["stop"] = [stop]
        messages = material.get("messages")
        if isinstance(messages, list):
            material["messages"] = _canonical_messages(messages)
        return material

    def upstream_body(self, body: Json) -> Json | None:
        if body.get("stream") is not True or _wants_usage(body):
            return None
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        return {**body, "stream_options": options}

    def assembler(self, body: Json) -> ChatAssembler:
        return ChatAssembler(forward_usage=_wants_usage(body))

    def unstorable_reason(self, response: Json, body: Json) -> str | None:
        if response.get("object") != "chat.completion":
            return "malformed"
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices:
            return "malformed"
        for choice in choices:
            finish = choice.get("finish_reason")
            if finish is None:
                return "incomplete"
            if finish in UNSTORABLE:
                return UNSTORABLE[finish]
            if (choice.get("message") or {}).get("refusal"):
                return "refused"
        return None

    def replay(self, response: Json, body: Json) -> Iterator[bytes]:
        return replay_completion(response, include_usage=_wants_usage(body))

    def replay_variant(self, body: Json) -> str:
        return "usage" if _wants_usage(body) else ""

    def usage(self, response: Json) -> Usage:
        u = response.get("usage") or {}
        details = u.get("prompt_tokens_details") or {}
        cached = as_int(details.get("cached_tokens"))
        written = as_int(details.get("cache_write_tokens"))
        return Usage(
            input=max(as_int(u.get("prompt_tokens")) - cached - written, 0),
            output=as_int(u.get("completion_tokens")),
            cache_read=cached,
            cache_write=written,
        )


def _wants_usage(body: Json) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _canonical_messages(messages: list[Any]) -> list[Any]:
    """Prompt-cache breakpoints stripped; a content list of exactly one text part is the same
    prompt as that string. The same list object when nothing changes."""
    out: list[Any] | None = None
    for i, message in enumerate(messages):
        new = message
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, list):
                parts = without_key(content, BREAKPOINT)
                if (
                    len(parts) == 1
                    and isinstance(parts[0], dict)
                    and len(parts[0]) == 2
                    and parts[0].get("type") == "text"
                    and isinstance(parts[0].get("text"), str)
                ):
                    parts = parts[0]["text"]
                if parts is not content:
                    new = {**message, "content": parts}
        if new is not message and out is None:
            out = messages[:i]
        if out is not None:
            out.append(new)
    return messages if out is None else out


# -- assembling a live stream ---------------------------------------------------------------


class _Choice:
    __slots__ = (
        "annotations",
        "content",
        "finish",
        "function_call",
        "logprobs",
        "refusal",
        "role",
        "tool_calls",
    )  # fmt: skip

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, Json] = {}
        self.function_call: Json | None = None
        self.finish: str | None = None
        self.logprobs: Json | None = None
        self.annotations: list[Any] | None = None


class ChatAssembler:
    """Merges chunk deltas into the ``chat.completion`` object the API returns unstreamed."""

    __slots__ = ("_broken", "_choices", "_done", "_forward_usage", "_head", "_usage")

    def __init__(self, forward_usage: bool) -> None:
        self._forward_usage = forward_usage
        self._head: Json | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: Json | None = None
        self._done = False
        self._broken = False

    def feed(self, event: str | None, data: str) -> bool:
        if not data or self._done:
            return True
        if data == "[DONE]":
            self._done = True
            return True
        chunk = loads_object(data)
        if chunk is None or chunk.get("error"):
            self._broken = True
            return True
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = usage
        if self._head is None or (choices and not self._head.get("choices")):
            self._head = chunk  # not Azure's id-less prompt_filter_results chunk
        else:
            for key in ("system_fingerprint", "service_tier"):
                if chunk.get(key) is not None:
                    self._head[key] = chunk[key]
        if not choices:
            # The usage-only chunk: forwarded only to clients that asked for it.
            return self._forward_usage or usage is None
        try:
            for delta_choice in choices:
                self._merge(delta_choice)
        except (KeyError, TypeError, ValueError, AttributeError):
            self._broken = True
        return True

    def _merge(self, c: Json) -> None:
        choice = self._choices.get(c["index"])
        if choice is None:
            choice = self._choices[c["index"]] = _Choice()
        delta = c.get("delta") or {}
        for key, value in delta.items():
            if value is None or key == "obfuscation":
                continue
            if key == "role":
                choice.role = value
            elif key == "content":
                choice.content = [*(choice.content or []), value]
            elif key == "refusal":
                choice.refusal = [*(choice.refusal or []), value]
            elif key == "tool_calls":
                for call in value:
                    _merge_call(choice.tool_calls, call)
            elif key == "function_call":
                fc = choice.function_call = choice.function_call or {"name": "", "arguments": ""}
                fc["name"] += value.get("name") or ""
                fc["arguments"] += value.get("arguments") or ""
            elif key == "annotations":
                choice.annotations = [*(choice.annotations or []), *value]
            else:
                self._broken = True  # e.g. audio deltas: better a miss than a wrong entry
        logprobs = c.get("logprobs")
        if logprobs:
            merged = choice.logprobs = choice.logprobs or {}
            for key, value in logprobs.items():
                if isinstance(value, list):
                    merged[key] = [*(merged.get(key) or []), *value]
                elif key not in merged:
                    merged[key] = value
        if c.get("finish_reason") is not None:
            choice.finish = c["finish_reason"]

    def result(self) -> Json | None:
        if not self._done or self._broken or self._head is None:
            return None
        head = self._head
        choices = []
        for index in sorted(self._choices):
            ch = self._choices[index]
            message: Json = {
                "role": ch.role,
                "content": "".join(ch.content) if ch.content is not None else None,
                "refusal": "".join(ch.refusal) if ch.refusal is not None else None,
            }
            if ch.annotations is not None:
                message["annotations"] = ch.annotations
            if ch.tool_calls:
                message["tool_calls"] = [ch.tool_calls[i] for i in sorted(ch.tool_calls)]
            if ch.function_call is not None:
                message["function_call"] = ch.function_call
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": ch.logprobs,
                    "finish_reason": ch.finish,
                }
            )
        out: Json = {
            "id": head.get("id"),
            "object": "chat.completion",
            "created": head.get("created"),
            "model": head.get("model"),
            "choices": choices,
            "usage": self._usage,
        }
        for key in ("service_tier", "system_fingerprint"):
            if key in head:
                out[key] = head[key]
        return out


def _merge_call(calls: dict[int, Json], delta: Json) -> None:
    index = delta["index"]
    call = calls.get(index)
    fn = delta.get("function") or {}
    if call is None:
        calls[index] = {
            "id": delta.get("id"),
            "type": delta.get("type") or "function",
            "function": {"name": fn.get("name") or "", "arguments": fn.get("arguments") or ""},
        }
        return
    if delta.get("id"):
        call["id"] = delta["id"]
    call["function"]["name"] += fn.get("name") or ""
    call["function"]["arguments"] += fn.get("arguments") or ""


# -- replaying a cached completion ----------------------------------------------------------


def replay_completion(response: Json, include_usage: bool) -> Iterator[bytes]:
    head: Json = {
        "id": response.get("id"),
        "object": "chat.completion.chunk",
        "created": response.get("created"),
        "model": response.get("model"),
    }
    for key in ("service_tier", "system_fingerprint"):
        if key in response:
            head[key] = response[key]
    tail = {"usage": None} if include_usage else {}

    def chunk(index: int, delta: Json, finish: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return encode(None, dumps({**head, "choices": [choice], **tail}))

    for choice in response.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        first: Json = {"role": message.get("role", "assistant"), "content": "", "refusal": None}
        content = message.get("content")
        calls = message.get("tool_calls") or []
        if content is None:
            first["content"] = None
        text = pieces(content) if isinstance(content, str) and content else []
        if text:
            first["content"] = text.pop(0)
        if message.get("annotations"):
            first["annotations"] = message["annotations"]
        yield chunk(index, first, logprobs=choice.get("logprobs"))
        for part in text:
            yield chunk(index, {"content": part})
        if message.get("refusal"):
            for part in pieces(message["refusal"]):
                yield chunk(index, {"refusal": part})
        for n, call in enumerate(calls):
            fn = call.get("function") or {}
            args = pieces(fn.get("arguments") or "")
            opening = {
                "index": n,
                "id": call.get("id"),
                "type": call.get("type", "function"),
                "function": {"name": fn.get("name", ""), "arguments": args[0]},
            }
            yield chunk(index, {"tool_calls": [opening]})
            for part in args[1:]:
                yield chunk(index, {"tool_calls": [{"index": n, "function": {"arguments": part}}]})
        if message.get("function_call"):
            yield chunk(index, {"function_call": message["function_call"]})
        yield chunk(index, {}, finish=choice.get("finish_reason"))
    if include_usage:
        yield encode(None, dumps({**head, "choices": [], "usage": response.get("usage")}))
    yield DONE
