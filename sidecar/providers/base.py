"""What the sidecar needs to know about one upstream API, and nothing else.

A provider turns a request body into cache-key material, says whether the request may be
cached, assembles a streamed answer into the one response object the API would have
returned without streaming, says whether that object may be cached, and replays a cached
object as that API's SSE event sequence. Entries are always stored as the non-streaming
response object, whichever form filled the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one answer, split the way prices are: provider-side prompt-cache reads and
    writes are billed differently from plain input tokens."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0


class Assembler(Protocol):
    """Fed every SSE event of a live upstream stream, in order."""

    def feed(self, event: str | None, data: str) -> bool:
        """Take one event; return whether it is forwarded to the client (the sidecar may
        ask upstream for more than the client did, e.g. OpenAI's usage chunk)."""

    def result(self) -> Json | None:
        """The assembled response object once the terminal event arrived, else ``None``."""


class Provider(Protocol):
    name: str  # "anthropic.messages", "openai.chat", "openai.responses", "openai.embeddings"
    streams: bool  # whether the API supports ``stream: true`` at all

    def uncacheable_reason(self, body: Json) -> str | None:
        """Why this request may never be cached (stateful, background, n>1, ...), or None."""

    def live_tools(self, body: Json) -> tuple[str, ...]:
        """Server tools the request offers whose answers depend on the time or act on the
        world (web search, code execution, MCP), by name (``web_search``, ...): cached for
        a TTL they would be stale or skip a side effect, so they bypass unless the policy's
        ``cacheability.cacheLiveTools`` names them."""

    def key_material(self, body: Json) -> Json:
        """Only the fields that change the answer, canonicalised (no ``stream``,
        ``metadata.user_id``, ``prompt_cache_key``, ...)."""

    def model(self, body: Json) -> str: ...

    def temperature(self, body: Json) -> float | None:
        """Effective sampling temperature (the API default when omitted), None if N/A."""

    def is_stream(self, body: Json) -> bool: ...

    def upstream_body(self, body: Json) -> Json | None:
        """The body to send upstream when it must differ from the client's, else None."""

    def assembler(self, body: Json) -> Assembler: ...

    def unstorable_reason(self, response: Json, body: Json) -> str | None:
        """Why a successful response to ``body`` must not be stored (truncated, refused,
        incomplete, or not the shape the request asked for)."""

    def replay(self, response: Json, body: Json) -> Iterator[bytes]:
        """The cached response as this API's SSE byte stream, honouring the client's
        request (e.g. ``stream_options.include_usage``)."""

    def replay_variant(self, body: Json) -> str:
        """The only part of ``body`` that ``replay`` depends on, as a short string: equal
        variants give byte-identical replays, so the bytes may be memoised per entry."""

    def usage(self, response: Json) -> Usage: ...
