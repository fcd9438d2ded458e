"""The RAG query cache: exact on the canonical request, then cosine similarity on the query
vector itself within a hard partition (upstream, collection, filter, limit/top_k, every
other option, the tenant, and the collection's generation).

Invalidation is a per-collection **generation counter in Redis** (``P:r:g:<upstream>:
<collection>``), incremented by whichever sidecar passes a write *after* the store answered
it, and read on every lookup: entries live in the partition of the generation they were
filled under, so after a write no sidecar can reach them any more, with no message that
could arrive late. A query that raced the write was stored under the old generation and is
unreachable too. The cost is one Redis GET per lookup (batched with nothing else; ~0.1 ms
on loopback). Without Redis the counter is in-process.

Records in memory are bounded by ``rag.maxEntries``/``rag.maxBytes`` (least recently used
first, as the semantic index: see ``semantic.index`` and ``semantic.store``); an evicted
record's exact repeat still hits through Redis, its similar queries miss on this pod.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import numpy as np

from llmcache import redis_client
from llmcache.policy import RagLayer as RagSpec

from ..layers import Entry
from ..metrics import Metrics
from ..semantic.index import Record, VectorIndex
from ..semantic.metrics import semantic_metrics
from ..semantic.store import SemanticStore
from .requests import Query


def _digest(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class RagCache:
    def __init__(
        self,
        spec: RagSpec,
        metrics: Metrics,
        prefix: str,
        redis_url: str | None,
        timeout_ms: int = 50,
    ) -> None:
        self.spec = spec
        self.prefix = prefix
        self._m = semantic_metrics(metrics)
        self._metrics = metrics
        self.timeout = timeout_ms / 1000
        # Any dimension: a partition is per dimension too. One bound for all of them.
        self.index = VectorIndex(0, spec.max_entries, spec.max_bytes, self._evicted)
        self._m.entries.labels("rag").set_function(lambda: len(self.index))
        self._m.index_bytes.labels("rag").set_function(lambda: self.index.nbytes)
        self.store = SemanticStore(
            prefix, "r", metrics, 0, self._on_record, redis_url, timeout_ms, spec.max_entries
        )
        self.client: redis_client.Client | None = self.store.client
        self._generations: dict[str, int] = {}

    @property
    def loaded(self) -> bool:
        """Whether the first background load of the records in Redis has finished."""
        return self.store.loaded.is_set()

    def _on_record(self, record: Record, vector: np.ndarray, cold: bool = False) -> bool:
        return self.index.add(record, vector, cold) if vector.shape[0] else True

    def _evicted(self, record: Record) -> None:
        self._m.evictions.labels("rag").inc()
        self.store.evicted(record.id)

    def start(self) -> None:
        self.store.start()

    def _gen_key(self, upstream: str, collection: str) -> str:
        return f"{self.prefix}:r:g:{upstream}:{collection}"

    async def generation(self, upstream: str, collection: str) -> int | None:
        """Current generation; None when Redis cannot say (then: no cache at all)."""
        key = self._gen_key(upstream, collection)
        if self.client is None:
            return self._generations.get(key, 0)
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self.client.get(key)
        except Exception as exc:
            self._metrics.redis_faults.labels("rag_generation", type(exc).__name__).inc()
            return None
        return int(raw) if raw is not None else 0

    async def bump(self, upstream: str, collection: str) -> None:
        key = self._gen_key(upstream, collection)
        self._generations[key] = self._generations.get(key, 0) + 1
        if self.client is not None:
            try:
                async with asyncio.timeout(self.timeout * 10):
                    await self.client.incr(key)
            except Exception as exc:
                self._metrics.redis_faults.labels("rag_invalidate", type(exc).__name__).inc()
        self._metrics.invalidated.labels("rag_write").inc()

    def keys(self, upstream: str, tenant: str, q: Query, gen: int) -> tuple[str, str]:
        partition = _digest(upstream, tenant, q.collection, q.options, gen)
        exact = _digest(partition, q.vector)
        return partition, exact

    async def lookup(
        self, partition: str, exact: str, vector: list[float] | None
    ) -> tuple[Entry, float] | None:
        entry = await self.store.entry(exact)
        if entry is not None:
            self.index.touch(exact)
            return entry, 1.0
        if vector is None:
            return None
        q = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        if norm == 0.0:
            return None
        found = self.index.search(partition, q / norm)
        if found is None:
            return None
        record, score = found
        self._m.similarity.labels("rag").observe(score)
        if score < self.spec.threshold:
            return None
        entry = await self.store.entry(record.id)
        if entry is None:
            return None
        self.index.touch(record.id)
        return entry, score

    def save(
        self, partition: str, exact: str, vector: list[float] | None, entry: Entry, ttl: int
    ) -> None:
        record = Record(exact, partition, "", entry.model, entry.expires or time.time() + ttl)
        q = np.zeros(0, dtype=np.float32)
        if vector is not None:
            q = np.asarray(vector, dtype=np.float32)
            norm = float(np.linalg.norm(q))
            q = q / norm if norm > 0.0 else np.zeros(0, dtype=np.float32)
        self._on_record(record, q)
        self.store.save(record, q, entry)  # Redis + announced: every sidecar sees it

    async def close(self) -> None:
        await self.store.close()
