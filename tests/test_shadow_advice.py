"""Shadow mode recommends a similarity threshold from live traffic: the lowest at which no
candidate whose cached answer differed from the fresh one would have been served, and the
share of same-answer candidates it would serve (``GET /stats`` and two gauges).

Through the real sidecar process, with the official anthropic SDK, a bag-of-words embedder
run by the test (``tests.test_semantic_load``: its cosines are computed here too) and an
Anthropic-shaped upstream run by the test whose answers say which prompts mean the same: a
model's answer is what judges a would-be hit, and the simulator answers every wording
differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from llmcache.sidecar.semantic.advisor import MIN_JUDGED, STEP, ThresholdAdvisor

from tests.conftest import SidecarFactory
from tests.support import ThreadedApp, wait_for
from tests.test_semantic_load import bag_of_words, embedder, metric  # noqa: F401  (fixture)
from tests.test_sidecar import ask, claude, http

THRESHOLD = 0.80  # the policy's; candidates down to 0.70 are judged
TOLERANCE = 1e-3  # float32 (or coarser) vectors in the sidecar against floats here

# -- the advisor on its own -----------------------------------------------------------------


def advisor_with(judged: list[tuple[float, bool, str | None]]) -> ThresholdAdvisor:
    advisor = ThresholdAdvisor(THRESHOLD)
    for score, correct, guard in judged:
        advisor.observe(score, correct, guard)
    return advisor


def test_no_advice_before_enough_judgements() -> None:
    advisor = advisor_with([(0.95, True, None)] * (MIN_JUDGED - 1))
    assert advisor.recommended() is None
    advisor.observe(0.95, True, None)
    assert advisor.recommended() == (0.95, 1.0)


def test_advice_is_just_above_the_highest_wrong_candidate() -> None:
    judged = [(0.91, True, None)] * 10 + [(0.86, True, None)] * 10 + [(0.873, False, None)]
    threshold, recall = advisor_with(judged).recommended() or (0.0, 0.0)
    assert threshold == pytest.approx(0.875)
    assert recall == pytest.approx(10 / 20)


def test_vetoed_candidates_are_never_served_but_count_for_recall() -> None:
    """A guard's veto stands at any threshold: a vetoed wrong candidate does not raise the
    advice, a vetoed correct one is recall the threshold cannot win back."""
    judged = [(0.9, True, None)] * 20 + [(0.99, False, "numbers"), (0.95, True, "entities")]
    advisor = advisor_with(judged)
    assert advisor.recommended() == (0.9, pytest.approx(20 / 21))
    assert advisor.report()["vetoes"] == {
        "numbers": {"correct": 0, "wrong": 1},
        "entities": {"correct": 1, "wrong": 0},
    }


def test_no_advice_when_a_wrong_candidate_outscores_every_correct_one() -> None:
    judged = [(0.9, True, None)] * 20 + [(1.0, False, None)]
    assert advisor_with(judged).recommended() is None


# -- through a sidecar ----------------------------------------------------------------------

# "How do I <tail>?" then "How can I <tail>?": the pair's bag-of-words cosine grows with the
# tail's length; False: the upstream answers the second differently (a would-be wrong hit).
TOPICS: list[tuple[str, bool]] = [
    ("sort a list in Python", True),
    ("rotate the TLS certificates of an nginx ingress without any downtime", True),
    ("profile memory usage of a long running Go service in production", True),
    ("tune the autovacuum settings of a busy Postgres table", True),
    ("pin a dependency", False),
    ("resize a volume", False),
    ("configure log rotation for a systemd journal on small disks", True),
    ("split a large CSV file into chunks of one thousand rows", True),
    ("enable HTTP/2 server push", False),
    ("migrate a Django project from SQLite to Postgres safely", True),
    ("write a unit test for a coroutine", True),
    ("undo the last commit", False),
    ("read environment variables in Rust", True),
    ("cancel a running Kubernetes job and keep its logs for later debugging", True),
    ("center a div", True),
    ("compress images for the web without losing visible quality", True),
    ("stream a large JSON response from an aiohttp handler to the client", True),
    ("count the words of a file from the shell", True),
    ("batch writes to Redis with a pipeline from asyncio code", True),
    ("free disk space", False),
    ("schedule a cron job that runs every weekday at seven in the morning", True),
    ("measure the p99 latency of an HTTP endpoint with a load generator", True),
]
PAIRS = [(f"How do I {tail}?", f"How can I {tail}?", same) for tail, same in TOPICS]


class MeaningUpstream:
    """``POST /v1/messages`` answering each prompt with the answer of its meaning."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls = 0
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self.served = ThreadedApp(app)
        self.url = self.served.url

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        text = self.answers[body["messages"][-1]["content"]]
        return web.json_response(
            {
                "id": f"msg_{self.calls:024d}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 30},
            }
        )


