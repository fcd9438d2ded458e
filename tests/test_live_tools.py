"""Requests offering server tools whose answers depend on the time or act on the world (web
search and fetch, code execution, MCP, file search, a hosted shell) bypass the cache, each
with its own reason, unless ``cacheability.cacheLiveTools`` names the tool. Official SDKs →
sidecar process → upstream simulator."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import SidecarFactory
from tests.support import Proc, llmcache
from tests.test_sidecar import KEY_A, http, sim_count

CLAUDE = "claude-sonnet-4-5"
MCP_SERVER = {"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}}


def claude(proc: Proc) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY_A, base_url=f"{proc.url}/anthropic", max_retries=0)


def gpt(proc: Proc) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-openai-test-0123456789", base_url=f"{proc.url}/openai/v1", max_retries=0
    )


def messages(proc: Proc, text: str, **kw: Any) -> Any:
    return claude(proc).messages.with_raw_response.create(
        model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": text}], **kw
    )


def beta_messages(proc: Proc, text: str, **kw: Any) -> Any:
    return claude(proc).beta.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": text}], **kw
    )


def chat(proc: Proc, text: str, **kw: Any) -> Any:
    params: dict[str, Any] = {"model": "gpt-4o-mini", **kw}
    return gpt(proc).chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": text}], **params
    )


def responses(proc: Proc, text: str, **kw: Any) -> Any:
    return gpt(proc).responses.with_raw_response.create(model="gpt-5-mini", input=text, **kw)


Call = Callable[[Proc, str], Any]

# (route, bypass reason, one request as the SDK sends it)
LIVE: dict[str, tuple[str, str, Call]] = {
    "anthropic-web-search": (
        "anthropic.messages",
        "live_tool_web_search",
        lambda p, t: messages(
            p, t, tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
        ),
    ),
    "anthropic-web-fetch": (
        "anthropic.messages",
        "live_tool_web_fetch",
        lambda p, t: messages(
            p, t, tools=[{"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 2}]
        ),
    ),
    "anthropic-code-execution": (
        "anthropic.messages",
        "live_tool_code_execution",
        lambda p, t: messages(
            p, t, tools=[{"type": "code_execution_20250825", "name": "code_execution"}]
        ),
    ),
    "anthropic-mcp-servers": (
        "anthropic.messages",
        "live_tool_mcp",
        lambda p, t: beta_messages(p, t, mcp_servers=[MCP_SERVER], betas=["mcp-client-2025-11-20"]),
    ),
    "anthropic-thread": (
        "anthropic.messages",
        "stateful_thread",
        lambda p, t: beta_messages(p, t, thread={"type": "create"}),
    ),
    "chat-web-search-options": (
        "openai.chat",
        "live_tool_web_search",
        lambda p, t: chat(p, t, model="gpt-4o-mini-search-preview", web_search_options={}),
    ),
    "chat-search-model": (
        "openai.chat",
        "live_tool_web_search",
        lambda p, t: chat(p, t, model="gpt-5-search-api"),
    ),
    "responses-web-search": (
        "openai.responses",
        "live_tool_web_search",
        lambda p, t: responses(p, t, tools=[{"type": "web_search"}]),
    ),
    "responses-web-search-preview": (
        "openai.responses",
        "live_tool_web_search",
        lambda p, t: responses(p, t, tools=[{"type": "web_search_preview_2025_03_11"}]),
    ),
    "responses-file-search": (
        "openai.responses",
        "live_tool_file_search",
        lambda p, t: responses(
            p, t, tools=[{"type": "file_search", "vector_store_ids": ["vs_68a1"]}]
        ),
    ),
    "responses-mcp": (
        "openai.responses",
        "live_tool_mcp",
        lambda p, t: responses(
            p,
            t,
            tools=[
                {
                    "type": "mcp",
                    "server_label": "deepwiki",
                    "server_url": "https://mcp.deepwiki.com/mcp",
                    "require_approval": "never",
                }
            ],
        ),
    ),
    "responses-code-interpreter": (
        "openai.responses",
        "live_tool_code_interpreter",
        lambda p, t: responses(
            p, t, tools=[{"type": "code_interpreter", "container": {"type": "auto"}}]
        ),
    ),
    "responses-hosted-shell": (
        "openai.responses",
        "live_tool_shell",
        lambda p, t: responses(
            p, t, tools=[{"type": "shell", "environment": {"type": "container_auto"}}]
        ),
    ),
}

# Tools run by the caller (their results come back in the next request) stay cacheable.
CLIENT_TOOLS: dict[str, Call] = {
    "anthropic-custom-tool": lambda p, t: messages(
        p, t, tools=[{"name": "weather", "input_schema": WEATHER}]
    ),
    "anthropic-bash": lambda p, t: messages(
        p, t, tools=[{"type": "bash_20250124", "name": "bash"}]
    ),
    "responses-function": lambda p, t: responses(
        p, t, tools=[{"type": "function", "name": "weather", "parameters": WEATHER}]
    ),
    "responses-local-shell": lambda p, t: responses(
        p, t, tools=[{"type": "shell", "environment": {"type": "local"}}]
    ),
}


@pytest.fixture(scope="module")
def proc(upstream: Proc) -> Iterator[Proc]:
    """One sidecar with the default policy for the whole module."""
    sidecar = llmcache(
        "sidecar",
        "--listen",
        "127.0.0.1:0",
        "--anthropic-upstream",
        upstream.url,
        "--openai-upstream",
        upstream.url,
    )
    yield sidecar
    sidecar.stop()


def bypasses(proc: Proc, route: str, reason: str) -> float:
    text = http("GET", f"{proc.url}/metrics")[2].decode()
    line = f'llmcache_bypass_total{{reason="{reason}",route="{route}"}} '
    found = re.search(re.escape(line) + r"(\S+)", text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("case", sorted(LIVE))
def test_live_tool_requests_bypass_with_their_reason(proc: Proc, upstream: Proc, case: str) -> None:
    route, reason, call = LIVE[case]
    text = f"What is the news about {case} today?"
    before, counted = sim_count(upstream), bypasses(proc, route, reason)
    for _ in range(2):
        raw = call(proc, text)
        assert raw.headers["x-llmcache"] == "bypass"
        raw.parse()  # a normal answer of the simulator
    assert sim_count(upstream) - before == 2  # both identical calls reached the upstream
    assert bypasses(proc, route, reason) - counted == 2


@pytest.mark.parametrize("case", sorted(CLIENT_TOOLS))
def test_client_tools_are_still_cached(proc: Proc, upstream: Proc, case: str) -> None:
    text = f"What should I ask about {case}?"
    before = sim_count(upstream)
    first, second = (CLIENT_TOOLS[case](proc, text) for _ in range(2))
    assert (first.headers["x-llmcache"], second.headers["x-llmcache"]) == ("miss", "hit")
    assert sim_count(upstream) - before == 1


def test_policy_can_cache_a_named_live_tool(
    sidecar: SidecarFactory, upstream: Proc, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("cacheability: {cacheLiveTools: [web_search]}\n")
    proc = sidecar("--policy", str(policy))
    search = [{"type": "web_search_20250305", "name": "web_search"}]
    code = [{"type": "code_execution_20250825", "name": "code_execution"}]
    before = sim_count(upstream)
    got = [messages(proc, "Latest Rust release?", tools=search) for _ in range(2)]
    assert [r.headers["x-llmcache"] for r in got] == ["miss", "hit"]
    assert sim_count(upstream) - before == 1
    # A tool the policy does not name still bypasses, also next to one it names.
    both = [messages(proc, "Latest Rust release?", tools=search + code) for _ in range(2)]
    assert [r.headers["x-llmcache"] for r in both] == ["bypass", "bypass"]
    assert bypasses(proc, "anthropic.messages", "live_tool_code_execution") == 2
    assert sim_count(upstream) - before == 3
