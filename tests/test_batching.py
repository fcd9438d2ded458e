"""Embeddings misses batched into fewer upstream calls, answers unchanged; one caller's bad
input or a reply of the wrong shape never reaches another caller or the cache."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from tests.conftest import SidecarFactory
from tests.support import llmcache, serve_app
from tests.test_sidecar import http, sim_count

ROUTE = "POST /v1/embeddings"
MODEL = "text-embedding-3-small"


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


def test_a_bad_input_fails_only_its_own_caller(sidecar: SidecarFactory, tmp_path: Path) -> None:
    """One input over the model's token limit makes the batch a 400: each caller's inputs go
    again on their own, so the good callers get their own vectors and only the bad one errs."""
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text("batching: {mode: batch, windowMs: 1000, maxSize: 64}\n")
        proc = sidecar("--policy", str(policy), "--openai-upstream", sim.url)
        good = [f"clause {i} of the lease" for i in range(4)]
        bad = "word " * 40_000  # ~50k tokens: over the 8192 one input may have
        direct = openai.OpenAI(api_key="sk-a", base_url=f"{sim.url}/v1", max_retries=0)
        expected = {
            t: direct.embeddings.create(model=MODEL, input=t).data[0].embedding for t in good
        }
        before = sim_count(sim, ROUTE)
        barrier = threading.Barrier(len(good) + 1)

        def embed(text: str) -> list[float] | openai.APIStatusError:
            client = openai.OpenAI(api_key="sk-a", base_url=f"{proc.url}/openai/v1", max_retries=0)
            barrier.wait()
            try:
                return client.embeddings.create(model=MODEL, input=text).data[0].embedding
            except openai.APIStatusError as exc:
                return exc

        with ThreadPoolExecutor(len(good) + 1) as pool:
            got = dict(zip([*good, bad], pool.map(embed, [*good, bad]), strict=True))
        # One batch (refused), then each caller's inputs alone.
        assert sim_count(sim, ROUTE) - before == 1 + len(good) + 1
        for text in good:
            assert got[text] == expected[text]
        error = got[bad]
        assert isinstance(error, openai.BadRequestError)
        assert "maximum context length is 8192 tokens" in error.message

        # The good answers were stored; the error was not.
        before = sim_count(sim, ROUTE)
        client = openai.OpenAI(api_key="sk-a", base_url=f"{proc.url}/openai/v1", max_retries=0)
        raw = client.embeddings.with_raw_response.create(model=MODEL, input=good[0])
        assert (
            raw.headers["x-llmcache"] == "hit"
            and raw.parse().data[0].embedding == expected[good[0]]
        )
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model=MODEL, input=bad)
        assert sim_count(sim, ROUTE) - before == 1
    finally:
        sim.stop()


class WrongShape:
    """An embeddings upstream whose replies do not match the request: ``mode`` says how."""

    def __init__(self) -> None:
        self.url = ""
        self.mode = "fewer"
        self.calls: list[list[str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        inputs = (await request.json())["input"]
        inputs = [inputs] if isinstance(inputs, str) else inputs
        self.calls.append(inputs)
        indexes = list(range(len(inputs)))
        if self.mode == "fewer":
            indexes = indexes[:-1]
        elif self.mode == "more":
            indexes.append(len(inputs))
        elif self.mode == "duplicate":
            indexes = [0] * len(inputs)
        elif self.mode == "out_of_range":
            indexes = [i + 1 for i in indexes]
        data = [{"object": "embedding", "index": i, "embedding": [float(i), 0.5]} for i in indexes]
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return web.json_response({"object": "list", "data": data, "model": MODEL, "usage": usage})


@pytest.fixture
async def wrong_shape() -> AsyncIterator[WrongShape]:
    up = WrongShape()
    app = web.Application()
    app.router.add_post("/v1/embeddings", up.handle)
    runner, up.url = await serve_app(app)
    yield up
    await runner.cleanup()


@pytest.mark.parametrize("mode", ["fewer", "more", "duplicate", "out_of_range"])
async def test_a_reply_with_the_wrong_vectors_is_an_error_and_never_stored(
    sidecar: SidecarFactory, tmp_path: Path, wrong_shape: WrongShape, mode: str
) -> None:
    wrong_shape.mode = mode
    policy = tmp_path / "policy.yaml"
    policy.write_text("batching: {mode: batch, windowMs: 500, maxSize: 64}\n")
    proc = sidecar("--policy", str(policy), "--openai-upstream", wrong_shape.url)
    client = openai.AsyncOpenAI(api_key="sk-a", base_url=f"{proc.url}/openai/v1", max_retries=0)

    async def embed(inputs: list[str]) -> Any:
        try:
            return await client.embeddings.create(
                model=MODEL, input=inputs, encoding_format="float"
            )
        except openai.APIStatusError as exc:
            return exc

    for round_ in (1, 2):  # the second round reaches upstream again: nothing was stored
        got = await asyncio.gather(embed(["alpha"]), embed(["beta", "gamma"]))
        assert len(wrong_shape.calls) == round_  # one batch of both callers
        assert sorted(wrong_shape.calls[-1]) == ["alpha", "beta", "gamma"]
        for error in got:
            assert isinstance(error, openai.APIStatusError) and error.status_code == 502
            assert error.type == "api_error"
            assert "embeddings for 3 inputs" in error.message
    await client.close()


async def test_unbatched_wrong_vectors_pass_through_and_are_not_stored(
    sidecar: SidecarFactory, tmp_path: Path, wrong_shape: WrongShape
) -> None:
    wrong_shape.mode = "more"
    proc = sidecar("--openai-upstream", wrong_shape.url)  # batching.mode: coalesce
    client = openai.AsyncOpenAI(api_key="sk-a", base_url=f"{proc.url}/openai/v1", max_retries=0)
    for calls in (1, 2):
        got = await client.embeddings.create(model=MODEL, input="alpha", encoding_format="float")
        assert len(got.data) == 2 and len(wrong_shape.calls) == calls  # upstream's reply, as sent
    await client.close()
    metrics = http("GET", f"{proc.url}/metrics")[2].decode()
    assert (
        'llmcache_bypass_total{reason="unstorable_shape_mismatch",route="openai.embeddings"} 2.0'
        in metrics
    )
