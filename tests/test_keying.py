"""A hit is this request's answer: everything a client can vary that may change the answer
(body fields, headers, the query string, the entry's expiry) keeps two requests apart, and
what cannot change it does not cost a hit. Official SDKs and raw HTTP against real sidecar
processes, in front of the simulator and of small upstreams written here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer, serve_app, wait_for
from tests.test_sidecar import KEY_A, ask, claude, http, sim_count

MESSAGES = "/anthropic/v1/messages"
CHAT = "/openai/v1/chat/completions"


def anthropic_body(text: str) -> bytes:
    return json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 400,
            "messages": [{"role": "user", "content": text}],
        }
    ).encode()


def chat_body(text: str) -> bytes:
    return json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    ).encode()


ANTHROPIC_HEADERS = {
    "x-api-key": KEY_A,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
OPENAI_HEADERS = {"authorization": "Bearer sk-openai-key", "content-type": "application/json"}


def post(proc: Proc, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    status, got, payload = http("POST", proc.url + path, body, headers)
    return status, {k.lower(): v for k, v in got.items()}.get("x-llmcache", ""), payload


# -- 1. headers and the query string ------------------------------------------------------------

# (path, base headers, body, header or query variant) pairs that must each reach the upstream.
ANSWER_CHANGING = [
    (MESSAGES, ANTHROPIC_HEADERS, {"anthropic-beta": "context-1m-2025-08-07"}, ""),
    (MESSAGES, ANTHROPIC_HEADERS, {"anthropic-beta": "output-128k-2025-02-19"}, ""),
    (MESSAGES, ANTHROPIC_HEADERS, {"anthropic-version": "2023-01-01"}, ""),
    (MESSAGES, ANTHROPIC_HEADERS, {"anthropic-workspace-id": "wrkspc_1"}, ""),
    (MESSAGES, ANTHROPIC_HEADERS, {"anthropic-some-future-flag": "on"}, ""),
    (MESSAGES, ANTHROPIC_HEADERS, {}, "?beta=true"),
    (CHAT, OPENAI_HEADERS, {"openai-organization": "org-1"}, ""),
    (CHAT, OPENAI_HEADERS, {"openai-project": "proj_1"}, ""),
    (CHAT, OPENAI_HEADERS, {"openai-beta": "assistants=v2"}, ""),
    (CHAT, OPENAI_HEADERS, {"openai-unknown-option": "1"}, ""),
    (CHAT, OPENAI_HEADERS, {}, "?api-version=2024-10-21"),
]


@pytest.mark.parametrize(("path", "base", "extra", "query"), ANSWER_CHANGING)
def test_a_header_or_query_that_can_change_the_answer_reaches_the_upstream(
    sidecar: SidecarFactory,
    upstream: Proc,
    path: str,
    base: dict[str, str],
    extra: dict[str, str],
    query: str,
) -> None:
    proc = sidecar()
    body = (anthropic_body if path == MESSAGES else chat_body)(f"variant {extra} {query}")
    assert post(proc, path, body, base)[:2] == (200, "miss")
    assert post(proc, path, body, base)[:2] == (200, "hit")
    before = sim_count(upstream)
    status, layer, _ = post(proc, path + query, body, {**base, **extra})
    assert (status, layer) == (200, "miss"), f"{extra or query} was served the plain answer"
    assert sim_count(upstream) == before + 1
    # The variant is cached under its own key.
    assert post(proc, path + query, body, {**base, **extra})[:2] == (200, "hit")


NEUTRAL = {
    "user-agent": "Anthropic/Python 9.9.9",
    "x-stainless-retry-count": "2",
    "x-stainless-os": "Plan9",
    "x-stainless-read-timeout": "60",
    "idempotency-key": "stainless-python-retry-abc",
    "x-request-id": "req-123",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "accept-encoding": "br",
    "anthropic-dangerous-direct-browser-access": "true",
}


def test_headers_that_cannot_change_the_answer_do_not_cost_a_hit(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar()
    body = anthropic_body("neutral headers")
    assert post(proc, MESSAGES, body, ANTHROPIC_HEADERS)[1] == "miss"
    for name, value in NEUTRAL.items():
        assert post(proc, MESSAGES, body, {**ANTHROPIC_HEADERS, name: value})[1] == "hit", name


def test_betas_through_the_sdk_are_keyed_as_a_set(sidecar: SidecarFactory, upstream: Proc) -> None:
    proc = sidecar()
    client = claude(proc)

    def beta(betas: list[str]) -> str:
        raw = client.beta.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=400,
            messages=[{"role": "user", "content": "betas through the SDK"}],
            betas=betas,
        )
        return raw.headers["x-llmcache"]

    assert ask(client, "betas through the SDK")[0]["x-llmcache"] == "miss"
    assert beta(["context-1m-2025-08-07"]) == "miss"
    assert beta(["output-128k-2025-02-19"]) == "miss"
    assert beta(["context-1m-2025-08-07", "output-128k-2025-02-19"]) == "miss"
    assert beta(["output-128k-2025-02-19", "context-1m-2025-08-07"]) == "hit"  # same set


def test_organization_and_project_through_the_sdk_are_key_material(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar()

    def chat(**client_kw: str) -> str:
        client = openai.OpenAI(
            api_key="sk-openai-key", base_url=f"{proc.url}/openai/v1", max_retries=0, **client_kw
        )
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "org and project"}]
        )
        return raw.headers["x-llmcache"]

    assert chat() == "miss"
    assert chat(organization="org-a") == "miss"
    assert chat(organization="org-b") == "miss"
    assert chat(organization="org-a", project="proj-1") == "miss"
    assert chat(organization="org-a") == "hit"


# -- 2. a copy never outlives its original -------------------------------------------------------


def test_an_entry_read_through_another_sidecar_expires_on_time(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc
) -> None:
    writer = sidecar("--redis-url", redis_server.url)
    reader = sidecar("--redis-url", redis_server.url)  # default TTL: 24 h
    short = {"x-llmcache-ttl": "2"}
    assert ask(claude(writer), "short-lived", extra_headers=short)[0]["x-llmcache"] == "miss"
    with redis_server.client() as r:
        wait_for(lambda: r.keys("llmcache:*:e:*"), timeout=5, what="entry in Redis")
        got = ask(claude(reader), "short-lived")[0]
        assert (got["x-llmcache"], got["x-llmcache-layer"]) == ("hit", "l2")
        assert ask(claude(reader), "short-lived")[0]["x-llmcache-layer"] == "l1"  # promoted
        wait_for(lambda: not r.keys("llmcache:*:e:*"), timeout=10, what="entry expired")
    before = sim_count(upstream)
    assert ask(claude(reader), "short-lived")[0]["x-llmcache"] == "miss"
    assert sim_count(upstream) == before + 1


# -- 7. a refresh replaces what L1 holds ---------------------------------------------------------


@pytest.fixture
async def growing_upstream() -> AsyncIterator[str]:
    """An Anthropic-shaped upstream whose answers grow: the n-th is n KiB long."""
    calls = 0

    async def messages(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await request.read()
        text = f"answer {calls} " + "x" * (1024 * calls)
        return web.json_response(message(text))

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner, url = await serve_app(app)
    yield url
    await runner.cleanup()


def message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 5},
    }


async def test_a_refresh_too_large_for_l1_does_not_leave_the_old_answer_there(
    sidecar: SidecarFactory,
    redis_server: RedisServer,
    growing_upstream: str,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("exact:\n  l1MaxBytes: 2500\n")
    proc = sidecar(
        "--policy", str(policy), "--redis-url", redis_server.url,
        "--anthropic-upstream", growing_upstream,
    )  # fmt: skip
    url = proc.url + MESSAGES
    body = anthropic_body("grows")
    async with aiohttp.ClientSession(headers=ANTHROPIC_HEADERS) as session:

        async def call(**headers: str) -> tuple[str, str]:
            async with session.post(url, data=body, headers=headers) as resp:
                doc = await resp.json()
                return resp.headers["x-llmcache"], doc["content"][0]["text"].split(" x")[0]

        assert await call() == ("miss", "answer 1")
        assert await call() == ("hit", "answer 1")
        assert await call(**{"cache-control": "no-cache"}) == ("miss", "answer 2")
        # The new answer is too large for this L1; L2 holds it, and L1 must not answer.
        assert await call() == ("hit", "answer 2")


# -- the request target --------------------------------------------------------------------------


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server of an attacker's choosing, recording what reaches it."""
    seen: list[bytes] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.headers.get("x-api-key", "").encode())
        return web.json_response(message("poisoned"))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner, url = await serve_app(app)
    yield url.removeprefix("http://"), seen
    await runner.cleanup()


