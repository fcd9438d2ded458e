"""The sidecar as an application sees it: official SDKs → sidecar process → upstream simulator.

Every test talks real HTTP between real processes; the only stand-in is the simulator of
the paid APIs, which speaks their wire formats (including streaming and errors).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import SidecarFactory
from tests.support import Proc, llmcache, wait_for

KEY_A = "sk-ant-test-tenant-a-0123456789"
KEY_B = "sk-ant-test-tenant-b-9876543210"


def sim_count(upstream: Proc, route: str | None = None) -> int:
    with urllib.request.urlopen(f"{upstream.url}/_sim/stats") as resp:
        stats = json.load(resp)
    return int(stats["total"] if route is None else stats["requests"].get(route, 0))


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def stats(proc: Proc) -> dict[str, Any]:
    return json.loads(http("GET", f"{proc.url}/stats")[2])


def claude(proc: Proc, key: str = KEY_A) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=f"{proc.url}/anthropic", max_retries=0)


def gpt(proc: Proc, key: str = "sk-openai-test-0123456789") -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{proc.url}/openai/v1", max_retries=0)


def ask(
    client: anthropic.Anthropic, text: str = "What is contract law?", **kw: Any
) -> tuple[Any, Any]:
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 400,
        "messages": [{"role": "user", "content": text}],
        **kw,
    }
    raw = client.messages.with_raw_response.create(**params)
    return raw.headers, raw.parse()


# -- exact caching ------------------------------------------------------------------------


def test_repeated_anthropic_request_reaches_upstream_once(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar()
    before = sim_count(upstream)
    h1, first = ask(claude(proc), "Explain consideration in contract law.")
    h2, second = ask(claude(proc), "Explain consideration in contract law.")
    assert (h1["x-llmcache"], h2["x-llmcache"], h2["x-llmcache-layer"]) == ("miss", "hit", "l1")
    assert second.model_dump() == first.model_dump()
    assert sim_count(upstream) - before == 1


def test_openai_chat_responses_and_embeddings_are_cached(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar()
    client = gpt(proc)
    before = sim_count(upstream)
    for _ in range(2):
        chat = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Name three primes."}]
        )
        resp = client.responses.with_raw_response.create(
            model="gpt-5-mini", input="Say hi in French."
        )
        emb = client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["alpha", "beta"]
        )
    assert [r.headers["x-llmcache"] for r in (chat, resp, emb)] == ["hit", "hit", "hit"]
    assert chat.parse().choices[0].message.content
    assert resp.parse().output_text
    assert len(emb.parse().data) == 2 and len(emb.parse().data[0].embedding) > 0
    assert sim_count(upstream) - before == 3


def test_stream_fills_cache_for_plain_client_and_back(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar()
    client = claude(proc)
    params: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 500,
        "messages": [{"role": "user", "content": "Describe the offer and acceptance rule."}],
    }
    before = sim_count(upstream)
    with client.messages.stream(**params) as stream:
        streamed = stream.get_final_message()
    headers, plain = ask(
        client,
        **{k: v for k, v in params.items() if k != "messages"},
        text="Describe the offer and acceptance rule.",
    )
    assert headers["x-llmcache"] == "hit"
    assert plain.content[0].text == streamed.content[0].text
    assert plain.stop_reason == streamed.stop_reason == "end_turn"
    assert plain.usage.output_tokens == streamed.usage.output_tokens
    assert plain.usage.input_tokens == streamed.usage.input_tokens

    # non-stream → stream: a fresh question asked plainly first, then streamed.
    _, plain2 = ask(
        client, "What is a unilateral contract?", model="claude-haiku-4-5", max_tokens=500
    )
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=500,
        messages=[{"role": "user", "content": "What is a unilateral contract?"}],
    ) as stream:
        texts = list(stream.text_stream)
        replayed = stream.get_final_message()
    assert len(texts) > 1, "a replay is a real event stream, not one blob"
    assert "".join(texts) == plain2.content[0].text == replayed.content[0].text
    assert replayed.stop_reason == plain2.stop_reason
    assert replayed.usage.output_tokens == plain2.usage.output_tokens
    assert sim_count(upstream) - before == 2


def test_openai_stream_replays_match_plain(sidecar: SidecarFactory, upstream: Proc) -> None:
    proc = sidecar()
    client = gpt(proc)
    messages = [{"role": "user", "content": "List the planets."}]
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    plain = raw.parse()
    assert raw.headers["x-llmcache"] == "hit"
    assert plain.choices[0].message.content == streamed_text
    assert plain.choices[0].finish_reason == "stop"
    assert plain.usage is not None and chunks[-1].usage is not None
    assert plain.usage.completion_tokens == chunks[-1].usage.completion_tokens

    # A client that did not ask for usage never sees the usage chunk, hit or miss.
    again = list(client.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    assert all(c.usage is None for c in again)
    assert "".join(c.choices[0].delta.content or "" for c in again if c.choices) == streamed_text

    with client.responses.stream(model="gpt-5", input="Define tort.") as stream:
        final = stream.get_final_response()
    plain_resp = client.responses.with_raw_response.create(model="gpt-5", input="Define tort.")
    assert plain_resp.headers["x-llmcache"] == "hit"
    assert plain_resp.parse().output_text == final.output_text


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-opus-4-5"},
        {"extra_body": {"temperature": 0.2}},
        {"text": "What is tort law?"},
        {"max_tokens": 100},
        {"system": "Answer like a pirate."},
    ],
)
def test_answer_changing_fields_miss(sidecar: SidecarFactory, change: dict[str, Any]) -> None:
    proc = sidecar()
    client = claude(proc)
    ask(client)
    headers, _ = ask(client, **change)
    assert headers["x-llmcache"] == "miss"


def test_fields_that_do_not_change_the_answer_still_hit(sidecar: SidecarFactory) -> None:
    proc = sidecar()
    client = claude(proc)
    ask(client)
    headers, _ = ask(client, metadata={"user_id": "someone-else"})
    assert headers["x-llmcache"] == "hit"
    # JSON key order and whitespace do not matter either (with the SDK's own API version: the
    # version is key material).
    version = client.default_headers["anthropic-version"]
    body = {
        "messages": [{"content": "What is contract law?", "role": "user"}],
        "max_tokens": 400,
        "model": "claude-sonnet-4-5",
    }
    status, hdrs, _ = http(
        "POST",
        f"{proc.url}/anthropic/v1/messages",
        json.dumps(body, indent=3).encode(),
        {"x-api-key": KEY_A, "anthropic-version": version, "content-type": "application/json"},
    )
    assert (status, hdrs["x-llmcache"]) == (200, "hit")


def test_two_credentials_never_share_an_entry(sidecar: SidecarFactory, upstream: Proc) -> None:
    proc = sidecar()
    before = sim_count(upstream)
    ha, _ = ask(claude(proc, KEY_A))
    hb, _ = ask(claude(proc, KEY_B))
    hb2, _ = ask(claude(proc, KEY_B))
    assert (ha["x-llmcache"], hb["x-llmcache"], hb2["x-llmcache"]) == ("miss", "miss", "hit")
    assert sim_count(upstream) - before == 2
    # OpenAI-style bearer credentials are partitioned the same way.
    c1 = gpt(proc, "sk-one").chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    c2 = gpt(proc, "sk-two").chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert (c1.headers["x-llmcache"], c2.headers["x-llmcache"]) == ("miss", "miss")


# -- errors are passed through and never cached ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (529, anthropic.InternalServerError),
        (500, anthropic.InternalServerError),
        (429, anthropic.RateLimitError),
    ],
)
def test_upstream_errors_pass_through_and_are_not_cached(
    sidecar: SidecarFactory, upstream: Proc, status: int, exc: type[Exception]
) -> None:
    proc = sidecar()
    client = claude(proc)
    before = sim_count(upstream)
    for _ in range(2):
        with pytest.raises(exc) as info:
            ask(client, "Will this fail?", extra_headers={"x-sim-status": str(status)})
        err = info.value
        assert isinstance(err, anthropic.APIStatusError) and err.status_code == status
        assert err.response.headers["x-llmcache"] == "miss"
        if status in (429, 529):
            assert err.response.headers["retry-after"] == "1"
    assert sim_count(upstream) - before == 2
    headers, message = ask(client, "Will this fail?")
    assert headers["x-llmcache"] == "miss" and message.content


def test_interrupted_and_truncated_answers_are_not_cached(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar()
    client = claude(proc)
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Tell me a long story about contracts."}],
    }
    cut = {"x-sim-stream-fault": "disconnect"}
    # The SDK's error type for a cut stream varies with the transport.
    with pytest.raises(Exception), client.messages.stream(**params, extra_headers=cut) as s:  # noqa: B017
        s.get_final_message()
    failed = {"x-sim-stream-fault": "error"}
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(**params, extra_headers=failed) as s,
    ):
        s.get_final_message()
    headers, _ = ask(client, "Tell me a long story about contracts.", max_tokens=300)
    assert headers["x-llmcache"] == "miss"

    short = {"model": "claude-sonnet-4-5", "max_tokens": 3}
    h1, m1 = ask(client, "Tell me a long story about torts.", **short)
    h2, _ = ask(client, "Tell me a long story about torts.", **short)
    assert m1.stop_reason == "max_tokens"
    assert (h1["x-llmcache"], h2["x-llmcache"]) == ("miss", "miss")


# -- bad input ------------------------------------------------------------------------------


def test_bad_input_gets_clear_errors(sidecar: SidecarFactory, tmp_path: Any) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("limits:\n  maxBodyBytes: 2048\n")
    proc = sidecar("--policy", str(policy))
    json_headers = {"content-type": "application/json", "x-api-key": KEY_A}
    status, headers, body = http(
        "POST", f"{proc.url}/anthropic/v1/messages", b"{not json", json_headers
    )
    assert status == 400 and "not valid JSON" in json.loads(body)["error"]["message"]
    with pytest.raises(anthropic.APIStatusError) as info:
        ask(claude(proc), "x" * 5000)
    assert info.value.status_code == 413 and "2048" in info.value.message
    status, _, body = http("POST", f"{proc.url}/nowhere", b"{}")
    assert status == 404 and "/anthropic/v1/messages" in json.loads(body)["error"]["message"]
    bearer = {"authorization": "Bearer sk-x", "content-type": "application/json"}
    status, _, body = http("POST", f"{proc.url}/openai/v1/chat/completions", b"[1, 2]", bearer)
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    # The process is still fine.
    headers, _ = ask(claude(proc), "still there?")
    assert headers["x-llmcache"] == "miss"


def test_other_paths_and_stateful_requests_bypass(sidecar: SidecarFactory, upstream: Proc) -> None:
    proc = sidecar()
    client = gpt(proc)
    raw = client.models.with_raw_response.list()
    assert raw.headers["x-llmcache"] == "bypass"
    stored = client.responses.create(model="gpt-5-mini", input="remember me", store=True)
    for kwargs in ({"store": True}, {"previous_response_id": stored.id}):
        before = sim_count(upstream)
        for _ in range(2):
            r = client.responses.with_raw_response.create(
                model="gpt-5-mini", input="hello", **kwargs
            )
            assert r.headers["x-llmcache"] == "bypass"
        assert sim_count(upstream) - before == 2


def test_cache_control_headers_ttl_and_tags(sidecar: SidecarFactory, upstream: Proc) -> None:
    proc = sidecar()
    client = claude(proc)
    ask(client, "cache control")
    h, _ = ask(client, "cache control", extra_headers={"cache-control": "no-cache"})
    assert h["x-llmcache"] == "miss"  # refreshed
    h, _ = ask(client, "cache control")
    assert h["x-llmcache"] == "hit"
    for _ in range(2):
        h, _ = ask(client, "never stored", extra_headers={"cache-control": "no-store"})
        assert h["x-llmcache"] == "bypass"

    ask(client, "short lived", extra_headers={"x-llmcache-ttl": "1"})
    wait_for(lambda: ask(client, "short lived")[0]["x-llmcache"] == "miss", timeout=5, interval=0.2)

    ask(client, "tagged", extra_headers={"x-llmcache-tags": "docs,v1"})
    ask(client, "untagged")
    status, _, body = http(
        "POST", f"{proc.url}/admin/flush", json.dumps({"tagsAny": ["v1"]}).encode()
    )
    assert status == 200 and json.loads(body)["removed"] == 1
    assert ask(client, "tagged")[0]["x-llmcache"] == "miss"
    assert ask(client, "untagged")[0]["x-llmcache"] == "hit"
    with pytest.raises(anthropic.BadRequestError):
        ask(client, "bad ttl", extra_headers={"x-llmcache-ttl": "forever"})


def test_concurrent_identical_requests_are_coalesced(sidecar: SidecarFactory) -> None:
    slow = llmcache("upstream-sim", "--listen", "127.0.0.1:0", "--ttft-ms", "400")
    try:
        proc = sidecar("--anthropic-upstream", slow.url)
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: ask(claude(proc), "coalesce me"), range(8)))
        assert len({r[1].content[0].text for r in results}) == 1
        assert sim_count(slow) == 1
        assert sorted(r[0]["x-llmcache"] for r in results).count("miss") == 1
    finally:
        slow.stop()


def test_policy_file_change_applies_without_restart(sidecar: SidecarFactory, tmp_path: Any) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("cacheability:\n  excludeModels: []\n")
    proc = sidecar("--policy", str(policy))
    client = claude(proc)
    ask(client)
    assert ask(client)[0]["x-llmcache"] == "hit"
    policy.write_text("cacheability:\n  excludeModels: ['claude-sonnet-*']\n")
    wait_for(lambda: ask(client)[0]["x-llmcache"] == "bypass", timeout=10, interval=0.2)
    policy.write_text("semantic: {threshold: 7}\n")  # invalid: ignored, the last good one stays
    wait_for(
        lambda: (
            b'llmcache_policy_reloads_total{result="invalid"} 1.0'
            in http("GET", f"{proc.url}/metrics")[2]
        ),
        timeout=10,
        interval=0.2,
    )
    assert ask(client)[0]["x-llmcache"] == "bypass"


def test_metrics_and_stats_report_hits_and_savings(sidecar: SidecarFactory) -> None:
    proc = sidecar()
    client = claude(proc)
    ask(client, "metrics please")
    ask(client, "metrics please")
    doc = stats(proc)
    assert (doc["requests"], doc["hits"], doc["misses"]) == (2, 1, 1)
    assert doc["hitRate"] == 0.5 and doc["layers"]["l1"]["hits"] == 1
    assert doc["savedUsd"] > 0 and doc["tokensSaved"] > 0
    text = http("GET", f"{proc.url}/metrics")[2].decode()
    assert 'llmcache_requests_total{layer="l1",result="hit",route="anthropic.messages"} 1.0' in text
    assert "llmcache_saved_usd_total" in text and "llmcache_request_duration_seconds_bucket" in text


def test_provider_prompt_caching_passes_through_and_is_priced_as_cache_reads(
    sidecar: SidecarFactory,
) -> None:
    proc = sidecar()
    client = claude(proc)
    system = [
        {
            "type": "text",
            "text": "You are a contracts tutor. " + "Be precise and cite the rule. " * 400,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    params: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 4000, "system": system}
    h1, first = ask(client, "What is estoppel?", **params)
    assert h1["x-llmcache"] == "miss" and first.usage.cache_creation_input_tokens > 0
    h2, second = ask(client, "What is estoppel?", **params)
    assert h2["x-llmcache"] == "hit"
    assert second.usage.cache_creation_input_tokens == first.usage.cache_creation_input_tokens
    usage = first.usage
    saved = stats(proc)["savedUsd"]
    # Sonnet list prices: input $3, output $15, cache read $0.30 per million tokens.
    expected = (
        usage.input_tokens * 3.0
        + usage.output_tokens * 15.0
        + (usage.cache_creation_input_tokens + (usage.cache_read_input_tokens or 0)) * 0.3
    ) / 1e6
    assert saved == pytest.approx(expected, rel=1e-3)
