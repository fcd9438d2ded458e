"""Semantic and RAG metrics (names per the contract), registered once per ``Metrics``
registry so several sidecars can live in one test process."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from ..metrics import BATCH_BUCKETS, SIMILARITY_BUCKETS, Metrics


@dataclass(frozen=True)
class SemanticMetrics:
    similarity: Histogram
    entries: Gauge
    rejections: Counter
    shadow: Counter
    embedder_faults: Counter
    batch_size: Histogram


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
        embedder_faults=Counter(
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
    )
    _BY_REGISTRY[metrics] = made
    return made
