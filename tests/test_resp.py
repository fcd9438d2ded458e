"""The L2's lean Redis connection against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from llmcache.sidecar.resp import RespConnection, RespError

from tests.support import RedisServer


async def test_pipelined_replies_come_back_in_order_and_errors_raise(
    redis_server: RedisServer,
) -> None:
    conn = RespConnection(redis_server.url.replace("/0", "/3"))  # SELECT 3 at connect
    try:
        replies = await conn.execute(
            ("SET", "a", b"1"), ("SET", "b", b"2"), ("MGET", "a", "b", "z")
        )
        assert replies == [b"OK", b"OK", [b"1", b"2", None]]
        # Many concurrent calls share the one connection without mixing replies.
        results = await asyncio.gather(*(conn.execute(("ECHO", str(i))) for i in range(200)))
        assert [r[0] for r in results] == [str(i).encode() for i in range(200)]
        with pytest.raises(RespError, match="WRONGTYPE"):
            await conn.execute(("SADD", "a", "x"))
        with redis_server.client() as client:  # db 0 stays empty: the URL chose db 3
            assert client.get("a") is None
            assert client.execute_command("SELECT", 3) and client.get("a") == b"1"
    finally:
        await conn.close()


async def test_reconnects_after_redis_restarts(redis_server: RedisServer) -> None:
    conn = RespConnection(redis_server.url)
    try:
        assert await conn.execute(("PING",)) == [b"PONG"]
        redis_server.stop()
        with pytest.raises(RespError):
            await conn.execute(("PING",))
        redis_server.start()
        assert await conn.execute(("PING",)) == [b"PONG"]
    finally:
        await conn.close()