async def raw_request(proc: Proc, head: str, body: bytes = b"") -> tuple[int, bytes]:
    host, port = proc.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


async def test_an_absolute_form_target_cannot_send_the_call_to_another_host(
    sidecar: SidecarFactory, upstream: Proc, elsewhere: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("sharing:\n  scope: namespace\n")
    proc = sidecar("--policy", str(policy))
    authority, seen = elsewhere
    body = anthropic_body("absolute form")
    head = (
        f"POST http://{authority}/anthropic/v1/messages HTTP/1.1\r\nHost: {authority}\r\n"
        f"x-api-key: {KEY_A}\r\nanthropic-version: 2023-06-01\r\n"
        "content-type: application/json\r\nConnection: close\r\n"
    )
    status, payload = await raw_request(proc, head, body)
    assert status == 400 and b"not a forward proxy" in payload
    assert seen == []
    # Passthrough routes too.
    head2 = head.replace("/anthropic/v1/messages", "/anthropic/v1/models").replace("POST", "GET")
    assert (await raw_request(proc, head2))[0] == 400
    assert seen == []
    # Another tenant's ordinary request is answered by the real upstream.
    status, layer, payload = post(proc, MESSAGES, body, {**ANTHROPIC_HEADERS, "x-api-key": "k2"})
    assert (status, layer) == (200, "miss") and b"poisoned" not in payload
    # An absolute-form target that names the sidecar itself is fine.
    own = proc.url.removeprefix("http://")
    mine = head.replace(authority, own)
    assert (await raw_request(proc, mine, body))[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/openai/v1/../../admin/flush",
        "/openai/v1/%2e%2e/%2E%2E/x",
        "/anthropic/./v1/messages",
        "/rag/docs/collections/../../secret",
    ],
)
async def test_dot_segments_are_refused(
    sidecar: SidecarFactory, upstream: Proc, path: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "rag:\n  enabled: true\n  upstreams: [{name: docs, kind: qdrant, url: "
        f"'{upstream.url}'}}]\n"
    )
    proc = sidecar("--policy", str(policy))
    before = sim_count(upstream)
    head = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY_A}\r\n"
        "authorization: Bearer k\r\nConnection: close\r\n"
    )
    status, payload = await raw_request(proc, head)
    assert status in (400, 404), payload
    if status == 400:
        assert b"dot segments" in payload
    assert sim_count(upstream) == before


