"""Keys, partitions, the L1 and the L2 value format: the parts a wrong answer would come from."""

from __future__ import annotations

import time

import pytest
from llmcache.sidecar import codec, keys
from llmcache.sidecar.l1 import L1
from llmcache.sidecar.layers import CacheRequest, Entry, Selector
from llmcache.sidecar.metrics import Metrics
from llmcache.sidecar.providers.base import Usage
from pydantic import ValidationError

from llmcache.policy import CachePolicySpec, Sharing, load_spec
from llmcache.prices import cost_usd, price_for


def test_canonical_form_ignores_key_order_and_whitespace() -> None:
    a = keys.cache_key("r", "p", {"b": [1, {"y": 2, "x": "é"}], "a": None})
    b = keys.cache_key("r", "p", {"a": None, "b": [1, {"x": "é", "y": 2}]})
    assert a == b
    assert a != keys.cache_key("r", "p", {"a": None, "b": [{"x": "é", "y": 2}, 1]})
    assert a != keys.cache_key("other", "p", {"a": None, "b": [1, {"x": "é", "y": 2}]})
    assert a != keys.cache_key("r", "q", {"a": None, "b": [1, {"x": "é", "y": 2}]})


def test_partition_is_a_hash_of_the_credential_never_the_credential() -> None:
    sharing = Sharing()
    p1 = keys.partition(sharing, {"x-api-key": "sk-ant-secret-1"}, "ns")
    assert "sk-ant-secret-1" not in p1
    assert p1 != keys.partition(sharing, {"x-api-key": "sk-ant-secret-2"}, "ns")
    # "Bearer k" and "k" are the same credential.
    assert keys.partition(sharing, {"authorization": "Bearer k1"}, "ns") == keys.partition(
        sharing, {"x-api-key": "k1"}, "ns"
    )
    anonymous = keys.partition(sharing, {}, "ns")
    assert anonymous != p1
    assert anonymous != keys.partition(sharing, {"x-api-key": "anonymous"}, "ns")


def test_wider_scopes_are_explicit() -> None:
    ns = Sharing(scope="namespace")
    assert keys.partition(ns, {"x-api-key": "a"}, "team-a") == keys.partition(
        ns, {"x-api-key": "b"}, "team-a"
    )
    assert keys.partition(ns, {}, "team-a") != keys.partition(ns, {}, "team-b")
    by_header = Sharing(scope="headers", context_headers=["x-tenant"])
    assert keys.partition(by_header, {"x-tenant": "1", "x-api-key": "a"}, "n") == keys.partition(
        by_header, {"x-tenant": "1", "x-api-key": "b"}, "n"
    )
    assert keys.partition(by_header, {"x-tenant": "1"}, "n") != keys.partition(
        by_header, {"x-tenant": "2"}, "n"
    )
    with pytest.raises(ValidationError, match="contextHeaders"):
        Sharing(scope="headers")


def _req(key: str, ttl: int = 60) -> CacheRequest:
    return CacheRequest(
        route="r", body={}, model="m", stream=False, partition="p", key=key, ttl=ttl
    )


def _entry(text: str, model: str = "m", tags: tuple[str, ...] = ()) -> Entry:
    return Entry(response={"t": text}, model=model, created=time.time(), tags=tags)


async def test_l1_is_bounded_by_entries_and_bytes() -> None:
    l1 = L1(max_entries=3, max_bytes=10_000, metrics=Metrics())
    for i in range(5):
        await l1.put(_req(f"k{i}"), _entry("x" * 10))
    assert len(l1) == 3 and l1.lookup("k0") is None and l1.lookup("k4") is not None
    l1.lookup("k2")  # recently used survives the next eviction
    await l1.put(_req("k5"), _entry("y"))
    assert l1.lookup("k2") is not None and l1.lookup("k3") is None
    small = L1(max_entries=100, max_bytes=1_000, metrics=Metrics())
    for i in range(10):
        await small.put(_req(f"k{i}"), _entry("z" * 200))
    assert small.bytes <= 1_000 and len(small) < 10


