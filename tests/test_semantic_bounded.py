"""Bounded semantic and RAG memory: the index holds at most ``maxEntries`` records and
``maxBytes`` bytes, lets the least recently used go first (a hit refreshes), loads from Redis
in the background newest first without evicting what this pod uses, and the sidecar is
ready, serving, while it loads. An evicted record is never served: its paraphrases go
upstream for their own answer; its exact repeat still hits through Redis.

The index and the store run here against a real ``redis-server``; the sidecar tests run the
real sidecar process with the bag-of-words embedder server of ``test_semantic_load`` (so no
model is needed) or the local vector-store simulator of ``test_rag_sidecar``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
from llmcache.bench.semantic.memory import fill_more
from llmcache.sidecar.metrics import Metrics
from llmcache.sidecar.semantic.index import BLOCK, Record, VectorIndex, record_bytes
from llmcache.sidecar.semantic.store import SemanticStore, encode_record

from llmcache import keyspace
from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer, wait_for
from tests.test_rag_sidecar import call, near, queries, vec
from tests.test_rag_sidecar import store as store
from tests.test_semantic_load import (
    PARAPHRASE,
    QUESTION,
    EmbedServer,
    metric,
    stored,
)
from tests.test_semantic_load import embedder as embedder
from tests.test_sidecar import ask, claude, http, sim_count

FAR = time.time() + 3_600


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def rec(rid: str, partition: str = "p", expires: float = FAR) -> Record:
    return Record(rid, partition, "", "m", expires)


# -- the index -------------------------------------------------------------------------------


def test_least_recently_used_goes_first_and_a_hit_protects_its_record() -> None:
    evicted: list[str] = []
    index = VectorIndex(8, max_entries=3, on_evict=lambda r: evicted.append(r.id))
    for i, rid in enumerate("abc"):
        index.add(rec(rid), unit(i))
    found = index.search("p", unit(0))
    assert found is not None and found[0].id == "a"
    index.touch("a")  # what a served hit does
    index.add(rec("d"), unit(3))
    assert evicted == ["b"] and set(index.records) == {"a", "c", "d"}
    index.add(rec("e"), unit(4))
    assert evicted == ["b", "c"]
    found = index.search("p", unit(1))  # b's vector: b itself is gone, never returned
    assert found is not None and found[0].id != "b"


def test_byte_bound_holds_and_counts_what_it_evicts() -> None:
    one = record_bytes(rec("r00"), 384)
    evicted: list[str] = []
    index = VectorIndex(384, 1_000_000, max_bytes=5 * one, on_evict=lambda r: evicted.append(r.id))
    for i in range(12):
        index.add(rec(f"r{i:02d}"), unit(i, 384))
        assert index.nbytes <= 5 * one
    assert len(index) == 5 and evicted == [f"r{i:02d}" for i in range(7)]
    big = Record("big", "p", "x" * (6 * one), "m", FAR)
    assert index.add(big, unit(99, 384)) and "big" not in index.records  # never fits
    assert len(index) == 5  # and it evicted nothing
    index.remove("r11")
    index.clear()
    assert index.nbytes == 0


def test_loaded_records_fill_free_room_only_and_go_first() -> None:
    index = VectorIndex(8, max_entries=3)
    index.add(rec("hot"), unit(0))
    assert index.add(rec("new"), unit(1), cold=True)
    assert index.add(rec("older"), unit(2), cold=True)
    assert not index.add(rec("oldest"), unit(3), cold=True)  # full: refused, nothing evicted
    assert list(index.records) == ["older", "new", "hot"]  # least recently used first
    assert index.add(rec("hot"), unit(9), cold=True)  # held already: left as it is
    found = index.search("p", unit(0))
    assert found is not None and found[0].id == "hot"
    index.add(rec("fresh"), unit(4))
    assert "older" not in index.records and "hot" in index.records


def test_rows_grow_in_blocks_and_emptied_blocks_are_released() -> None:
    rng = np.random.default_rng(3)
    n = 2 * BLOCK + 100
    vectors = rng.standard_normal((n, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(64, n)
    for i in range(n):
        index.add(rec(f"r{i}"), vectors[i])
    blocks = index._parts[("p", 64)].blocks
    assert [len(b) for b in blocks] == [BLOCK] * 3  # whole blocks: none copied to grow
    before = index.allocated_bytes()
    for i in (5, BLOCK + 5, 2 * BLOCK + 5):  # one row in each block
        found = index.search("p", vectors[i])
        assert found is not None and found[0].id == f"r{i}" and found[1] == pytest.approx(1.0)
    for i in range(BLOCK + 100):
        index.remove(f"r{i}")
    assert len(index._parts[("p", 64)].blocks) == 2  # the third block went
    assert index.allocated_bytes() < before - BLOCK * 64 * 4 + 1
    for i in (BLOCK + 200, 2 * BLOCK + 50):  # rows moved into the holes are still found
        found = index.search("p", vectors[i])
        assert found is not None and found[0].id == f"r{i}"


def test_any_dimension_index_keeps_dimensions_apart_under_one_bound() -> None:
    """RAG: collections of different dimensions share one bound, never one partition."""
    index = VectorIndex(0, max_entries=3)
    index.add(rec("a8"), unit(1, 8))
    index.add(rec("a16"), unit(1, 16))
    found = index.search("p", unit(1, 16))
    assert found is not None and found[0].id == "a16"
    index.add(rec("b8"), unit(2, 8))
    index.add(rec("b16"), unit(2, 16))
    assert "a8" not in index.records and len(index) == 3
    found = index.search("p", unit(1, 8))
    assert found is not None and found[0].id == "b8"


# -- loading from Redis ----------------------------------------------------------------------


def test_load_takes_the_newest_records_up_to_the_bound_and_keeps_hot_ones(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    now = time.time()
    for i in range(50):  # record i expires i seconds after the first: r49 is the newest
        record = Record(f"r{i}", "p", "text", "m", now + 600 + i)
        client.set(f"t:s:v:r{i}", encode_record(record, unit(i)), ex=900)
        client.zadd("t:s:ids", {f"r{i}": record.expires})

    async def load() -> VectorIndex:
        index = VectorIndex(8, max_entries=10)
        index.add(Record("r3", "p", "text", "m", now + 603), unit(3))  # used here already
        store = SemanticStore(
            "t", "s", Metrics(), 8, lambda r, v, cold: index.add(r, v, cold), redis_server.url
        )
        store.start()
        await asyncio.wait_for(store.loaded.wait(), 20)
        await store.close()
        return index

    index = asyncio.run(load())
    assert set(index.records) == {"r3", *(f"r{i}" for i in range(41, 50))}
    assert list(index.records)[-1] == "r3"  # the hot one is the last to go


def test_load_pages_by_score_and_reads_tied_ids_once(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 4 over 30 ids, 12 of them with one expiry (ties across pages): each id is
    read exactly once."""
    import llmcache.sidecar.semantic.store as store_module

    monkeypatch.setattr(store_module, "LOAD_BATCH", 4)
    client = redis_server.client()
    now = time.time()
    for i in range(30):
        expires = now + 600 + (0 if 5 <= i < 17 else i)
        client.set(f"t:s:v:r{i}", encode_record(Record(f"r{i}", "p", "", "m", expires), unit(i)))
        client.zadd("t:s:ids", {f"r{i}": expires})
    seen: list[str] = []

    def on_record(record: Record, vector: np.ndarray, cold: bool) -> bool:
        seen.append(record.id)
        return True

    async def load() -> int:
        store = SemanticStore("t", "s", Metrics(), 8, on_record, redis_server.url)
        try:
            return await store.load_all()
        finally:
            await store.close()

    assert asyncio.run(load()) == 30
    assert sorted(seen) == sorted(f"r{i}" for i in range(30))


