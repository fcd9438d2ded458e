"""OpenAI Embeddings (``POST /v1/embeddings``): deterministic, never streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import Json, Usage
from .common import as_int, drop_fields, dumps

#: Fields that never change the answer (see docs/cache-key.md). `encoding_format` stays: it
#: changes the response (the openai SDK asks for base64 unless told otherwise).
DROP = frozenset({"user"})


def input_count(value: Any) -> int:
    """How many vectors the request asks for: one per string or token array."""
    if isinstance(value, str):
        return 1
    if isinstance(value, list) and value and all(isinstance(t, int) for t in value):
        return 1  # one input given as token ids
    return len(value) if isinstance(value, list) else 0


def matches_inputs(data: list[Any], count: int) -> bool:
    """``data`` holds exactly one embedding for each of ``count`` inputs: indexes 0..count-1,
    each once. Anything else is an upstream error, never split among callers or stored."""
    indexes: list[int] = []
    for item in data:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            return False
        indexes.append(index)
    return sorted(indexes) == list(range(count))


class _NoStream:
    """Embeddings have no stream; a stray SSE body is never assembled into an entry."""

    def feed(self, event: str | None, data: str) -> bool:
        return True

    def result(self) -> Json | None:
        return None


class OpenAIEmbeddings:
    name = "openai.embeddings"
    streams = False

    def uncacheable_reason(self, body: Json) -> str | None:
        return None

    def live_tools(self, body: Json) -> tuple[str, ...]:
        return ()

    def key_material(self, body: Json) -> Json:
        return drop_fields(body, DROP)

    def model(self, body: Json) -> str:
        model = body.get("model")
        return model if isinstance(model, str) else ""

    def temperature(self, body: Json) -> float | None:
        return None

    def is_stream(self, body: Json) -> bool:
        return False

    def upstream_body(self, body: Json) -> Json | None:
        return None

    def assembler(self, body: Json) -> _NoStream:
        return _NoStream()

    def unstorable_reason(self, response: Json, body: Json) -> str | None:
        data = response.get("data")
        if response.get("object") != "list" or not isinstance(data, list):
            return "malformed"
        if not matches_inputs(data, input_count(body.get("input"))):
            return "shape_mismatch"  # another input's vector could be served as this one's
        return None

    def replay(self, response: Json, body: Json) -> Iterator[bytes]:
        yield dumps(response).encode()  # never streamed: the JSON body itself

    def replay_variant(self, body: Json) -> str:
        return ""

    def usage(self, response: Json) -> Usage:
        u = response.get("usage") or {}
        return Usage(input=as_int(u.get("prompt_tokens")))
