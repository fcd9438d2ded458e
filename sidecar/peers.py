"""Coalescing across pods: of the sidecars that miss on one key at once, the first takes a
lease in Redis and makes the upstream call; the others wait for its answer in the L2
instead of paying for the same generation again.

The lease is a key (``keyspace.lease_key``) set with NX and a TTL of ``LEASE_SECONDS``
that its holder renews while its call runs, so a leader that dies or stalls loses it within
that time. The leader deletes it in the pipeline that writes its answer to the L2, after
the write (or in the next one when the answer is not stored: an error, a truncated answer),
so releasing costs no round trip of its own. A waiter polls, backing off from
``FIRST_POLL`` to ``LAST_POLL``: when the entry is there it serves it (a ``coalesced``
hit); when the lease is free it takes it and leads, after one more look for the entry
(the previous leader writes before it deletes, so that look cannot miss a stored answer);
after ``batching.peerWaitMs`` it calls upstream without a lease.

Any Redis fault ends the wait and the request goes upstream at once, counted: waiting never
turns into an error, and the worst case is the call the request would have made anyway.
Polling rather than pub/sub keeps this to MGET, SET, EXPIRE and UNLINK, which every topology
(and a policy's own ACL user) allows, at a cost of at most ``LAST_POLL`` of added latency on
an answer that took seconds to generate. The release does not check that the lease is still
its holder's: only a leader stalled past ``LEASE_SECONDS`` can delete a successor's lease,
and the worst that does is one more upstream call, as without coalescing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from llmcache import keyspace

from .l2 import L2
from .layers import CacheRequest, Hit
from .metrics import Metrics

log = logging.getLogger(__name__)

LEASE_SECONDS = 3  # a silent leader's lease lapses within this
FIRST_POLL = 0.01
LAST_POLL = 0.1


@dataclass
class Lease:
    """Held by the sidecar making the call; ``release`` once its answer is stored."""

    key: str
    l2: L2
    renewer: asyncio.Task[None]

    def release(self) -> None:
        """Give the lease up after this pod's L2 write of the answer (if there is one)."""
        self.renewer.cancel()
        self.l2.unlink_after_writes(self.key)


class PeerCoalescer:
    def __init__(self, l2: L2, metrics: Metrics) -> None:
        self.l2 = l2
        self._metrics = metrics
        self._pod = secrets.token_hex(6)  # the lease's value: which pod holds it
        self._tasks: set[asyncio.Task[Any]] = set()

    def _count(self, outcome: str) -> None:
        self._metrics.child(self._metrics.peer_coalescing, outcome).inc()

    async def lead_or_join(self, req: CacheRequest, wait_ms: int) -> Lease | Hit | None:
        """A lease (this sidecar calls upstream), a peer's answer, or None (call upstream
        without a lease: Redis failed or the wait ran out)."""
        if not self.l2.available():  # the breaker is open: do not wait on a failing Redis
            self._count("fault")
            return None
        key = keyspace.lease_key(self.l2.prefix, req.key)
        deadline = time.monotonic() + wait_ms / 1000
        delay = FIRST_POLL
        waited = False  # the caller looked the entry up just before: no need at first
        try:
            while True:
                hit = await self.l2.lookup(req.key, req.ttl) if waited else None
                if hit is None and await self._take(key):
                    # Taken after a wait: the previous leader may have written and let go.
                    hit = await self.l2.lookup(req.key, req.ttl) if waited else None
                    if hit is None:
                        self._count("led")
                        return Lease(key, self.l2, self.spawn(self._renew(key)))
                    self.l2.unlink_after_writes(key)
                if hit is not None:
                    self._count("joined")
                    return Hit(hit.entry, "coalesced", expires=hit.expires)
                if time.monotonic() + delay > deadline:
                    self._count("timeout")
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_POLL)
                waited = True
        except Exception as exc:
            self.l2.fault("lease", exc)
            self._count("fault")
            return None

    async def _take(self, key: str) -> bool:
        return bool(await self.l2.command("SET", key, self._pod, "NX", "EX", LEASE_SECONDS))

    async def _renew(self, key: str) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            with contextlib.suppress(Exception):
                await self.l2.command("EXPIRE", key, LEASE_SECONDS)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
