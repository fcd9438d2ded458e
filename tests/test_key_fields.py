"""Randomized: two requests that differ in exactly one body field or header, taken from the
official SDKs' own parameter lists, get different keys (or bypass the cache), unless
``docs/cache-key.md`` documents that field or header as not changing the answer; and a
field documented that way never splits the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anthropic.types.message_create_params as anthropic_messages
import openai.types.chat.completion_create_params as openai_chat
import openai.types.embedding_create_params as openai_embeddings
import openai.types.responses.response_create_params as openai_responses
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from llmcache.sidecar import keys
from llmcache.sidecar.providers import PROVIDERS

from llmcache.policy import Sharing

DOC = Path(__file__).resolve().parent.parent / "docs" / "cache-key.md"

SDK_FIELDS = {
    "anthropic.messages": sorted(anthropic_messages.MessageCreateParamsBase.__annotations__),
    "openai.chat": sorted(openai_chat.CompletionCreateParamsBase.__annotations__),
    "openai.responses": sorted(openai_responses.ResponseCreateParamsBase.__annotations__),
    "openai.embeddings": sorted(openai_embeddings.EmbeddingCreateParams.__annotations__),
}
BASE: dict[str, dict[str, Any]] = {
    "anthropic.messages": {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "openai.chat": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    "openai.responses": {"model": "gpt-4o-mini", "input": "hi"},
    "openai.embeddings": {"model": "text-embedding-3-small", "input": "hi"},
}
SECTIONS = {
    "anthropic.messages": "Anthropic Messages",
    "openai.chat": "OpenAI Chat Completions",
    "openai.responses": "OpenAI Responses",
    "openai.embeddings": "OpenAI Embeddings",
    "headers": "Headers and the query string",
}


def documented_drops() -> dict[str, set[str]]:
    """Field and header names the doc's tables mark ``drop``, per section."""
    drops: dict[str, set[str]] = {}
    section = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            section = next((k for k, title in SECTIONS.items() if title in line), "")
        cells = [c.strip() for c in line.split("|")]
        if section and len(cells) > 3 and cells[2] == "drop":
            names = {n.lower() for n in re.findall(r"`([A-Za-z0-9_*-]+)`", cells[1])}
            drops.setdefault(section, set()).update(names)
    return drops


DROPS = documented_drops()
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
SHARING = Sharing()


def decide(route: str, body: dict[str, Any], variant: str = "") -> str:
    """The key the sidecar would use, or ``bypass:<reason>``."""
    provider = PROVIDERS[route]
    reason = provider.uncacheable_reason(body)
    if reason:
        return f"bypass:{reason}"
    partition = keys.partition(SHARING, {"x-api-key": "k"}, "ns", variant)
    return keys.cache_key(route, partition, provider.key_material(body))


def test_the_doc_names_the_fields_it_drops() -> None:
    assert {"stream", "metadata", "user_profile_id"} <= DROPS["anthropic.messages"]
    assert {"user", "store"} <= DROPS["openai.chat"]
    assert {"user-agent", "idempotency-key", "traceparent"} <= DROPS["headers"]


def test_the_doc_covers_every_sdk_field() -> None:
    """A field new in the SDK must be decided in the doc (it is key material until then)."""
    text = DOC.read_text()
    missing = {
        route: [f for f in fields if f"`{f}`" not in text] for route, fields in SDK_FIELDS.items()
    }
    assert not any(missing.values()), missing


@pytest.mark.parametrize("route", sorted(SDK_FIELDS))
@settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
def test_one_body_field_apart(route: str, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(SDK_FIELDS[route]), label="field")
    a = data.draw(json_value, label="a")
    b = data.draw(json_value, label="b")
    assume(a != b and not _equivalent(field, a, b))
    key_a = decide(route, {**BASE[route], field: a})
    key_b = decide(route, {**BASE[route], field: b})
    if key_a.startswith("bypass:") or key_b.startswith("bypass:"):
        return  # the upstream is called for that request anyway
    if field in DROPS[route] or field == "stream":
        assert key_a == key_b, f"{field} is documented as not changing the answer"
    else:
        assert key_a != key_b, f"{field}={a!r} and {field}={b!r} share one entry"


HEADERS = {
    "anthropic": [
        "anthropic-version", "anthropic-beta", "anthropic-workspace-id",
        "anthropic-user-profile-id", "anthropic-dangerous-direct-browser-access",
        "Anthropic-Worker-ID", "user-agent",
        "x-stainless-retry-count", "x-stainless-os", "idempotency-key", "traceparent",
        "x-request-id", "accept",
    ],
    "openai": [
        "OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", "openai-poll-after-ms",
        "user-agent", "X-Stainless-Lang", "x-stainless-timeout", "Idempotency-Key", "tracestate",
        "x-client-request-id", "content-type",
    ],
}  # fmt: skip
token = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=10)


@pytest.mark.parametrize("family", sorted(HEADERS))
@settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
def test_one_header_or_query_apart(family: str, data: st.DataObject) -> None:
    prefix = f"{family}-"
    name = data.draw(st.sampled_from(HEADERS[family]) | token.map(lambda t: prefix + t.lower()))
    a, b = data.draw(token), data.draw(token)
    assume(a != b and "," not in a + b)
    route = "anthropic.messages" if family == "anthropic" else "openai.chat"
    key_a = decide(route, BASE[route], keys.variant(family, [(name.encode(), a.encode())], ""))
    key_b = decide(route, BASE[route], keys.variant(family, [(name.encode(), b.encode())], ""))
    lower = name.lower()
    neutral = lower in DROPS["headers"] or lower.startswith("x-stainless-")
    if lower.startswith(prefix) and lower not in DROPS["headers"]:
        neutral = False
    if neutral or (not lower.startswith(prefix) and lower not in keys.ANSWER_HEADERS[family][1]):
        assert key_a == key_b, f"{name} must not split the key"
    else:
        assert key_a != key_b, f"{name}: {a} and {name}: {b} share one entry"
    query_a = decide(route, BASE[route], keys.variant(family, [], f"q={a}"))
    query_b = decide(route, BASE[route], keys.variant(family, [], f"q={b}"))
    assert query_a != query_b


def _equivalent(field: str, a: Any, b: Any) -> bool:
    """Spellings the doc declares equal (``stop: "x"`` ≡ ``["x"]``)."""
    if field == "stop":
        return (a if isinstance(a, list) else [a]) == (b if isinstance(b, list) else [b])
    return False
