"""The RAG query cache through the real sidecar, real Redis and a local Qdrant/Chroma REST
server: similarity hits, misses by filter and limit, write invalidation across sidecars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer
from tests.test_sidecar import http

DIM = 16


@pytest.fixture
def store() -> Iterator[Proc]:
    proc = Proc(
        [sys.executable, "-m", "llmcache.upstream_sim.vectorstore", "--listen", "127.0.0.1:0"]
    )
    yield proc
    proc.stop()


def policy(store: Proc) -> str:
    return json.dumps({"rag": {"enabled": True, "threshold": 0.98, "upstreams": [
        {"name": "docs", "kind": "qdrant", "url": store.url},
        {"name": "chroma", "kind": "chroma", "url": store.url},
    ]}})  # fmt: skip


def call(proc: Proc, method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    status, headers, raw = http(
        method, proc.url + path, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    return status, headers, json.loads(raw) if raw else None


def queries(store: Proc) -> int:
    return int(json.loads(http("GET", f"{store.url}/_sim/stats")[2])["queries"])


def vec(seed: int) -> list[float]:
    v = np.random.default_rng(seed).standard_normal(DIM)
    return [float(x) for x in v / np.linalg.norm(v)]


def near(v: list[float], eps: float = 0.01, seed: int = 99) -> list[float]:
    w = np.asarray(v) + eps * np.random.default_rng(seed).standard_normal(DIM)
    return [float(x) for x in w / np.linalg.norm(w)]


def fill_qdrant(sc: Proc) -> None:
    points = [{"id": i, "vector": vec(i), "payload": {"lang": "en" if i % 2 else "de"}}
              for i in range(20)]  # fmt: skip
    status, _, _ = call(sc, "PUT", "/rag/docs/collections/kb/points?wait=true", {"points": points})
    assert status == 200


def test_qdrant_similarity_hit_and_partition_misses(
    sidecar: SidecarFactory, redis_server: RedisServer, store: Proc
) -> None:
    sc = sidecar("--redis-url", redis_server.url, "--policy-json", policy(store))
    fill_qdrant(sc)
    q = {"vector": vec(3), "limit": 3, "with_payload": True,
         "filter": {"must": [{"key": "lang", "match": {"value": "en"}}]}}  # fmt: skip
    s1, h1, first = call(sc, "POST", "/rag/docs/collections/kb/points/search", q)
    _, h2, again = call(
        sc, "POST", "/rag/docs/collections/kb/points/search", {**q, "vector": near(vec(3))}
    )
    assert (s1, h1["x-llmcache"]) == (200, "miss")
    assert (h2["x-llmcache"], h2["x-llmcache-layer"]) == ("hit", "rag")
    assert 0.98 <= float(h2["x-llmcache-similarity"]) < 1.0
    assert again == first and first["result"][0]["id"] == 3
    n = queries(store)
    other_filter = {**q, "filter": {"must": [{"key": "lang", "match": {"value": "de"}}]}}
    for changed in (other_filter, {**q, "limit": 5}, {**q, "vector": vec(4)}):
        _, headers, _ = call(sc, "POST", "/rag/docs/collections/kb/points/search", changed)
        assert headers["x-llmcache"] == "miss"
    assert queries(store) == n + 3
    # the query API: bare vector and {"nearest": ...} are the same query
    _, hq1, _ = call(
        sc, "POST", "/rag/docs/collections/kb/points/query", {"query": vec(5), "limit": 2}
    )
    _, hq2, _ = call(sc, "POST", "/rag/docs/collections/kb/points/query",
                     {"query": {"nearest": near(vec(5))}, "limit": 2})  # fmt: skip
    assert (hq1["x-llmcache"], hq2["x-llmcache"]) == ("miss", "hit")


def test_write_through_any_sidecar_invalidates_everywhere(
    sidecar: SidecarFactory, redis_server: RedisServer, store: Proc
) -> None:
    a = sidecar("--redis-url", redis_server.url, "--policy-json", policy(store))
    b = sidecar("--redis-url", redis_server.url, "--policy-json", policy(store))
    fill_qdrant(a)
    q = {"vector": vec(7), "limit": 1}
    _, _, before = call(a, "POST", "/rag/docs/collections/kb/points/search", q)
    _, hb, _ = call(b, "POST", "/rag/docs/collections/kb/points/search", q)
    assert hb["x-llmcache"] == "hit"  # b sees a's entry through Redis
    assert before["result"][0]["id"] == 7
    # point 7 moves away through b; a must not serve the old answer afterwards
    status, _, _ = call(b, "PUT", "/rag/docs/collections/kb/points?wait=true",
                        {"points": [{"id": 7, "vector": vec(70), "payload": {}}]})  # fmt: skip
    assert status == 200
    _, ha, after = call(a, "POST", "/rag/docs/collections/kb/points/search", q)
    assert ha["x-llmcache"] == "miss" and after["result"][0]["id"] != 7
    _, ha2, _ = call(a, "POST", "/rag/docs/collections/kb/points/search", q)
    assert ha2["x-llmcache"] == "hit"
    # deletes invalidate too
    top = after["result"][0]["id"]
    call(a, "POST", "/rag/docs/collections/kb/points/delete", {"points": [top]})
    _, hb2, gone = call(b, "POST", "/rag/docs/collections/kb/points/search", q)
    assert hb2["x-llmcache"] == "miss" and gone["result"][0]["id"] != top


@pytest.mark.parametrize(
    "base",
    [
        "/rag/chroma/api/v2/tenants/t1/databases/d1/collections/c1",
        "/rag/chroma/api/v1/collections/c1",
    ],
)
def test_chroma_query_cache_and_invalidation(
    sidecar: SidecarFactory, redis_server: RedisServer, store: Proc, base: str
) -> None:
    sc = sidecar("--redis-url", redis_server.url, "--policy-json", policy(store))
    ids = [f"doc{i}" for i in range(10)]
    call(sc, "POST", base + "/add", {"ids": ids, "embeddings": [vec(i) for i in range(10)],
                                     "metadatas": [{"k": i % 2} for i in range(10)],
                                     "documents": [f"text {i}" for i in range(10)]})  # fmt: skip
    q = {"query_embeddings": [vec(2)], "n_results": 2, "where": {"k": 0}}
    _, h1, r1 = call(sc, "POST", base + "/query", q)
    _, h2, r2 = call(sc, "POST", base + "/query", {**q, "query_embeddings": [near(vec(2))]})
    _, h3, _ = call(sc, "POST", base + "/query", {**q, "n_results": 3})
    assert (h1["x-llmcache"], h2["x-llmcache"], h3["x-llmcache"]) == ("miss", "hit", "miss")
    assert r1 == r2 and r1["ids"][0][0] == "doc2"
    call(
        sc,
        "POST",
        base + "/upsert",
        {"ids": ["doc2"], "embeddings": [vec(50)], "metadatas": [{"k": 0}]},
    )
    _, h4, r4 = call(sc, "POST", base + "/query", q)
    assert h4["x-llmcache"] == "miss" and r4["ids"][0][0] != "doc2"


def test_unknown_store_is_a_clear_404(sidecar: SidecarFactory, store: Proc) -> None:
    sc = sidecar("--policy-json", policy(store))
    status, _, body = call(sc, "POST", "/rag/nope/collections/kb/points/search", {})
    assert status == 404 and "nope" in body["status"]["error"]
