"""Keys, partitions, the L1 and the L2 value format: the parts a wrong answer would come from."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from llmcache.sidecar import codec, keys
from llmcache.sidecar.l1 import L1
from llmcache.sidecar.layers import CacheRequest, Entry, Selector
from llmcache.sidecar.metrics import Metrics
from llmcache.sidecar.providers.base import Usage
from pydantic import ValidationError

from llmcache.policy import CachePolicySpec, Sharing, describe_error, load_spec, parse_spec
from llmcache.prices import cost_usd, price_for
from llmcache.redact import install_log_redaction, redact
from tests.support import llmcache, wait_for


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
    assert spec.semantic.threshold is None and spec.sharing.scope == "credential"
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


@pytest.mark.parametrize(
    "spec",
    [
        {"cacheability": {"maxTemperature": False}},
        {"exact": {"l1MaxBytes": True}},
        {"exact": {"ttlSeconds": "5"}},
        {"exact": {"ttlSeconds": 1.5}},
        {"exact": {"enabled": 1}},
        {"exact": {"enabled": "true"}},
        {"semantic": {"threshold": "0.9"}},
        {"onDelete": 0},
        {"cacheability": {"includeModels": "gpt-*"}},
        {"exact": {"ttl_seconds": 5}},  # the API server knows camelCase only
    ],
    ids=repr,
)
def test_policy_types_are_as_strict_as_the_api_servers(spec: dict[str, Any]) -> None:
    """Issue 17: the sidecar took ``false`` for a number that kubectl refuses."""
    with pytest.raises(ValidationError):
        parse_spec(spec)


def test_policy_reads_numbers_and_nulls_as_the_api_server_does(tmp_path: Path) -> None:
    # A whole float is an integer, an integer is a number, null on a non-nullable field
    # means its default (the API server prunes it), null on a nullable one stays unset.
    spec = parse_spec(
        {
            "exact": {"ttlSeconds": 60.0, "l1MaxEntries": None},
            "semantic": {"threshold": 1},
            "cacheability": {"maxTemperature": None},
        }
    )
    assert spec.exact.ttl_seconds == 60 and isinstance(spec.exact.ttl_seconds, int)
    assert spec.exact.l1_max_entries == 10_000
    assert spec.semantic.threshold == 1.0 and spec.cacheability.max_temperature is None
    path = tmp_path / "p.yaml"
    path.write_text("exact:\n  ttlSeconds:\n  slidingTtl: yes\nsemantic: {threshold: 1}\n")
    loaded = load_spec(path)
    assert loaded.exact.ttl_seconds == 86_400 and loaded.exact.sliding_ttl is True


def test_a_bad_upstream_url_in_a_policy_file_says_what_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("upstreams:\n  anthropic: file:///etc/passwd\n")
    with pytest.raises(ValidationError) as err:
        load_spec(path)
    assert describe_error(err.value) == (
        "spec.upstreams.anthropic: must start with http:// or https:// (got 'file:///etc/passwd')"
    )


def test_errors_and_log_lines_never_carry_url_credentials(caplog: Any) -> None:
    """Issue 17: ``input_value='redis://admin:…@redis:6379/0'`` was logged."""
    assert redact("redis://admin:s3cret@redis:6379/0") == "redis://admin:***@redis:6379/0"
    assert redact("at rediss://:p@ss@r:6380 and https://sk-1@h/") == (
        "at rediss://:***@r:6380 and https://***@h/"
    )
    assert redact("redis://r/0?password=s3cret&db=1") == "redis://r/0?password=***&db=1"
    assert redact("mail admin@example.com at http://h/a@b") == (
        "mail admin@example.com at http://h/a@b"
    )
    # `redis: <url>` instead of `redis: {url: <url>}`: pydantic's own rendering quotes it.
    with pytest.raises(ValidationError) as err:
        parse_spec({"redis": "redis://admin:s3cret@redis:6379/0"})
    assert "input_value='redis://admin:s3cret@redis:6379/0'" in str(err.value)
    assert describe_error(err.value) == (
        "spec.redis: Input should be a valid dictionary or instance of Redis "
        "(got 'redis://admin:***@redis:6379/0')"
    )
    with pytest.raises(ValidationError) as err:
        parse_spec({"redis": {"url": "redis://admin:s3cret@redis:6379/zero"}})
    assert "'redis://admin:***@redis:6379/zero'" in describe_error(err.value)

    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("llmcache.test").warning("failing: %s", err.value)
        try:
            raise ConnectionError("cannot reach redis://admin:s3cret@redis:6379/0")
        except ConnectionError:
            logging.getLogger("llmcache.test").exception("redis down")
    assert "s3cret" not in caplog.text and "admin:***@redis" in caplog.text


def test_a_sidecar_refuses_an_upstream_flag_it_could_not_use() -> None:
    """Issue 17: with a file:// upstream every request failed with 500."""
    done = subprocess.run(
        [sys.executable, "-m", "llmcache", "sidecar", "--listen", "127.0.0.1:0",
         "--anthropic-upstream", "file:///etc/passwd", "--openai-upstream", "https://k@h"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        "invalid flags: --anthropic-upstream 'file:///etc/passwd': must start with http:// or "
        "https://; --openai-upstream 'https://***@h': must not carry credentials"
    ) in done.stderr


LEAKY_POLICY = "redis: redis://admin:s3cret@redis:6379/0\n"  # `redis: {url: ...}` meant


def test_a_sidecar_refusing_a_policy_does_not_log_its_redis_password(tmp_path: Path) -> None:
    """Issue 17: the refusal quoted ``input_value='redis://admin:s3cret@redis:6379/0'``."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(LEAKY_POLICY)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmcache",
            "sidecar",
            "--listen",
            "127.0.0.1:0",
            "--policy",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "invalid policy: spec.redis: Input should be a valid dictionary" in done.stderr
    assert "admin:***@redis" in done.stderr and "s3cret" not in done.stderr + done.stdout

    # The same file arriving as a live update is refused and logged the same way.
    policy = tmp_path / "policy.yaml"
    policy.write_text("exact: {ttlSeconds: 60}\n")
    proc = llmcache("sidecar", "--listen", "127.0.0.1:0", "--policy", str(policy))
    try:
        policy.write_text(LEAKY_POLICY)
        os.utime(policy, (time.time() + 5, time.time() + 5))  # a new mtime, whatever the clock
        wait_for(lambda: "rejected" in proc.output(), timeout=30, what="the update refused")
        assert "admin:***@redis" in proc.output() and "s3cret" not in proc.output()
    finally:
        proc.stop()


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
