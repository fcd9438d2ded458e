"""What a vector-store request is: a cacheable query, a write that invalidates a collection,
or something passed through untouched.

Qdrant REST: ``POST /collections/{c}/points/search|query`` (and ``.../batch``) are queries;
any other non-GET request under ``/collections/{c}`` (upsert ``PUT points``, ``points/delete``,
payload and vector updates, ``points/batch``, collection delete or re-create) is a write,
except the read-only ``scroll``, ``count``, ``recommend``, ``discover``, ``facet``, groups
and point retrieval. Chroma: ``.../collections/{id}/query`` (v2 under
``/api/v2/tenants/{t}/databases/{d}``, v1 under ``/api/v1``) is a query; ``add``,
``upsert``, ``update``, ``delete`` and collection ``DELETE``/``PUT`` are writes; ``get`` and
``count`` are reads. Anything unknown that is not GET counts as a write: invalidating too
often costs a miss, too rarely a stale answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

_QDRANT = re.compile(r"^/collections/(?P<c>[^/]+)(?P<rest>/.*)?$")
_CHROMA = re.compile(
    r"^/api/(?:v2/tenants/(?P<t>[^/]+)/databases/(?P<d>[^/]+)|v1)/collections/(?P<c>[^/]+)"
    r"(?P<rest>/.*)?$"
)
_QDRANT_QUERIES = {"/points/search", "/points/query", "/points/search/batch", "/points/query/batch"}
_QDRANT_READS = {
    "/points", "/points/scroll", "/points/count", "/points/recommend", "/points/discover",
    "/points/recommend/batch", "/points/discover/batch", "/points/search/groups",
    "/points/query/groups", "/points/search/matrix/pairs", "/points/search/matrix/offsets",
    "/facet", "/exists",
}  # fmt: skip
_CHROMA_READS = {"/get", "/count"}


@dataclass(frozen=True, slots=True)
class Query:
    collection: str  # stable name of the collection within the upstream
    vector: list[float] | None  # the one query vector, when similarity applies
    options: Json  # everything but the vector: the hard partition


@dataclass(frozen=True, slots=True)
class Write:
    collection: str


def classify(kind: str, method: str, path: str, body: Json | None) -> Query | Write | None:
    """None: pass through uncached and without invalidation."""
    if kind == "qdrant":
        m = _QDRANT.match(path)
        if m is None:
            return None
        collection, rest = m.group("c"), m.group("rest") or ""
        if method == "POST" and rest in _QDRANT_QUERIES and body is not None:
            return _qdrant_query(collection, rest, body)
        if method in ("GET", "HEAD") or (method == "POST" and rest in _QDRANT_READS):
            return None
        return Write(collection)
    m = _CHROMA.match(path)
    if m is None:
        return None
    scope = f"{m.group('t') or '_'}/{m.group('d') or '_'}"
    collection, rest = f"{scope}/{m.group('c')}", m.group("rest") or ""
    if method == "POST" and rest == "/query" and body is not None:
        return _chroma_query(collection, body)
    if method in ("GET", "HEAD") or (method == "POST" and rest in _CHROMA_READS):
        return None
    return Write(collection)


def _floats(value: Any) -> list[float] | None:
    if (
        isinstance(value, list)
        and value
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    ):
        return [float(x) for x in value]
    return None


def _qdrant_query(collection: str, rest: str, body: Json) -> Query:
    options = {"endpoint": rest, **body}
    vector: list[float] | None = None
    if rest == "/points/search":
        raw: Any = body.get("vector")
        if isinstance(raw, dict):  # named vector: {"name": ..., "vector": [...]}
            vector = _floats(raw.get("vector"))
            options["vector"] = {k: v for k, v in raw.items() if k != "vector"}
        else:
            vector = _floats(raw)
            options.pop("vector", None)
    elif rest == "/points/query":
        raw = body.get("query")
        if isinstance(raw, dict) and set(raw) == {"nearest"}:
            raw = raw["nearest"]
        vector = _floats(raw)  # a bare vector means nearest
        if vector is not None:
            options["query"] = "nearest"
    if vector is None:
        options = {"endpoint": rest, **body}  # exact match only
    return Query(collection, vector, options)


def _chroma_query(collection: str, body: Json) -> Query:
    options = {k: v for k, v in body.items() if k != "query_embeddings"}
    raw = body.get("query_embeddings")
    vector = None
    if isinstance(raw, list) and len(raw) == 1:
        vector = _floats(raw[0])
    if vector is None:
        return Query(collection, None, dict(body))
    return Query(collection, vector, options)
