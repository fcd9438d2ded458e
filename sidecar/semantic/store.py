"""Where semantic entries live so every sidecar of the policy sees every entry.

Redis layout under the policy prefix ``P``:

- ``P:s:v:<id>``: the record every sidecar keeps in memory: partition, text, model, tags,
  expiry and the float32 vector (1.5 KB at 384 dims);
- ``P:s:d:<id>``: the cached answer (the L2's codec), read only on a hit;
- ``P:s:ids``: a sorted set of the record ids, scored by their expiry (unix seconds);
- channel ``P:s:add``: ``<origin> <id>`` announces a new record; other sidecars fetch it.

A sidecar loads the live records listed in ``P:s:ids`` at start and again whenever its
subscription reconnects (so announcements missed while Redis was away are caught up), in the
background (the sidecar serves meanwhile), newest first (latest expiry), and only while its
index has room: loaded records are *cold* and never evict one this pod used (see ``index``).
A record evicted from this pod stays in Redis: its exact key still hits the L2 (RAG:
``P:r:d:<id>``), and it comes back into the index with the next load that finds room or when
its key is stored again. The id set, not ``SCAN``, says what to load: a policy's own Redis
ACL user may not ``SCAN`` (Redis would list every policy's key names), and ``SCAN`` walks
the whole keyspace. Both keys carry the entry's TTL, so Redis forgets what every index
forgets; expired ids are pruned from the set at most once a minute. A full flush (SCAN
``P:*``) removes them with everything else; selective flushes are announced on ``P:inval``
and each sidecar drops the matching records and deletes them from Redis. Every Redis
operation has a deadline and fails open: a semantic miss, counted in
``llmcache_redis_faults_total``. Without Redis, entries stay in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from llmcache import redis_client

from .. import codec
from ..l2 import fault_reason
from ..layers import Entry
from ..metrics import Metrics
from .index import Record

log = logging.getLogger(__name__)

MAGIC = b"LLMS1"
LOAD_BATCH = 500
LOAD_SLICE = 100  # records indexed between two yields to the event loop (~2-5 ms)
PRUNE_EVERY = 60.0  # seconds between removals of expired ids from ``P:s:ids``
ENTRY_CACHE = 1024  # hot answers kept in memory so popular hits skip Redis

# (record, vector, cold) → False when a cold (loaded) record found the index full.
OnRecord = Callable[[Record, np.ndarray, bool], bool]


def encode_record(record: Record, vector: np.ndarray) -> bytes:
    head = json.dumps(
        {"p": record.partition, "t": record.text, "m": record.model, "x": record.expires,
         "g": list(record.tags)},
        separators=(",", ":"),
    ).encode()  # fmt: skip
    return MAGIC + struct.pack("<I", len(head)) + head + vector.astype("<f4").tobytes()


def decode_record(rid: str, raw: bytes, dim: int) -> tuple[Record, np.ndarray] | None:
    if raw[:5] != MAGIC:
        return None
    try:
        (size,) = struct.unpack("<I", raw[5:9])
        head = json.loads(raw[9 : 9 + size])
        # A view (little-endian hosts): the index copies it into its own rows.
        vector = np.frombuffer(raw[9 + size :], dtype="<f4").astype(np.float32, copy=False)
        record = Record(
            id=rid, partition=head["p"], text=head["t"], model=head["m"],
            expires=float(head["x"]), tags=tuple(head["g"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, struct.error):
        return None
    return (record, vector) if dim == 0 or vector.shape == (dim,) else None


class SemanticStore:
    """Entries of one layer (``kind`` "s" for semantic, "r" for RAG) in Redis or memory."""

    def __init__(
        self,
        prefix: str,
        kind: str,
        metrics: Metrics,
        dim: int,  # 0: vectors of any dimension (RAG)
        on_record: OnRecord,
        redis_url: str | None = None,
        timeout_ms: int = 50,
        max_local: int = 100_000,
    ) -> None:
        self.base = f"{prefix}:{kind}"
        self.dim = dim
        self._metrics = metrics
        self._on_record = on_record
        self.timeout = timeout_ms / 1000
        self.origin = uuid.uuid4().hex[:12]
        self.client: redis_client.Client | None = None
        if redis_url:
            self.client = redis_client.connect(
                redis_url,
                socket_timeout=max(self.timeout * 4, 0.2),
                socket_connect_timeout=max(self.timeout * 4, 0.2),
                max_connections=8,
            )
        self._local: OrderedDict[str, Entry] = OrderedDict()
        self._local_max = ENTRY_CACHE if self.client is not None else max_local
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscriber: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()
        if self.client is None:
            self.loaded.set()
        self._pruned = 0.0

    @property
    def channel(self) -> str:
        return f"{self.base}:add"

    @property
    def ids(self) -> str:
        return f"{self.base}:ids"

    def start(self) -> None:
        if self.client is not None and self._subscriber is None:
            self._subscriber = asyncio.get_running_loop().create_task(self._subscribe())

    # -- entries ---------------------------------------------------------------------------

    async def entry(self, rid: str) -> Entry | None:
        local = self._local.get(rid)
        if local is not None and 0 < local.expires <= time.time():
            del self._local[rid]  # never served past its TTL (Redis forgets it too)
            local = None
        if local is not None:
            self._local.move_to_end(rid)
            return local
        if self.client is None:
            return None
        try:
            async with asyncio.timeout(self.timeout):
                raw: Any = await self.client.get(f"{self.base}:d:{rid}")
        except Exception as exc:
            self._fault("get", exc)
            return None
        if not isinstance(raw, bytes):
            return None
        try:
            entry = codec.decode(raw)
        except codec.CorruptValue:
            self._metrics.redis_faults.labels("semantic_get", "corrupt").inc()
            return None
        self._remember(rid, entry)
        return entry

    def save(self, record: Record, vector: np.ndarray, entry: Entry) -> None:
        """Keep locally at once; write to Redis and announce in the background."""
        self._remember(record.id, entry)
        if self.client is not None:
            self._background(self._write(record, vector, entry))

    def _remember(self, rid: str, entry: Entry) -> None:
        self._local[rid] = entry
        self._local.move_to_end(rid)
        while len(self._local) > self._local_max:
            self._local.popitem(last=False)

    async def _write(self, record: Record, vector: np.ndarray, entry: Entry) -> None:
        assert self.client is not None
        ttl = max(1, int(record.expires - time.time()))
        try:
            async with asyncio.timeout(self.timeout * 4):
                pipe = self.client.pipeline(transaction=False)
                pipe.set(f"{self.base}:d:{record.id}", codec.encode(entry), ex=ttl)
                pipe.set(f"{self.base}:v:{record.id}", encode_record(record, vector), ex=ttl)
                pipe.zadd(self.ids, {record.id: record.expires})
                if (now := time.time()) > self._pruned + PRUNE_EVERY:
                    self._pruned = now
                    pipe.zremrangebyscore(self.ids, "-inf", now)
                await pipe.execute()
                # Not in the pipeline: a cluster pipeline takes only commands with keys.
                await self.client.publish(self.channel, f"{self.origin} {record.id}")
        except Exception as exc:
            self._fault("set", exc)

    def forget(self, ids: list[str]) -> None:
        for rid in ids:
            self._local.pop(rid, None)
        if self.client is not None and ids:
            self._background(self._delete(ids))

    async def _delete(self, ids: list[str]) -> None:
        assert self.client is not None
        keys = [f"{self.base}:{k}:{rid}" for rid in ids for k in ("v", "d")]
        try:
            async with asyncio.timeout(max(self.timeout * 20, 1.0)):
                for i in range(0, len(keys), LOAD_BATCH):
                    await self.client.unlink(*keys[i : i + LOAD_BATCH])
                for i in range(0, len(ids), LOAD_BATCH):
                    await self.client.zrem(self.ids, *ids[i : i + LOAD_BATCH])
        except Exception as exc:
            self._fault("del", exc)

    def drop_local(self) -> None:
        self._local.clear()

    def evicted(self, rid: str) -> None:
        """The index let the record go: so does the answer cache (Redis keeps both)."""
        self._local.pop(rid, None)

    # -- sync ------------------------------------------------------------------------------

    async def load_all(self) -> int:
        """Read the live records listed in the id set into the index, newest (latest
        expiry) first, until the index has no room for the next one."""
        assert self.client is not None
        count = 0
        now = time.time()
        # Paged by score, not by offset: Redis walks an offset one element at a time, which
        # made loading 1M ids quadratic. ``skip``: ids already read at score ``top`` (ties).
        top: float | str = "+inf"
        skip = 0
        while True:
            found: list[Any] = await self.client.zrevrangebyscore(
                self.ids, top, now, start=skip, num=LOAD_BATCH, withscores=True
            )
            if not found:
                return count
            last = float(found[-1][1])
            tied = sum(1 for _, score in found if float(score) == last)
            skip = tied + (skip if top == last else 0)
            top = last
            rids = [r.decode() if isinstance(r, bytes) else str(r) for r, _ in found]
            values = await redis_client.mget(self.client, [f"{self.base}:v:{r}" for r in rids])
            for i, (rid, raw) in enumerate(zip(rids, values, strict=True)):
                if i % LOAD_SLICE == LOAD_SLICE - 1:
                    await asyncio.sleep(0)  # let requests in: the sidecar serves while loading
                if not isinstance(raw, bytes):
                    continue
                added = self._add(rid, raw, cold=True)
                if added is None:
                    return count  # full: the rest is older
                count += added

    def _add(self, rid: str, raw: bytes, cold: bool = False) -> bool | None:
        """Whether the record was indexed; None when a cold one found the index full."""
        decoded = decode_record(rid, raw, self.dim)
        if decoded is None or decoded[0].expires <= time.time():
            return False
        return True if self._on_record(*decoded, cold) else None

    async def _fetch(self, rid: str) -> None:
        assert self.client is not None
        try:
            async with asyncio.timeout(self.timeout * 4):
                raw: Any = await self.client.get(f"{self.base}:v:{rid}")
        except Exception as exc:
            self._fault("get", exc)
            return
        if isinstance(raw, bytes):
            self._add(rid, raw)

    async def _subscribe(self) -> None:
        assert self.client is not None
        pause = 0.25
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await redis_client.ready(self.client)  # a cluster's slot map says where
                await pubsub.subscribe(self.channel)
                n = await self.load_all()  # after subscribing: nothing falls in between
                log.info("semantic store %s: loaded %d records", self.base, n)
                self.loaded.set()
                pause = 0.25
                async for message in pubsub.listen():
                    origin, _, rid = message["data"].decode().partition(" ")
                    if origin != self.origin and rid:
                        self._background(self._fetch(rid))
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except Exception as exc:
                self._fault("subscribe", exc)
                log.debug("semantic subscriber: %s; reconnecting", exc)
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    # -- plumbing --------------------------------------------------------------------------

    def _fault(self, op: str, exc: BaseException) -> None:
        self._metrics.redis_faults.labels(f"semantic_{op}", fault_reason(exc)).inc()

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._subscriber is not None:
            self._subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._subscriber
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 1.0)
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
