"""Coalescing across pods: two sidecar processes sharing one real Redis in front of a slow
upstream make one upstream call for a request both receive at once; a leader that dies or
whose answer cannot be stored never leaves the others waiting out the bound, and a Redis
that fails makes them call upstream rather than fail. Clients are the official SDKs."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer, llmcache, wait_for
from tests.test_semantic_sidecar import metric
from tests.test_sidecar import ask, claude, http, sim_count

QUESTION = "Summarise the history of the printing press in three sentences."


@pytest.fixture
def slow_upstream() -> Iterator[Proc]:
    """The simulator with a 1.5 s time to first token: long enough for calls to overlap."""
    proc = llmcache("upstream-sim", "--listen", "127.0.0.1:0", "--ttft-ms", "1500")
    yield proc
    proc.stop()


def pair(
    sidecar: SidecarFactory, redis: RedisServer, upstream: Proc, **batching: Any
) -> tuple[Proc, Proc]:
    policy = json.dumps({"batching": batching}) if batching else "{}"
    args = ("--anthropic-upstream", upstream.url, "--redis-url", redis.url)
    return (
        sidecar(*args, "--policy-json", policy),
        sidecar(*args, "--policy-json", policy),
    )


def peer(proc: Proc, outcome: str) -> float:
    return metric(proc, "llmcache_peer_coalescing_total", f'outcome="{outcome}"')


def streamed_text(proc: Proc, text: str) -> str:
    with claude(proc).messages.stream(
        model="claude-sonnet-4-5", max_tokens=400, messages=[{"role": "user", "content": text}]
    ) as stream:
        return "".join(stream.text_stream)


def test_pods_asked_at_once_make_one_upstream_call(
    sidecar: SidecarFactory, redis_server: RedisServer, slow_upstream: Proc
) -> None:
    a, b = pair(sidecar, redis_server, slow_upstream)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(ask, claude(a), QUESTION)
        wait_for(lambda: peer(a, "led") == 1, timeout=10)  # A holds the lease, its call runs
        plain = [pool.submit(ask, claude(b), QUESTION) for _ in range(6)]
        streams = [pool.submit(streamed_text, b, QUESTION) for _ in range(2)]
        headers, leader_answer = first.result(timeout=60)
        answers = [f.result(timeout=60) for f in plain]
        texts = [f.result(timeout=60) for f in streams]
    assert sim_count(slow_upstream) == 1
    assert headers["x-llmcache"] == "miss"
    expected = leader_answer.content[0].text
    layers = [got_headers["x-llmcache-layer"] for got_headers, _ in answers]
    for got_headers, message in answers:
        assert got_headers["x-llmcache"] == "hit"
        assert message.content[0].text == expected
        assert message.id == leader_answer.id
    # Joined while the call ran; a thread the loaded machine started late finds it in L1.
    assert set(layers) <= {"coalesced", "l1"} and "coalesced" in layers, layers
    assert texts == [expected, expected]  # streaming waiters get the answer replayed
    assert peer(b, "joined") >= 1  # B's own leader joined A; B's others joined B's leader
    assert peer(b, "led") == 0


def test_per_pod_coalescing_only_when_peer_wait_is_zero(
    sidecar: SidecarFactory, redis_server: RedisServer, slow_upstream: Proc
) -> None:
    a, b = pair(sidecar, redis_server, slow_upstream, peerWaitMs=0)
    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(ask, claude(p), QUESTION) for p in (a, b)]
        for call in calls:
            assert call.result(timeout=60)[0]["x-llmcache"] == "miss"
    assert sim_count(slow_upstream) == 2
    assert peer(a, "led") + peer(b, "led") == 0


def test_a_dead_leader_loses_its_lease_and_a_waiter_takes_over(
    sidecar: SidecarFactory, redis_server: RedisServer, slow_upstream: Proc
) -> None:
    a, b = pair(sidecar, redis_server, slow_upstream, peerWaitMs=120_000)
    with ThreadPoolExecutor(2) as pool:
        pool.submit(ask, claude(a), QUESTION)  # fails when A dies: not this test's concern
        wait_for(lambda: peer(a, "led") == 1, timeout=10)
        wait_for(lambda: sim_count(slow_upstream) == 1, timeout=10)  # A's call is out
        a.stop(signal.SIGKILL)
        started = time.monotonic()
        headers, message = pool.submit(ask, claude(b), QUESTION).result(timeout=60)
        took = time.monotonic() - started
    assert headers["x-llmcache"] == "miss" and message.content[0].text
    assert peer(b, "led") == 1  # once the lease lapsed (3 s), not after peerWaitMs
    assert took < 60, took
    assert sim_count(slow_upstream) == 2


def test_an_answer_that_is_not_stored_lets_the_lease_go_at_once(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    """The leader's call fails (the simulator answers 529): nothing is stored, the lease is
    deleted at once, and the other pod leads its own call instead of waiting out the lease
    (3 s) or the bound."""
    a, b = pair(sidecar, redis_server, upstream)
    before = sim_count(upstream)  # the simulator serves the whole session
    body = json.dumps(
        {"model": "claude-sonnet-4-5", "max_tokens": 400,
         "messages": [{"role": "user", "content": QUESTION}]}
    ).encode()  # fmt: skip
    headers = {"x-api-key": "sk-ant-test-a", "anthropic-version": "2023-06-01",
               "content-type": "application/json"}  # fmt: skip
    status, _, _ = http("POST", f"{a.url}/anthropic/v1/messages", body,
                        {**headers, "x-sim-status": "529"})  # fmt: skip
    assert status == 529
    assert peer(a, "led") == 1
    with redis_server.client() as client:
        wait_for(lambda: not client.keys("*:lease:*"), timeout=2)  # well before its TTL
    status, got, _ = http("POST", f"{b.url}/anthropic/v1/messages", body, headers)
    assert (status, got["x-llmcache"]) == (200, "miss")
    assert peer(b, "led") == 1
    assert sim_count(upstream) == before + 2


def test_a_failed_redis_sends_every_pod_upstream(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    a, b = pair(sidecar, redis_server, upstream)
    before = sim_count(upstream)
    redis_server.stop()
    for proc in (a, b):
        headers, message = ask(claude(proc), QUESTION)
        assert headers["x-llmcache"] == "miss" and message.content[0].text
        assert peer(proc, "fault") == 1
    assert sim_count(upstream) == before + 2
