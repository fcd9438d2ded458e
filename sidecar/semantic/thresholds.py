"""The default similarity threshold of each embedding model.

Cosine scales differ by model (a paraphrase scores 0.85 with one model and 0.95 with
another), so ``semantic.threshold`` unset means the threshold measured for the policy's
embedder (``llmcache bench semantic``; docs/semantic.md lists the figures). A model not
listed gets ``FALLBACK``, the strict value used before thresholds were per model.
"""

from __future__ import annotations

# all-MiniLM-L6-v2 with verification: on the held-out split 0.85 serves as many paraphrases
# as 0.80 and 1.3x as many as 0.95, with no more wrong answers (bench/results/semantic.json).
# bge-small-en-v1.5 (BAAI, e.g. served by an OpenAI-compatible embeddings server): the
# lowest threshold with no wrong answer on the splits tuned on is 0.88 (the highest hard
# negative the guards let through scores 0.872); 0.90 serves the same held-out paraphrases
# (bench/results/semantic-models.json, docs/semantic.md).
DEFAULTS: dict[str, float] = {"all-MiniLM-L6-v2": 0.85, "bge-small-en-v1.5": 0.90}
FALLBACK = 0.95


def default_threshold(model: str) -> float:
    """The measured default for ``model`` (the embedder's name, e.g. ``all-MiniLM-L6-v2``
    or ``sentence-transformers/all-MiniLM-L6-v2``), else ``FALLBACK``."""
    return DEFAULTS.get(model.rsplit("/", 1)[-1], FALLBACK)


def effective_threshold(threshold: float | None, model: str) -> float:
    """The policy's threshold when set, else the embedder's default."""
    return threshold if threshold is not None else default_threshold(model)
