"""One Redis ACL user per policy in a shared Redis (operator/redis_acl.py), against a real
``redis-server`` with a password on its admin (``default``) user: a policy's user reaches
its own prefix and nothing else, and a sidecar holding one policy's credential that tries
another policy's entries is refused every time, counted, and still answers the request."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from llmcache.operator import redis_acl
from llmcache.sidecar.l2 import fault_reason
from llmcache.sidecar.resp import RespConnection, RespError

from llmcache import keyspace
from tests.conftest import SidecarFactory
from tests.support import RedisServer, wait_for
from tests.test_sidecar import ask, claude, http, sim_count

ADMIN_PASSWORD = "admin-secret-0123"
PREFIX_A = keyspace.policy_prefix("llmcache", "team-a", "chat")
PREFIX_B = keyspace.policy_prefix("llmcache", "team-b", "chat")
USER_A = redis_acl.username("team-a", "chat")
USER_B = redis_acl.username("team-b", "chat")
SECRET_A = redis_acl.password(ADMIN_PASSWORD, "team-a", "chat", "uid-a", 1)
SECRET_B = redis_acl.password(ADMIN_PASSWORD, "team-b", "chat", "uid-b", 1)


@pytest.fixture
def shared_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, password=ADMIN_PASSWORD)
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", USER_A, *redis_acl.rules(PREFIX_A, [SECRET_A]))
        admin.execute_command("ACL", "SETUSER", USER_B, *redis_acl.rules(PREFIX_B, [SECRET_B]))
    yield server
    server.stop()


def url_of(server: RedisServer, user: str, secret: str) -> str:
    return redis_acl.sidecar_url(server.url, user, secret)


def snapshot(server: RedisServer, prefix: str) -> dict[bytes, bytes]:
    """Every key under ``prefix`` with its serialized value (admin view)."""
    with server.client() as admin:
        return {k: admin.dump(k) for k in admin.scan_iter(match=f"{prefix}:*")}


def write_b(server: RedisServer) -> None:
    with redis.Redis.from_url(url_of(server, USER_B, SECRET_B)) as b:
        b.set(f"{PREFIX_B}:e:answer", b"B's private answer", ex=600)
        b.sadd(f"{PREFIX_B}:t:release", f"{PREFIX_B}:e:answer")
        b.sadd(f"{PREFIX_B}:m:claude", f"{PREFIX_B}:e:answer")


def denied(call: object) -> str:
    with pytest.raises(redis.RedisError) as info:
        call()  # type: ignore[operator]
    assert fault_reason(info.value) == "denied", info.value
    return str(info.value)


def test_sidecar_url_keeps_host_database_and_options() -> None:
    url = redis_acl.sidecar_url("rediss://default:p%40ss@redis.svc:6380/2?timeout=5", "u.a.b", "s")
    assert url == "rediss://u.a.b:s@redis.svc:6380/2?timeout=5"


def test_rules_escape_glob_characters_of_the_prefix() -> None:
    rules = redis_acl.rules("we*ird:ns:p", ["pw"])
    assert "~we\\*ird:ns:p:*" in rules and "&we\\*ird:ns:p:*" in rules
    assert "pw" not in " ".join(rules)  # only the SHA-256 of a password goes to Redis


def test_a_policy_user_reaches_only_its_own_prefix(shared_redis: RedisServer) -> None:
    write_b(shared_redis)
    before = snapshot(shared_redis, PREFIX_B)
    with redis.Redis.from_url(url_of(shared_redis, USER_A, SECRET_A)) as a:
        # Its own keys: everything the sidecar does works.
        a.set(f"{PREFIX_A}:e:x", b"A", ex=600)
        assert a.mget([f"{PREFIX_A}:e:x"]) == [b"A"]
        a.sadd(f"{PREFIX_A}:t:release", f"{PREFIX_A}:e:x")
        a.expire(f"{PREFIX_A}:t:release", 600)
        a.publish(keyspace.channel(PREFIX_A), "{}")
        # Another policy's: every attempt refused.
        denied(lambda: a.get(f"{PREFIX_B}:e:answer"))
        denied(lambda: a.mget([f"{PREFIX_B}:e:answer"]))
        denied(lambda: a.set(f"{PREFIX_B}:e:answer", b"poisoned"))
        denied(lambda: a.sadd(f"{PREFIX_B}:t:release", "x"))
        denied(lambda: a.unlink(f"{PREFIX_B}:e:answer"))
        denied(lambda: a.smembers(f"{PREFIX_B}:t:release"))
        denied(lambda: a.publish(keyspace.channel(PREFIX_B), "{}"))
        # SCAN and KEYS would list every policy's key names: not granted at all.
        denied(lambda: a.scan(0, match=f"{PREFIX_B}:*"))
        denied(lambda: a.keys("*"))
        for command in (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "GET", "*"), ("ACL", "LIST"),
                        ("SCRIPT", "FLUSH"), ("EVAL", "return 1", "0")):  # fmt: skip
            denied(lambda c=command: a.execute_command(*c))  # type: ignore[misc]
        pubsub = a.pubsub()
        pubsub.subscribe(keyspace.channel(PREFIX_B))  # the refusal comes as its reply
        denied(lambda: pubsub.get_message(timeout=5))
        pubsub.close()
    with shared_redis.client() as admin:
        assert admin.get(f"{PREFIX_A}:e:x") == b"A"
    assert snapshot(shared_redis, PREFIX_B) == before


def test_a_flush_under_the_policy_user_removes_its_entries_only(shared_redis: RedisServer) -> None:
    write_b(shared_redis)
    before = snapshot(shared_redis, PREFIX_B)

    async def flush() -> int:
        a = aioredis.from_url(url_of(shared_redis, USER_A, SECRET_A))
        try:
            await a.set(f"{PREFIX_A}:e:x", b"A", ex=600)
            await a.sadd(f"{PREFIX_A}:t:release", f"{PREFIX_A}:e:x")
            return await keyspace.flush(a, PREFIX_A, tags_any=["release"])
        finally:
            await a.aclose()

    assert asyncio.run(flush()) == 1
    with shared_redis.client() as admin:
        assert admin.get(f"{PREFIX_A}:e:x") is None
    assert snapshot(shared_redis, PREFIX_B) == before


def test_the_hand_written_client_authenticates_with_a_username(shared_redis: RedisServer) -> None:
    async def use(url: str) -> list[object]:
        conn = RespConnection(url)
        try:
            return await conn.execute(("SET", f"{PREFIX_A}:e:y", b"1"), ("MGET", f"{PREFIX_A}:e:y"))
        finally:
            await conn.close()

    assert asyncio.run(use(url_of(shared_redis, USER_A, SECRET_A)))[1] == [b"1"]
    with pytest.raises(RespError) as info:
        asyncio.run(use(url_of(shared_redis, USER_A, "wrong")))
    assert fault_reason(info.value) == "denied"


def faults(proc: object, op: str, reason: str) -> float:
    text = http("GET", f"{proc.url}/metrics")[2].decode()  # type: ignore[attr-defined]
    pattern = rf'llmcache_redis_faults_total{{op="{op}",reason="{reason}"}} ([0-9.e+]+)'
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_a_sidecar_aiming_at_another_policy_is_denied_and_still_answers(
    sidecar: SidecarFactory, shared_redis: RedisServer, upstream: object
) -> None:
    """A pod of team-a that claims to be team-b's policy, with team-a's credential: every
    read, write, subscription and flush of team-b's prefix is refused and counted
    (``reason="denied"``); every request is answered by the upstream; team-b's entries are
    untouched."""
    write_b(shared_redis)
    before = snapshot(shared_redis, PREFIX_B)
    rogue = sidecar(
        "--redis-url", url_of(shared_redis, USER_A, SECRET_A),
        "--namespace", "team-b", "--policy-name", "chat",
    )  # fmt: skip
    wait_for(
        lambda: faults(rogue, "subscribe", "denied") >= 1, timeout=10, what="SUBSCRIBE refused"
    )
    calls = sim_count(upstream)  # type: ignore[arg-type]
    for i in range(3):
        headers, message = ask(claude(rogue), f"Steal B's answer {i}?")
        assert headers["x-llmcache"] == "miss" and message.content  # served by the upstream
    assert sim_count(upstream) - calls == 3  # type: ignore[arg-type]
    wait_for(lambda: faults(rogue, "get", "denied") >= 1, timeout=5, what="GET refused")
    wait_for(lambda: faults(rogue, "set", "denied") >= 1, timeout=5, what="SET refused")
    for body in (b'{"tagsAny": ["release"]}', b"{}"):  # by tag (SUNION), everything (SCAN)
        status, _, _ = http("POST", f"{rogue.url}/admin/flush", body)
        assert status == 200
    assert faults(rogue, "flush", "denied") == 2
    assert snapshot(shared_redis, PREFIX_B) == before


def test_a_sidecar_with_its_own_user_shares_entries(
    sidecar: SidecarFactory, shared_redis: RedisServer, upstream: object
) -> None:
    args = ("--redis-url", url_of(shared_redis, USER_A, SECRET_A),
            "--namespace", "team-a", "--policy-name", "chat")  # fmt: skip
    first, second = sidecar(*args), sidecar(*args)
    ask(claude(first), "Shared within team-a?")
    wait_for(lambda: snapshot(shared_redis, PREFIX_A), timeout=5, what="entry written")
    headers, _ = ask(claude(second), "Shared within team-a?")
    assert (headers["x-llmcache"], headers["x-llmcache-layer"]) == ("hit", "l2")
    for proc in (first, second):
        assert all(faults(proc, op, "denied") == 0 for op in ("get", "set", "subscribe"))