# -- bodies that once made the sidecar fail ------------------------------------------------------


ROUTES = (MESSAGES, CHAT, "/openai/v1/responses", "/openai/v1/embeddings")


def test_deeply_nested_bodies_never_get_a_sidecar_500(sidecar: SidecarFactory) -> None:
    proc = sidecar()
    for route in ROUTES:
        headers = ANTHROPIC_HEADERS if route == MESSAGES else OPENAI_HEADERS
        for depth in (200, 600, 990, 5000):
            nested = "[" * depth + "]" * depth
            text = f'{{"model": "m", "input": "x", "messages": [], "metadata": {nested}}}'
            status, _, payload = http("POST", proc.url + route, text.encode(), headers)
            assert status < 500, (route, depth, payload)
            if depth == 5000:  # too deep for any JSON reader here: the sidecar's own 400
                assert status == 400 and b"nested too deeply" in payload


def test_a_lone_surrogate_is_keyed_not_a_500(sidecar: SidecarFactory, upstream: Proc) -> None:
    proc = sidecar()
    for route in (MESSAGES, CHAT):
        make = anthropic_body if route == MESSAGES else chat_body
        headers = ANTHROPIC_HEADERS if route == MESSAGES else OPENAI_HEADERS
        body = make("a lone surrogate \\ud800 here").replace(b"\\\\ud800", b"\\ud800")
        other = make("a lone surrogate \\udbff here").replace(b"\\\\udbff", b"\\udbff")
        assert b"\\ud800" in body and b"\\\\" not in body
        first = post(proc, route, body, headers)
        assert first[0] < 500, first
        second = post(proc, route, other, headers)
        assert second[0] < 500 and second[1] != "hit"  # another surrogate is another key
        if first[0] == 200:
            assert post(proc, route, body, headers)[1] == "hit"