# -- through the sidecar ---------------------------------------------------------------------


def start(sidecar: SidecarFactory, url: str, redis: RedisServer, **bounds: int) -> Proc:
    semantic = {
        "enabled": True,
        "threshold": 0.85,
        "embedder": {"url": url, "model": "bag-of-words", "timeoutMs": 10_000},
        **bounds,
    }
    return sidecar("--redis-url", redis.url, "--policy-json", json.dumps({"semantic": semantic}))


def asked(proc: Proc, text: str, stores: float) -> tuple[str, str]:
    """(outcome, answer text); a miss waits until its answer is indexed (``stores`` + 1)."""
    headers, message = ask(claude(proc), text)
    if headers["x-llmcache"] == "miss":
        wait_for(lambda: stored(proc) >= stores + 1, timeout=20, what=f"{text!r} indexed")
    outcome = headers["x-llmcache"] + (":" + headers.get("x-llmcache-layer", ""))
    return outcome.rstrip(":"), message.content[0].text


SORT = "How do I sort a dict in Python?"
SORT_PARAPHRASE = "How can I sort a dict in Python?"
JOIN = "How do I join two tables in SQL?"


def test_sidecar_bound_evicts_the_least_recently_used_and_never_serves_it(
    sidecar: SidecarFactory, embedder: EmbedServer, redis_server: RedisServer, upstream: Proc
) -> None:
    proc = start(sidecar, embedder.url, redis_server, maxEntries=2)
    reverse = asked(proc, QUESTION, 0)
    sort = asked(proc, SORT, 1)
    assert (reverse[0], sort[0]) == ("miss", "miss")
    assert asked(proc, PARAPHRASE, 2) == ("hit:semantic", reverse[1])  # refreshes QUESTION's
    calls = sim_count(upstream)
    assert asked(proc, JOIN, 2)[0] == "miss"  # a third record: SORT's goes, not QUESTION's
    assert metric(proc, "llmcache_semantic_evictions_total", 'layer="semantic"') == 1
    assert metric(proc, "llmcache_semantic_index_entries", 'layer="semantic"') == 2
    outcome, answer = asked(proc, SORT_PARAPHRASE, 3)
    assert outcome == "miss" and answer != sort[1]  # its own answer, from upstream
    assert sim_count(upstream) == calls + 2
    outcome, answer = asked(proc, SORT, 4)  # the exact repeat: the exact layers have it
    assert outcome in ("hit:l1", "hit:l2") and answer == sort[1]
    assert metric(proc, "llmcache_semantic_index_bytes", 'layer="semantic"') > 0


