"""Shared L2 in Redis, failing open.

Lookups of concurrent requests are gathered for one event-loop tick and sent as a single
MGET: the Python client, not Redis, is the bottleneck, and one round trip for many requests
beats one connection per request. Writes are pipelined in the background so a miss never
waits for Redis. Every operation has a deadline in milliseconds; after repeated faults a
breaker skips Redis for a growing pause and then tries again, so a dead Redis costs a
request nothing but a counter increment. Flushes are announced on the policy's channel,
and a subscriber applies announced flushes to this process's other layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from llmcache import keyspace

from . import codec
from .layers import CacheRequest, Entry, Hit, Selector
from .metrics import Metrics
from .resp import Command, RespConnection

log = logging.getLogger(__name__)

BREAKER_FAULTS = 3  # consecutive faults that open the breaker
BREAKER_MIN_PAUSE = 0.25
BREAKER_MAX_PAUSE = 5.0
INDEX_REFRESH = 3600.0
MAX_INFLIGHT = 2  # MGETs out at once; further lookups wait and go out together
WRITE_DELAY = 0.005  # seconds a write may wait to share a pipeline with others
WRITE_BATCH = 128

FlushListener = Callable[[Selector], Awaitable[Any]]


class L2:
    name = "l2"

    def __init__(
        self,
        url: str,
        prefix: str,
        metrics: Metrics,
        timeout_ms: int = 50,
        sliding: bool = False,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout_ms / 1000
        self.sliding = sliding
        self._metrics = metrics
        self._resp = RespConnection(url)  # lookups and writes
        self.client: aioredis.Redis = aioredis.Redis.from_url(  # flushes and pub/sub
            url,
            socket_timeout=max(self.timeout * 4, 0.2),
            socket_connect_timeout=max(self.timeout * 4, 0.2),
            max_connections=4,
        )
        self._pending: list[tuple[str, asyncio.Future[bytes | None]]] = []
        self._inflight = 0
        self._writes: list[tuple[str, Entry, int]] = []
        self._unwritten: dict[str, Entry] = {}  # queued or in flight, by digest
        self._indexed: dict[str, float] = {}  # index set → when to refresh its TTL
        self._write_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._faults = 0
        self._pause = BREAKER_MIN_PAUSE
        self._open_until = 0.0
        self._listeners: list[FlushListener] = []
        self._subscriber: asyncio.Task[None] | None = None

    # -- lookups ---------------------------------------------------------------------------

    async def get(self, req: CacheRequest) -> Hit | None:
        return await self.lookup(req.key, req.ttl)

    async def lookup(self, digest: str, ttl: int) -> Hit | None:
        unwritten = self._unwritten.get(digest)
        if unwritten is not None:  # read this sidecar's own writes, e.g. right after a refresh
            return Hit(unwritten, "l2", expires=unwritten.expires)
        raw = await self.fetch(keyspace.entry_key(self.prefix, digest))
        if raw is None:
            return None
        try:
            entry = codec.decode(raw)
        except codec.CorruptValue:
            self._metrics.child(self._metrics.redis_faults, "get", "corrupt").inc()
            return None
        if self.sliding:  # the entry lives ``ttl`` from now, wherever it is copied
            self._background(self._touch(digest, ttl))
            return Hit(entry, "l2")
        return Hit(entry, "l2", expires=entry.expires)

    def fetch(self, key: str) -> asyncio.Future[bytes | None]:
        """The raw value of ``key``; resolves to None on a miss or a fault (never raises).

        Lookups queue while ``MAX_INFLIGHT`` MGETs are out, and the queue goes out as the
        next MGET: the busier the sidecar, the larger the batches, the cheaper each lookup.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes | None] = loop.create_future()
        if self._is_open():
            self._metrics.child(self._metrics.redis_faults, "get", "unavailable").inc()
            fut.set_result(None)
            return fut
        self._pending.append((key, fut))
        if len(self._pending) == 1 and self._inflight < MAX_INFLIGHT:
            loop.call_soon(self._flush_lookups)
        return fut

    def _flush_lookups(self) -> None:
        if not self._pending or self._inflight >= MAX_INFLIGHT:
            return
        batch, self._pending = self._pending, []
        self._inflight += 1
        self._background(self._mget(batch))

    async def _mget(self, batch: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        values: list[Any]
        try:
            async with asyncio.timeout(self.timeout):
                (values,) = await self._resp.execute(("MGET", *[key for key, _ in batch]))
        except Exception as exc:
            self._fault("get", exc)
            values = [None] * len(batch)
        else:
            self._ok()
        finally:
            self._inflight -= 1
            self._flush_lookups()
        for (_, fut), value in zip(batch, values, strict=True):
            if not fut.done():
                fut.set_result(value)

    # -- writes ----------------------------------------------------------------------------

    async def put(self, req: CacheRequest, entry: Entry) -> None:
        """Queue the write: writes are sent together, at most ``WRITE_DELAY`` later, in one
        pipeline (nobody waits for them, and each round trip costs the client more than
        Redis)."""
        if self._is_open():
            return
        self._writes.append((req.key, entry, req.ttl))
        self._unwritten[req.key] = entry
        if len(self._writes) == 1:
            self._write_timer = asyncio.get_running_loop().call_later(
                WRITE_DELAY, self._flush_writes
            )
        elif len(self._writes) >= WRITE_BATCH:
            self._flush_writes()

    def _flush_writes(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        batch, self._writes = self._writes, []
        if batch:
            self._background(self._write(batch))

    async def _write(self, batch: list[tuple[str, Entry, int]]) -> None:
        commands: list[Command] = []
        now = time.monotonic()
        for digest, entry, ttl in batch:
            key = keyspace.entry_key(self.prefix, digest)
            commands.append(("SET", key, codec.encode(entry), "EX", ttl))
            indexes = [keyspace.model_key(self.prefix, entry.model)]
            indexes += [keyspace.tag_key(self.prefix, tag) for tag in entry.tags]
            for index in indexes:
                commands.append(("SADD", index, key))
                # Index sets outlive every entry they list; refreshing that hourly is enough.
                if self._indexed.get(index, 0.0) < now:
                    if len(self._indexed) > 10_000:
                        self._indexed.clear()
                    self._indexed[index] = now + INDEX_REFRESH
                    commands.append(("EXPIRE", index, keyspace.INDEX_TTL))
        try:
            async with asyncio.timeout(self.timeout * 4):
                await self._resp.execute(*commands)
        except Exception as exc:
            self._fault("set", exc)
        else:
            self._ok()
            self._metrics.child(self._metrics.stores, "l2").inc(len(batch))
        finally:
            for digest, entry, _ in batch:
                if self._unwritten.get(digest) is entry:
                    del self._unwritten[digest]

    async def _touch(self, digest: str, ttl: int) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._resp.execute(("EXPIRE", keyspace.entry_key(self.prefix, digest), ttl))
        except Exception as exc:
            self._fault("expire", exc)

    # -- invalidation ----------------------------------------------------------------------

    async def invalidate(self, selector: Selector) -> int:
        """Remove matching entries of the policy and announce it to every sidecar."""
        self._unwritten = {
            digest: e for digest, e in self._unwritten.items()
            if not (selector.everything or selector.matches(e.model, e.tags))
        }  # fmt: skip
        try:
            async with asyncio.timeout(max(self.timeout * 100, 5.0)):
                return await keyspace.flush(
                    self.client, self.prefix, selector.tags_any, selector.tags_all, selector.model
                )
        except Exception as exc:
            self._fault("flush", exc)
            return 0

    def on_flush(self, listener: FlushListener) -> None:
        """Call ``listener`` with every flush announced on the policy's channel."""
        self._listeners.append(listener)
        if self._subscriber is None:
            self._subscriber = asyncio.get_running_loop().create_task(self._subscribe())

    async def _subscribe(self) -> None:
        pause = BREAKER_MIN_PAUSE
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keyspace.channel(self.prefix))
                pause = BREAKER_MIN_PAUSE
                async for message in pubsub.listen():
                    selector = Selector.from_json(json.loads(message["data"]))
                    for listener in self._listeners:
                        await listener(selector)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except Exception as exc:
                if fault_reason(exc) == "denied":  # a dead Redis is counted by lookups
                    self._metrics.child(self._metrics.redis_faults, "subscribe", "denied").inc()
                log.debug("invalidation subscriber: %s; reconnecting", exc)
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(pause)
            pause = min(pause * 2, BREAKER_MAX_PAUSE)

    # -- health ----------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout * 4):
                return bool(await self._resp.execute(("PING",)))
        except Exception:
            return False

    def _is_open(self) -> bool:
        return self._open_until > 0 and time.monotonic() < self._open_until

    def _fault(self, op: str, exc: BaseException) -> None:
        reason = fault_reason(exc)
        if reason == "timeout":
            self._resp.reset()  # replies that come late must not pile up
        self._metrics.child(self._metrics.redis_faults, op, reason).inc()
        self._faults += 1
        if self._faults >= BREAKER_FAULTS:
            self._open_until = time.monotonic() + self._pause
            self._pause = min(self._pause * 2, BREAKER_MAX_PAUSE)
            log.warning("redis %s failing (%s): skipping Redis for %.2fs", op, reason, self._pause)

    def _ok(self) -> None:
        self._faults = 0
        self._pause = BREAKER_MIN_PAUSE
        self._open_until = 0.0

    def _background(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._flush_writes()
        if self._subscriber is not None:
            self._subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._subscriber
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 1.0)
        with contextlib.suppress(Exception):
            await self.client.aclose()
        await self._resp.close()


DENIED = ("NOPERM", "WRONGPASS", "NOAUTH")  # Redis ACL refusals (a policy's own Redis user)


def fault_reason(exc: BaseException) -> str:
    """``timeout``, ``denied`` (the Redis user may not do it: another policy's keys or
    channel, or a revoked password) or ``error``."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, redis_errors.NoPermissionError | redis_errors.AuthenticationError):
        return "denied"  # redis-py drops the error code from the message
    if str(exc).lstrip().startswith(DENIED):
        return "denied"
    return "error"
