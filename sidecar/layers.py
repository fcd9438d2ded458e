"""The shape every cache layer shares: exact L1/L2, semantic and RAG layers all look up
and store the same ``Entry`` for the same ``CacheRequest``, so the pipeline can walk them
in order without knowing what is behind each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .providers.base import Usage

Json = dict[str, Any]


@dataclass(slots=True)
class CacheRequest:
    """One cacheable request, after policy checks and key derivation."""

    route: str  # provider name, e.g. "anthropic.messages"
    body: Json  # the client's parsed request body
    model: str
    stream: bool
    partition: str  # hex hash of the tenant (credential, namespace or header values)
    key: str  # hex SHA-256 over route, partition and the answer-changing fields
    ttl: int  # seconds
    tags: tuple[str, ...] = ()
    lookup: bool = True  # False for ``cache-control: no-cache`` (refresh) and ``no-store``
    store: bool = True  # False for ``cache-control: no-store``
    extra: dict[str, Any] = field(default_factory=dict)  # per-layer scratch (e.g. embedding)


class Entry:
    """A cached answer: always the API's non-streaming response object.

    Held as the serialised body, parsed only when something needs the object (a streaming
    replay, the semantic layer): a plain hit sends the bytes it was stored with.
    """

    __slots__ = ("_body", "_response", "created", "expires", "model", "priced", "tags", "usage")

    def __init__(
        self,
        response: Json | None = None,
        model: str = "",
        created: float = 0.0,
        tags: tuple[str, ...] = (),
        body: bytes | None = None,
        usage: Usage | None = None,
        expires: float = 0.0,
    ) -> None:
        if response is None and body is None:
            raise ValueError("an entry needs a response or its body")
        self._response, self._body = response, body
        self.model, self.created, self.tags, self.usage = model, created, tags, usage
        # Wall-clock time the entry was stored to expire at (0: unknown), so a copy read from
        # a shared layer never outlives the original (clocks of pods agree to well under 1 s).
        self.expires = expires
        # (price table, USD and tokens a hit saves, the counter increments of a hit)
        self.priced: tuple[object, float, int, tuple[Any, ...]] | None = None

    @property
    def response(self) -> Json:
        if self._response is None:
            self._response = orjson.loads(self.encoded())
        return self._response

    @property
    def body(self) -> bytes | None:
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value

    def encoded(self) -> bytes:
        if self._body is None:
            self._body = orjson.dumps(self._response)
        return self._body


@dataclass(slots=True)
class Hit:
    entry: Entry
    layer: str  # "l1", "l2", "semantic", "rag"
    score: float | None = None  # similarity, for semantic and RAG hits
    expires: float = 0.0  # wall-clock end of the answer's life where it was found (0: none)


@dataclass(frozen=True, slots=True)
class Selector:
    """Which entries a flush removes; an empty selector removes all of the policy's."""

    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    model: str | None = None

    @property
    def everything(self) -> bool:
        return not (self.tags_any or self.tags_all or self.model)

    def matches(self, model: str, tags: tuple[str, ...]) -> bool:
        if self.model is not None and model != self.model:
            return False
        if self.tags_any and not set(self.tags_any) & set(tags):
            return False
        return not (self.tags_all and not set(self.tags_all) <= set(tags))

    def to_json(self) -> Json:
        return {"tagsAny": list(self.tags_any), "tagsAll": list(self.tags_all), "model": self.model}

    @classmethod
    def from_json(cls, data: Json) -> Selector:
        return cls(
            tags_any=tuple(data.get("tagsAny") or ()),
            tags_all=tuple(data.get("tagsAll") or ()),
            model=data.get("model") or None,
        )


class Layer(Protocol):
    name: str

    async def get(self, req: CacheRequest) -> Hit | None:
        """A hit, or None. Never raises: a faulty backend is a miss (and is counted)."""

    async def put(self, req: CacheRequest, entry: Entry) -> None:
        """Store; never raises."""

    async def invalidate(self, selector: Selector) -> int:
        """Remove matching entries; return how many."""

    async def close(self) -> None: ...


class EarlyLayer(Layer, Protocol):
    """A layer with work to start as soon as a request is keyed (the semantic layer's
    embedding), so that it runs while the exact layers look."""

    def begin(self, req: CacheRequest) -> None:
        """Start that work; never raises."""

    def stats(self) -> dict[str, Any]:
        """The layer's part of ``GET /stats`` (under its name; empty: nothing to add)."""
