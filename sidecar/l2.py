"""Shared L2 in Redis (standalone, Cluster or Sentinel: ``llmcache/redis_client.py``),
failing open.

Lookups of concurrent requests are gathered for one event-loop tick and sent as a single
MGET (on a cluster, one MGET per slot in one pipeline per node: ``mget_nonatomic``): the
Python client, not Redis, is the bottleneck, and one round trip for many requests beats one
connection per request. Writes and sliding-TTL touches are pipelined in the background so a
miss never waits for Redis.

On a standalone Redis, lookups and writes go through the hand-written pipelined client
(``resp.py``): it costs the sidecar a third to two thirds of redis-py's CPU per operation
(docs/deploy.md, "Redis topologies"). A Cluster or Sentinel URL uses redis-py's clients for
everything; flushes and pub/sub always do.

Every operation has a deadline in milliseconds; after repeated faults a breaker skips
Redis for a growing pause and then tries again, so a dead Redis costs a request nothing
but a counter increment. Flushes are announced on the policy's channel,
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

import redis.exceptions as redis_errors

from llmcache import keyspace, redis_client

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
        self.client: redis_client.Client = redis_client.connect(
            url,
            socket_timeout=max(self.timeout * 4, 0.2),
            socket_connect_timeout=max(self.timeout * 4, 0.2),
            fail_fast=True,  # the breaker is the retry policy
        )
        standalone = redis_client.parse(url).topology == "standalone"
        self._resp = RespConnection(url) if standalone else None  # the hot path, standalone
        self._pending: list[tuple[str, asyncio.Future[bytes | None]]] = []
        self._inflight = 0
        self._writes: list[tuple[str, Entry, int]] = []
        self._touches: dict[str, int] = {}  # sliding TTLs to renew, sent with the writes
        self._unwritten: dict[str, Entry] = {}  # queued or in flight, by digest
        self._unlinks: list[str] = []  # keys to delete after the queued writes (leases)
        self._indexed: dict[str, float] = {}  # index set → when to refresh its TTL
        self._write_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._faults = 0
        self._pause = BREAKER_MIN_PAUSE
        self._open_until = 0.0
        self._listeners: list[FlushListener] = []
        self._subscriber: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: connect on first use
            asyncio.get_running_loop()
            self._background(self._connect())

    async def _connect(self) -> None:
        """Connect ahead of the first lookup, without its deadline."""
        with contextlib.suppress(Exception):  # the lookups count what fails
            await redis_client.ready(self.client)

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
            self._touch(digest, ttl)
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
            keys = [key for key, _ in batch]
            async with asyncio.timeout(self.timeout):
                if self._resp is not None:
                    (values,) = await self._resp.execute(("MGET", *keys))
                else:
                    values = await redis_client.mget(self.client, keys)
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
        self._queued()

    def unlink_after_writes(self, key: str) -> None:
        """Delete ``key`` in the next pipeline of writes, after the writes queued so far: a
        lease whose waiters must find the leader's answer written once it is gone."""
        if not self._is_open():
            self._unlinks.append(key)
            self._queued()

    def _touch(self, digest: str, ttl: int) -> None:
        """Renew a sliding TTL with the next pipeline of writes."""
        if not self._is_open():
            self._touches[digest] = ttl
            self._queued()

    def _queued(self) -> None:
        if len(self._writes) + len(self._touches) + len(self._unlinks) >= WRITE_BATCH:
            self._flush_writes()
        elif self._write_timer is None:
            self._write_timer = asyncio.get_running_loop().call_later(
                WRITE_DELAY, self._flush_writes
            )

    def _flush_writes(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        batch, self._writes = self._writes, []
        touches, self._touches = self._touches, {}
        unlinks, self._unlinks = self._unlinks, []
        if batch or touches or unlinks:
            self._background(self._write(batch, touches, unlinks))

    async def _write(
        self, batch: list[tuple[str, Entry, int]], touches: dict[str, int], unlinks: list[str]
    ) -> None:
        """One pipeline without MULTI (on a cluster, one per node): every command names one
        key, so none spans slots."""
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
        for digest, ttl in touches.items():
            commands.append(("EXPIRE", keyspace.entry_key(self.prefix, digest), ttl))
        commands += [("UNLINK", key) for key in unlinks]
        try:
            async with asyncio.timeout(self.timeout * 4):
                await self._pipeline(commands)
        except Exception as exc:
            self._fault("set" if batch else "expire", exc)
        else:
            self._ok()
            if batch:
                self._metrics.child(self._metrics.stores, "l2").inc(len(batch))
        finally:
            for digest, entry, _ in batch:
                if self._unwritten.get(digest) is entry:
                    del self._unwritten[digest]

    async def _pipeline(self, commands: list[Command]) -> None:
        if self._resp is not None:
            await self._resp.execute(*commands)
            return
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        await pipe.execute()

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
                await redis_client.ready(self.client)  # a cluster's slot map says where
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
                if self._resp is not None:
                    return bool(await self._resp.execute(("PING",)))
                return bool(await self.client.ping())
        except Exception:
            return False

    def _is_open(self) -> bool:
        return self._open_until > 0 and time.monotonic() < self._open_until

    async def command(self, *args: str | int) -> Any:
        """One command of another user of this Redis (leases), on the lookups' pipelined
        connection when standalone (its cost per command is a third of redis-py's), else
        through the client. Raises on a fault: the caller counts it (``fault``)."""
        async with asyncio.timeout(self.timeout * 4):
            if self._resp is not None:
                (reply,) = await self._resp.execute(args)
                return reply
            return await self.client.execute_command(*args)

    def available(self) -> bool:
        """False while the breaker skips Redis: other users of this Redis skip it too."""
        return not self._is_open()

    def fault(self, op: str, exc: BaseException) -> None:
        """Count a fault of another user of this Redis (leases) towards the breaker."""
        self._fault(op, exc)

    def _fault(self, op: str, exc: BaseException) -> None:
        reason = fault_reason(exc)
        if reason == "timeout" and self._resp is not None:
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
        if self._resp is not None:
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
