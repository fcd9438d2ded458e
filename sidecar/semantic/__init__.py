"""Semantic caching: a similarity lookup after the exact layers (see ``layer`` and
``canonical`` for what is compared and what must match exactly)."""

from __future__ import annotations

import os

from llmcache.embedder import Embedder
from llmcache.policy import Embedder as EmbedderSpec
from llmcache.policy import SemanticLayer as SemanticSpec

from ..metrics import Metrics
from .layer import SemanticLayer, index_deadline
from .metrics import semantic_metrics

API_KEY_ENV = "LLMCACHE_EMBEDDER_API_KEY"


def make_embedder(
    spec: EmbedderSpec, metrics: Metrics, window_ms: float = 2.0, max_batch: int = 64
) -> Embedder:
    """The policy's embedder: an OpenAI-compatible endpoint when ``url`` is set (its key
    from ``LLMCACHE_EMBEDDER_API_KEY``, which the webhook fills from ``apiKeySecretRef``),
    else the local model in this process (the ``embed`` extra). The HTTP call may take up
    to the index deadline: a lookup stops waiting after ``timeoutMs``, the index does not."""
    observe = semantic_metrics(metrics).batch_size.observe
    if spec.url:
        from llmcache.embedder.client import HttpEmbedder

        deadline_ms = int(index_deadline(spec.timeout_ms) * 1000)
        return HttpEmbedder(
            spec.url, spec.model, os.environ.get(API_KEY_ENV), deadline_ms,
            window_ms, max_batch, observe=observe,
        )  # fmt: skip
    from llmcache.embedder.local import LocalEmbedder

    return LocalEmbedder(window_ms, max_batch, observe=observe)


def make_layer(
    spec: SemanticSpec,
    metrics: Metrics,
    prefix: str,
    redis_url: str | None,
    redis_timeout_ms: int = 50,
    embedder: Embedder | None = None,
) -> SemanticLayer:
    """Build and start the layer (call inside the running event loop)."""
    layer = SemanticLayer(
        spec, embedder or make_embedder(spec.embedder, metrics), metrics, prefix, redis_url,
        redis_timeout_ms,
    )  # fmt: skip
    layer.start()
    return layer


__all__ = ["SemanticLayer", "make_embedder", "make_layer"]
