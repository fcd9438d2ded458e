"""The L2's lean Redis connection against a real redis-server."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable

import pytest
from llmcache.sidecar.resp import RespConnection, RespError

from tests.support import RedisServer, wait_for


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


async def test_a_connection_dying_under_pipelined_commands_leaves_no_unretrieved_errors(
    redis_server: RedisServer,
) -> None:
    """Killing Redis while a call's commands are out fails that call once, and nothing is
    left for asyncio to report as "Future exception was never retrieved" (one such line per
    pending command flooded the logs during Redis faults)."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(str(context.get("message"))))
    conn = RespConnection(redis_server.url)
    try:
        await conn.execute(("PING",))
        # BLPOP holds the connection's replies back: the 50 GETs behind it stay pending.
        commands = [("BLPOP", "never-pushed", "0"), *[("GET", f"k{i}") for i in range(50)]]
        call = asyncio.ensure_future(_fails(conn.execute(*commands)))
        await asyncio.to_thread(wait_for, lambda: _blocked_clients(redis_server) == 1)
        redis_server.stop()
        failed = await call
        del call
        gc.collect()  # an unretrieved exception is reported when its future is collected
        assert failed
        assert [m for m in reported if "never retrieved" in m] == []
    finally:
        loop.set_exception_handler(previous)
        await conn.close()


async def _fails(call: Awaitable[object]) -> bool:
    try:
        await call
    except RespError:
        return True
    return False


def _blocked_clients(redis_server: RedisServer) -> int:
    with redis_server.client() as client:
        return int(client.info("clients")["blocked_clients"])