@pytest.fixture
def meaning_upstream() -> Iterator[MeaningUpstream]:
    answers: dict[str, str] = {}
    for i, (first, second, same) in enumerate(PAIRS):
        answers[first] = f"Answer number {i}: use the documented procedure, step by step."
        answers[second] = answers[first] if same else f"A different answer, {i} {i} {i}."
    answers["What is 15% of 200?"] = "Thirty."
    answers["What is 15% of 300?"] = "Forty-five."
    server = MeaningUpstream(answers)
    yield server
    server.served.stop()


def cosine(a: str, b: str) -> float:
    return sum(x * y for x, y in zip(bag_of_words(a), bag_of_words(b), strict=True))


def test_shadow_mode_recommends_the_threshold_its_traffic_supports(
    sidecar: SidecarFactory,
    embedder: Any,  # noqa: F811  (the fixture imported above)
    meaning_upstream: MeaningUpstream,
) -> None:
    semantic = {
        "enabled": True,
        "shadow": True,
        "threshold": THRESHOLD,
        "embedder": {"url": embedder.url, "model": "bag-of-words", "timeoutMs": 10_000},
    }
    proc = sidecar(
        "--anthropic-upstream",
        meaning_upstream.url,
        "--policy-json",
        json.dumps({"semantic": semantic}),
    )
    client = claude(proc)
    sent: list[str] = []
    judged: list[tuple[float, bool]] = []  # servable judged candidates: score, same answer

    def send(text: str) -> tuple[float, bool] | None:
        """Ask (a miss: shadow mode never serves); the candidate it is judged against."""
        stored = metric(proc, "llmcache_stores_total", 'layer="semantic"')
        headers, _ = ask(client, text)
        assert headers["x-llmcache"] == "miss"
        wait_for(lambda: metric(proc, "llmcache_stores_total", 'layer="semantic"') > stored)
        candidate = None
        if sent:
            best = max(sent, key=lambda earlier: cosine(text, earlier))
            if cosine(text, best) >= THRESHOLD - 0.10 + TOLERANCE:
                answers = meaning_upstream.answers
                candidate = (cosine(text, best), answers[best] == answers[text])
        sent.append(text)
        return candidate

    for first, second, _same in PAIRS:
        for text in (first, second):
            if (candidate := send(text)) is not None:
                judged.append(candidate)
    send("What is 15% of 200?")
    vetoed = send("What is 15% of 300?")  # the numbers guard vetoes it: judged, never served
    assert vetoed is not None and not vetoed[1]
    assert meaning_upstream.calls == len(sent)

    def shadow() -> dict[str, Any] | None:
        _, _, raw = http("GET", f"{proc.url}/stats")
        report: dict[str, Any] = json.loads(raw)["semantic"]["shadow"]
        return report if report["judged"] == len(judged) + 1 else None

    report = wait_for(shadow, timeout=20)
    wrong = [score for score, same in judged if not same]
    right = [score for score, same in judged if same]
    assert len(wrong) >= 3 and len(right) >= MIN_JUDGED - 5, "the traffic must have both kinds"
    advice = report["recommended"]
    threshold = advice["threshold"]
    assert max(wrong) - TOLERANCE < threshold <= max(wrong) + STEP + TOLERANCE
    served = [sum(1 for s in right if s >= threshold + d) for d in (TOLERANCE, -TOLERANCE)]
    assert served[0] / len(right) - 1e-4 <= advice["recall"] <= served[1] / len(right) + 1e-4
    assert 0 < advice["recall"] < 1  # some paraphrases score below the advice, by design
    assert report["vetoes"] == {"numbers": {"correct": 0, "wrong": 1}}
    assert report["current"]["wrong"] == sum(1 for s in wrong if s >= THRESHOLD)
    gauge = metric(proc, "llmcache_semantic_shadow_recommended_threshold", 'layer="semantic"')
    assert gauge == pytest.approx(threshold)
    assert metric(proc, "llmcache_semantic_shadow_vetoes_total", 'judged="wrong"') == 1
