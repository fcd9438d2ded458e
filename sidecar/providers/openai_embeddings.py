"""OpenAI Embeddings (``POST /v1/embeddings``): deterministic, never streamed."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Json, Usage
from .common import as_int, drop_fields, dumps

#: Fields that never change the answer (see docs/cache-key.md). `encoding_format` stays: it
#: changes the response (the openai SDK asks for base64 unless told otherwise).
DROP = frozenset({"user"})


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

    def unstorable_reason(self, response: Json) -> str | None:
        if response.get("object") != "list" or not isinstance(response.get("data"), list):
            return "malformed"
        return None

    def replay(self, response: Json, body: Json) -> Iterator[bytes]:
        yield dumps(response).encode()  # never streamed: the JSON body itself

    def replay_variant(self, body: Json) -> str:
        return ""

    def usage(self, response: Json) -> Usage:
        u = response.get("usage") or {}
        return Usage(input=as_int(u.get("prompt_tokens")))
