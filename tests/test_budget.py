"""``spec.budget.onExhausted: cacheOnly`` in a real sidecar process: the exhausted state
arrives over the operator's long poll (its real delivery app, in this process), hits are
still served, and a miss is a 429 that the official SDKs raise as their rate-limit error
with our message. No upstream call is made for a refused request."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from llmcache.operator.delivery import create_delivery_app
from llmcache.operator.metrics import OperatorMetrics
from llmcache.operator.store import PolicyRecord, PolicyStore, StatsStore
from llmcache.sidecar.budget import seconds_to_next_period

from llmcache.policy import CachePolicySpec
from tests.conftest import SidecarFactory
from tests.support import serve_app

SPEC = {"budget": {"amountUsd": 1.0, "period": "day", "onExhausted": "cacheOnly"}}


@pytest.fixture
async def operator() -> AsyncIterator[tuple[PolicyStore, str]]:
    store = PolicyStore()
    await store.put(PolicyRecord("apps", "p", 1, CachePolicySpec.model_validate(SPEC)))
    runner, url = await serve_app(create_delivery_app(store, StatsStore(), OperatorMetrics()))
    try:
        yield store, f"{url}/v1/policies/apps/p"
    finally:
        await store.remove("apps", "p")  # ends the long poll still open (a 404)
        await runner.cleanup()


async def claude(client: anthropic.AsyncAnthropic, text: str) -> str:
    """The sidecar's verdict (``x-llmcache``) on a successful answer."""
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": text}]
    )
    assert (await raw.parse()).content
    return raw.headers["x-llmcache"]


async def gpt(client: openai.AsyncOpenAI, text: str) -> str:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    assert raw.parse().choices
    return raw.headers["x-llmcache"]


async def until(predicate: Any, within: float = 20.0) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.1)


async def test_cache_only_serves_hits_and_answers_misses_with_a_429_the_sdks_raise(
    operator: tuple[PolicyStore, str], sidecar: SidecarFactory
) -> None:
    store, policy_url = operator
    proc = sidecar(
        "--policy-url", policy_url, env={"LLMCACHE_POLICY_JSON": json.dumps(SPEC)}
    )  # fmt: skip
    # The SDKs retry a 429 by default (twice, after retry-after): off, to see it at once.
    a = anthropic.AsyncAnthropic(api_key="sk-ant-a", base_url=f"{proc.url}/anthropic",
                                 max_retries=0)  # fmt: skip
    o = openai.AsyncOpenAI(api_key="sk-a", base_url=f"{proc.url}/openai/v1", max_retries=0)
    assert await claude(a, "cached before") == "miss"
    assert await gpt(o, "cached before") == "miss"
    spec = CachePolicySpec.model_validate(SPEC)
    await store.put(PolicyRecord("apps", "p", 1, spec, budget_exhausted=True))

    async def refused() -> anthropic.RateLimitError | None:
        try:
            await claude(a, "a new question")
        except anthropic.RateLimitError as exc:
            return exc
        return None

    exc = await until(refused)  # the long poll delivers it, without a restart
    assert "budget of 1 USD per day (UTC) is spent" in exc.message
    assert exc.message.startswith("Error code: 429") and "cacheOnly" in exc.message
    assert exc.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert 0 < int(exc.response.headers["retry-after"]) <= 86_400
    with pytest.raises(openai.RateLimitError, match="budget of 1 USD per day"):
        await gpt(o, "another new question")
    # hits are still served, byte for byte what was cached
    assert await claude(a, "cached before") == "hit"
    assert await gpt(o, "cached before") == "hit"
    async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/stats") as resp:
        stats = await resp.json()
    assert stats["errors"] == 2 and stats["hits"] == 2 and stats["misses"] == 2

    await store.put(PolicyRecord("apps", "p", 1, spec, budget_exhausted=False))

    async def served_again() -> bool:
        try:
            return await claude(a, "a new question") == "miss"
        except anthropic.RateLimitError:
            return False

    await until(served_again)


def test_retry_after_counts_to_the_end_of_the_utc_period() -> None:
    at = datetime.datetime(2026, 2, 28, 23, 0, tzinfo=datetime.UTC)
    assert seconds_to_next_period("day", at) == 3600
    assert seconds_to_next_period("month", at) == 3600
    assert seconds_to_next_period("month", at.replace(day=1)) == 28 * 86_400 - 23 * 3600
