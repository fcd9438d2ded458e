"""The shared L2 against a real ``redis-server``: sharing, failing open, and what is stored."""

from __future__ import annotations

import concurrent.futures
import os
import signal

import pytest
from llmcache.sidecar import codec

from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer, wait_for
from tests.test_sidecar import KEY_A, ask, claude, http, sim_count, stats

ENTRY_PREFIX = "llmcache:_:default:e:"


def entry_keys(redis: RedisServer) -> list[bytes]:
    with redis.client() as client:
        return sorted(client.keys(ENTRY_PREFIX + "*"))


def redis_faults(proc: object) -> int:
    return int(stats(proc)["redisFaults"])  # type: ignore[arg-type]


def test_two_sidecars_share_entries_through_redis(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: object
) -> None:
    first = sidecar("--redis-url", redis_server.url)
    second = sidecar("--redis-url", redis_server.url)
    before = sim_count(upstream)  # type: ignore[arg-type]
    h1, m1 = ask(claude(first), "Shared through Redis?")
    wait_for(lambda: entry_keys(redis_server), timeout=5)
    h2, m2 = ask(claude(second), "Shared through Redis?")
    h3, _ = ask(claude(second), "Shared through Redis?")
    assert (h1["x-llmcache"], h2["x-llmcache"], h2["x-llmcache-layer"]) == ("miss", "hit", "l2")
    assert h3["x-llmcache-layer"] == "l1"  # promoted
    assert m2.model_dump() == m1.model_dump()
    assert sim_count(upstream) - before == 1  # type: ignore[arg-type]


def test_flush_on_one_sidecar_empties_every_sidecar(
    sidecar: SidecarFactory, redis_server: RedisServer
) -> None:
    first = sidecar("--redis-url", redis_server.url)
    second = sidecar("--redis-url", redis_server.url)
    ask(claude(first), "flush me", extra_headers={"x-llmcache-tags": "release-1"})
    wait_for(lambda: entry_keys(redis_server), timeout=5)
    assert ask(claude(second), "flush me")[0]["x-llmcache"] == "hit"  # now in second's L1 too
    status, _, body = http("POST", f"{first.url}/admin/flush", b'{"tagsAll": ["release-1"]}')
    assert status == 200 and b'"removed": 1' in body
    assert entry_keys(redis_server) == []
    wait_for(lambda: ask(claude(second), "flush me")[0]["x-llmcache"] == "miss", timeout=5)


def test_killing_redis_loses_no_request_and_it_reconnects(
    sidecar: SidecarFactory, redis_server: RedisServer
) -> None:
    proc = sidecar("--redis-url", redis_server.url)
    client = claude(proc)
    ask(client, "before the outage")

    def one(i: int) -> str:
        return ask(client, f"question {i % 7} during the outage")[0]["x-llmcache"]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, i) for i in range(60)]
        redis_server.stop()
        results = [f.result(timeout=30) for f in futures]
    assert set(results) <= {"hit", "miss"} and len(results) == 60
    after = [ask(client, f"asked while redis is down {i}")[0]["x-llmcache"] for i in range(5)]
    assert after == ["miss"] * 5
    assert redis_faults(proc) > 0

    redis_server.start()  # same port, empty
    wait_for(
        lambda: ask(client, f"after recovery {os.urandom(4).hex()}") and entry_keys(redis_server),
        timeout=20,
        interval=0.3,
    )


def test_unresponsive_redis_fails_open_fast(
    sidecar: SidecarFactory, redis_server: RedisServer
) -> None:
    proc = sidecar("--redis-url", redis_server.url)
    client = claude(proc)
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        answers = [ask(client, f"redis frozen {i}") for i in range(5)]
        assert all(h["x-llmcache"] == "miss" and m.content for h, m in answers)
        assert ask(client, "redis frozen 0")[0]["x-llmcache-layer"] == "l1"
        assert redis_faults(proc) > 0
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


def test_garbage_in_redis_is_a_miss_not_an_answer(
    sidecar: SidecarFactory, redis_server: RedisServer
) -> None:
    writer = sidecar("--redis-url", redis_server.url)
    ask(claude(writer), "will be corrupted")
    keys = wait_for(lambda: entry_keys(redis_server), timeout=5)
    with redis_server.client() as client:
        for key in keys:  # type: ignore[union-attr]
            client.set(key, b"definitely not an entry")
    reader = sidecar("--redis-url", redis_server.url)
    headers, message = ask(claude(reader), "will be corrupted")
    assert headers["x-llmcache"] == "miss" and message.content
    assert b'reason="corrupt"' in http("GET", f"{reader.url}/metrics")[2]


@pytest.mark.parametrize("damage", ["truncated", "scrambled"])
def test_a_damaged_small_entry_is_a_miss_and_is_replaced(
    sidecar: SidecarFactory, redis_server: RedisServer, upstream: Proc, damage: str
) -> None:
    """Entries under 1 KiB are stored uncompressed; damage to one used to come back as a
    hit whose body was not JSON (the SDK raised ``JSONDecodeError``)."""
    writer = sidecar("--redis-url", redis_server.url)
    _, original = ask(claude(writer), "small and fragile")
    (key,) = wait_for(lambda: entry_keys(redis_server), timeout=5)
    with redis_server.client() as client:
        value = client.get(key)
        assert value is not None and len(value) < 1024 and not value[5] & codec.COMPRESSED
        if damage == "truncated":
            broken = value[:-7]
        else:  # same length, one byte of the body changed
            i = len(value) - 20
            broken = value[:i] + bytes([value[i] ^ 0x55]) + value[i + 1 :]
        client.set(key, broken)
    reader = sidecar("--redis-url", redis_server.url)
    before = sim_count(upstream)
    headers, fresh = ask(claude(reader), "small and fragile")
    assert headers["x-llmcache"] == "miss" and fresh.content == original.content
    assert sim_count(upstream) - before == 1
    assert (
        b'llmcache_redis_faults_total{op="get",reason="corrupt"} 1.0'
        in http("GET", f"{reader.url}/metrics")[2]
    )
    # The miss stored a sound entry again: a third sidecar reads it from Redis.
    wait_for(lambda: _readable(redis_server, key), timeout=5)
    headers, message = ask(claude(sidecar("--redis-url", redis_server.url)), "small and fragile")
    assert (headers["x-llmcache"], headers["x-llmcache-layer"]) == ("hit", "l2")
    assert message.model_dump() == fresh.model_dump()


def _readable(redis: RedisServer, key: bytes) -> bool:
    with redis.client() as client:
        try:
            codec.decode(client.get(key))
        except codec.CorruptValue:
            return False
        return True


def test_no_credentials_in_redis_or_logs(
    sidecar: SidecarFactory, redis_server: RedisServer
) -> None:
    proc = sidecar("--redis-url", redis_server.url, "--log-level", "debug")
    ask(claude(proc), "secret handling")
    ask(claude(proc), "secret handling", extra_headers={"x-llmcache-tags": "t1"})
    wait_for(lambda: entry_keys(redis_server), timeout=5)
    with redis_server.client() as client:
        for key in client.keys("*"):
            assert KEY_A.encode() not in key
            if key.startswith(ENTRY_PREFIX.encode()):
                payload = client.get(key)
                assert KEY_A.encode() not in payload
                text = codec.decode(payload).encoded()
                assert KEY_A.encode() not in text and b"x-api-key" not in text
    proc.stop()
    assert KEY_A not in proc.output()
