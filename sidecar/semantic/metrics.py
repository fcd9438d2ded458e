"""Semantic and RAG metrics (names per the contract), registered once per ``Metrics``
registry so several sidecars can live in one test process."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from ..metrics import (
    BATCH_BUCKETS,
    SIMILARITY_BUCKETS,
    FaultCounter,
    LoopHistogram,
    Metrics,
)

# Fine below 50 ms, where a lookup's cost on a miss decides whether the layer pays off.
LOOKUP_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
    0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


@dataclass(frozen=True)
class SemanticMetrics:
    similarity: Histogram
    entries: Gauge
    index_bytes: Gauge
    evictions: Counter
    rejections: Counter
    shadow: Counter
    shadow_vetoes: Counter
    recommended_threshold: Gauge
    recommended_recall: Gauge
    embedder_faults: Counter
    batch_size: Histogram
    lookups: LoopHistogram
    deferred: Counter
    threads: Gauge


_BY_REGISTRY: weakref.WeakKeyDictionary[Metrics, SemanticMetrics] = weakref.WeakKeyDictionary()


def semantic_metrics(metrics: Metrics) -> SemanticMetrics:
    found = _BY_REGISTRY.get(metrics)
    if found is not None:
        return found
    r = metrics.registry
    made = SemanticMetrics(
        similarity=Histogram(
            "llmcache_semantic_similarity",
            "Cosine similarity of the best candidate of each semantic or RAG lookup.",
            ["layer"],
            buckets=SIMILARITY_BUCKETS,
            registry=r,
        ),
        entries=Gauge(
            "llmcache_semantic_index_entries",
            "Entries in this sidecar's in-process vector index.",
            ["layer"],
            registry=r,
        ),
        index_bytes=Gauge(
            "llmcache_semantic_index_bytes",
            "Bytes the in-process vector index holds, as semantic.maxBytes / rag.maxBytes "
            "count them (vectors, texts, bookkeeping).",
            ["layer"],
            registry=r,
        ),
        evictions=Counter(
            "llmcache_semantic_evictions",
            "Records the in-process vector index let go to stay within maxEntries/maxBytes, "
            "least recently used first (they stay in Redis).",
            ["layer"],
            registry=r,
        ),
        rejections=Counter(
            "llmcache_semantic_rejections",
            "Candidates above the threshold vetoed by a verification guard.",
            ["guard"],
            registry=r,
        ),
        shadow=Counter(
            "llmcache_semantic_shadow",
            "Shadow-mode lookups by outcome: would_hit_correct, would_hit_wrong, no_candidate.",
            ["outcome"],
            registry=r,
        ),
        shadow_vetoes=Counter(
            "llmcache_semantic_shadow_vetoes",
            "Shadow mode: candidates a verification guard vetoed, by guard and by how the "
            "fresh answer judged them (correct: the veto cost a hit; wrong: it prevented one).",
            ["guard", "judged"],
            registry=r,
        ),
        recommended_threshold=Gauge(
            "llmcache_semantic_shadow_recommended_threshold",
            "Shadow mode: the lowest similarity threshold at which no judged-wrong candidate "
            "would have been served (recent traffic; absent until enough is judged).",
            ["layer"],
            registry=r,
        ),
        recommended_recall=Gauge(
            "llmcache_semantic_shadow_recommended_recall",
            "Shadow mode: the share of judged-correct candidates the recommended threshold "
            "would serve.",
            ["layer"],
            registry=r,
        ),
        embedder_faults=FaultCounter(
            "llmcache_embedder_faults",
            "Embedding calls that failed open (the request went on without semantic lookup).",
            ["reason"],
            registry=r,
        ),
        batch_size=Histogram(
            "llmcache_embedding_batch_size",
            "Texts per embedding backend call.",
            buckets=BATCH_BUCKETS,
            registry=r,
        ),
        lookups=LoopHistogram(
            "llmcache_semantic_lookup_seconds",
            "Time a semantic lookup added after the exact layers missed, by outcome: hit, "
            "miss, skipped (no entry in the request's partition: nothing embedded to look "
            "up), timeout (embedding over semantic.embedder.timeoutMs), overloaded (recent "
            "embeddings took longer than that: not waited for), error.",
            ["outcome"],
            LOOKUP_BUCKETS,
            r,
        ),
        deferred=Counter(
            "llmcache_semantic_deferred_stores",
            "Answers indexed after their response was sent because the embedding was not "
            "ready (skipped or timed-out lookup), by outcome: indexed, failed, flushed, "
            "overflow.",
            ["outcome"],
            registry=r,
        ),
        threads=Gauge(
            "llmcache_embedder_threads",
            "Threads of this process's numpy BLAS and in-process embedding model "
            "(--embed-threads).",
            registry=r,
        ),
    )
    _BY_REGISTRY[metrics] = made
    return made