async def test_l1_ttl_absolute_and_sliding(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    absolute = L1(10, 10_000, Metrics())
    sliding = L1(10, 10_000, Metrics(), sliding=True)
    for l1 in (absolute, sliding):
        await l1.put(_req("k", ttl=10), _entry("v"))
    now[0] += 8
    assert absolute.lookup("k") is not None and sliding.lookup("k") is not None
    now[0] += 8  # 16 s after the write, 8 s after the last hit
    assert absolute.lookup("k") is None
    assert sliding.lookup("k") is not None


async def test_l1_invalidate_by_selector() -> None:
    l1 = L1(10, 10_000, Metrics())
    await l1.put(_req("a"), _entry("a", model="m1", tags=("x", "y")))
    await l1.put(_req("b"), _entry("b", model="m2", tags=("x",)))
    await l1.put(_req("c"), _entry("c", model="m1"))
    assert await l1.invalidate(Selector(tags_all=("x", "y"))) == 1
    assert await l1.invalidate(Selector(model="m1")) == 1
    assert [k for k in "abc" if l1.lookup(k)] == ["b"]
    assert await l1.invalidate(Selector()) == 1


def test_codec_round_trip_and_rejects_garbage() -> None:
    for text in ("hello", "long answer " * 500):  # stored plain, and compressed
        entry = _entry(text, tags=("t",))
        entry.usage = Usage(10, 20, 3, 4)
        raw = codec.encode(entry)
        back = codec.decode(raw)
        assert (back.response, back.model, back.tags) == (entry.response, entry.model, entry.tags)
        assert back.usage == entry.usage and back.encoded() == entry.encoded()
    assert len(raw) < len(entry.encoded()) / 10
    for garbage in (
        b"",
        b"not an entry",
        b"LLMC\x01" + raw[5:],  # another format version
        raw[:-3],
    ):
        with pytest.raises(codec.CorruptValue):
            codec.decode(garbage)


def test_policy_defaults_bounds_and_files(tmp_path: object) -> None:
    spec = CachePolicySpec()
    assert spec.semantic.threshold == 0.95 and spec.sharing.scope == "credential"
    assert spec.rag.ttl_seconds == 3600 and spec.exact.ttl_seconds == 86400
    with pytest.raises(ValidationError, match="threshold"):
        CachePolicySpec.model_validate({"semantic": {"threshold": 1.5}})
    with pytest.raises(ValidationError, match="maxSize"):
        CachePolicySpec.model_validate({"batching": {"maxSize": 0}})
    with pytest.raises(ValidationError, match="l1MaxBytes"):
        CachePolicySpec.model_validate(
            {
                "exact": {"l1MaxBytes": 600 * 2**20},
                "sidecar": {"resources": {"limits": {"memory": "512Mi"}}},
            }
        )
    with pytest.raises(ValidationError, match="unknownField"):
        CachePolicySpec.model_validate({"unknownField": 1})
    path = tmp_path / "p.yaml"  # type: ignore[operator]
    path.write_text(
        "apiVersion: llmcache.dev/v1alpha1\nkind: CachePolicy\nspec:\n  exact: {ttlSeconds: 5}\n"
    )
    assert load_spec(path).exact.ttl_seconds == 5


def test_prices_match_dated_models_and_overrides() -> None:
    sonnet = price_for("claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.input == 3.0
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")
    assert price_for("unknown-model") is None
    spec = CachePolicySpec.model_validate({"prices": {"my-model": {"input": 1, "output": 2}}})
    assert price_for("my-model", spec.prices) is not None
    # Cache reads are charged at their discounted price, not as input.
    assert cost_usd(sonnet, 0, 0, 1_000_000, 0) == pytest.approx(0.3)
    assert cost_usd(sonnet, 1_000_000, 1_000_000, 0, 0) == pytest.approx(18.0)