def test_sidecar_is_ready_and_serves_while_it_loads(
    sidecar: SidecarFactory, embedder: EmbedServer, redis_server: RedisServer, upstream: Proc
) -> None:
    """60 000 records in Redis: the sidecar answers ``/readyz`` and serves a miss before
    they are loaded, then holds all of them."""
    n = 60_000
    fill_more(redis_server.url, keyspace.policy_prefix("llmcache", None, None), 0, n)
    proc = start(sidecar, embedder.url, redis_server, maxBytes=1 << 30)
    status, _, body = http("GET", f"{proc.url}/readyz")
    assert status == 200 and json.loads(body)["loading"] == ["semantic"]
    outcome, _ = asked(proc, QUESTION, 0)
    assert outcome == "miss"
    loading = json.loads(http("GET", f"{proc.url}/readyz")[2])["loading"]
    held = metric(proc, "llmcache_semantic_index_entries", 'layer="semantic"')
    assert loading == ["semantic"] and held < n  # served before the load was done
    wait_for(
        lambda: not json.loads(http("GET", f"{proc.url}/readyz")[2])["loading"],
        timeout=120,
        what="records loaded",
    )
    assert metric(proc, "llmcache_semantic_index_entries", 'layer="semantic"') == n + 1


def test_sidecar_load_stops_at_the_bound(
    sidecar: SidecarFactory, embedder: EmbedServer, redis_server: RedisServer
) -> None:
    fill_more(redis_server.url, keyspace.policy_prefix("llmcache", None, None), 0, 3_000)
    proc = start(sidecar, embedder.url, redis_server, maxEntries=1_000)
    wait_for(
        lambda: not json.loads(http("GET", f"{proc.url}/readyz")[2])["loading"],
        timeout=60,
        what="records loaded",
    )
    assert metric(proc, "llmcache_semantic_index_entries", 'layer="semantic"') == 1_000
    assert metric(proc, "llmcache_semantic_evictions_total") == 0  # refused, not evicted


# -- RAG -------------------------------------------------------------------------------------


@pytest.fixture
def rag_sidecar(
    sidecar: SidecarFactory,
    redis_server: RedisServer,
    store: Proc,
) -> Iterator[Proc]:
    policy = {"rag": {"enabled": True, "threshold": 0.98, "maxEntries": 2, "upstreams": [
        {"name": "docs", "kind": "qdrant", "url": store.url}]}}  # fmt: skip
    sc = sidecar("--redis-url", redis_server.url, "--policy-json", json.dumps(policy))
    points = [{"id": i, "vector": vec(i), "payload": {}} for i in range(20)]
    status, _, _ = call(sc, "PUT", "/rag/docs/collections/kb/points?wait=true", {"points": points})
    assert status == 200
    yield sc


def search(sc: Proc, vector: list[float]) -> tuple[str, object]:
    _, headers, body = call(
        sc, "POST", "/rag/docs/collections/kb/points/search", {"vector": vector, "limit": 3}
    )
    return headers["x-llmcache"] + (":" + headers.get("x-llmcache-layer", "")).rstrip(":"), body


def test_rag_bound_evicts_the_least_recently_used_and_never_serves_it(
    rag_sidecar: Proc,
    store: Proc,
) -> None:
    sc = rag_sidecar
    first1, first2 = search(sc, vec(1)), search(sc, vec(2))
    assert (first1[0], first2[0]) == ("miss", "miss")
    assert search(sc, near(vec(1))) == ("hit:rag", first1[1])  # refreshes vec(1)'s record
    assert search(sc, vec(3))[0] == "miss"  # vec(2)'s record goes
    assert metric(sc, "llmcache_semantic_evictions_total", 'layer="rag"') == 1
    n = queries(store)
    outcome, answer = search(sc, near(vec(2)))
    assert outcome == "miss" and queries(store) == n + 1  # asked the store: its own answer
    direct = {"vector": near(vec(2)), "limit": 3}
    assert answer == call(store, "POST", "/collections/kb/points/search", direct)[2]
    assert search(sc, vec(2)) == ("hit:rag", first2[1])  # the exact repeat: through Redis
    assert metric(sc, "llmcache_semantic_index_entries", 'layer="rag"') == 2


def test_bench_bounded_rows() -> None:
    """``llmcache bench semantic``'s hit-rate rows, small: every policy has a row, and no
    bound is the ceiling of the bounded ones."""
    from llmcache.bench.semantic.memory import bounded

    rows = {r["policy"].split(",")[0]: r for r in bounded(400, 2_000)}
    assert set(rows) == {"no bound", "LRU", "FIFO", "oracle (the n/10 most asked"}
    assert rows["LRU"]["bound"] == rows["FIFO"]["bound"] == 40
    assert rows["no bound"]["hit_rate"] >= max(rows["LRU"]["hit_rate"], rows["FIFO"]["hit_rate"])
    assert rows["LRU"]["hit_rate"] > 0
