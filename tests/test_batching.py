"""Embeddings misses batched into fewer upstream calls, answers unchanged."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

from tests.conftest import SidecarFactory
from tests.support import llmcache
from tests.test_sidecar import sim_count

ROUTE = "POST /v1/embeddings"


def test_concurrent_embeddings_misses_share_one_upstream_call(
    sidecar: SidecarFactory, tmp_path: Path
) -> None:
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text("batching: {mode: batch, windowMs: 300, maxSize: 64}\n")
        proc = sidecar("--policy", str(policy), "--openai-upstream", sim.url)
        texts = [f"document number {i} about contracts" for i in range(8)]
        direct = openai.OpenAI(api_key="sk-a", base_url=f"{sim.url}/v1", max_retries=0)
        expected = {
            t: direct.embeddings.create(model="text-embedding-3-small", input=t) for t in texts
        }
        before = sim_count(sim, ROUTE)

        barrier = threading.Barrier(len(texts))

        def embed(text: str, key: str = "sk-a") -> list[float]:
            client = openai.OpenAI(api_key=key, base_url=f"{proc.url}/openai/v1", max_retries=0)
            barrier.wait()
            return (
                client.embeddings.create(model="text-embedding-3-small", input=text)
                .data[0]
                .embedding
            )

        with ThreadPoolExecutor(len(texts)) as pool:
            got = dict(zip(texts, pool.map(embed, texts), strict=True))
        calls = sim_count(sim, ROUTE) - before
        assert 1 <= calls <= 2, f"8 concurrent misses took {calls} upstream calls"
        for text in texts:
            assert got[text] == expected[text].data[0].embedding

        # Callers with different credentials are never batched together.
        barrier = threading.Barrier(2)
        before = sim_count(sim, ROUTE)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(embed, ["fresh one", "fresh two"], ["sk-a", "sk-b"]))
        assert sim_count(sim, ROUTE) - before == 2
    finally:
        sim.stop()
