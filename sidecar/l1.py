"""In-process L1: an LRU bounded in entries and bytes, with per-entry TTL.

A plain ``OrderedDict`` walk: a hit is one dict lookup and one ``move_to_end``, which keeps
the hit path within a few microseconds of a bare aiohttp handler.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from .layers import CacheRequest, Entry, Hit, Selector
from .metrics import Metrics


@dataclass(slots=True)
class _Slot:
    entry: Entry
    expires: float
    ttl: float
    size: int


class L1:
    name = "l1"

    def __init__(
        self, max_entries: int, max_bytes: int, metrics: Metrics, sliding: bool = False
    ) -> None:
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.sliding = sliding
        self.bytes = 0
        self._metrics = metrics
        # Read at scrape time: setting two gauges on every store would cost more than the store.
        metrics.l1_entries.set_function(lambda: len(self._slots))
        metrics.l1_bytes.set_function(lambda: self.bytes)

    def __len__(self) -> int:
        return len(self._slots)

    def resize(self, max_entries: int, max_bytes: int, sliding: bool) -> None:
        self.max_entries, self.max_bytes, self.sliding = max_entries, max_bytes, sliding
        self._evict()

    def lookup(self, key: str) -> Entry | None:
        slot = self._slots.get(key)
        if slot is None:
            return None
        now = time.monotonic()
        if slot.expires <= now:
            self._drop(key, slot)
            return None
        self._slots.move_to_end(key)
        if self.sliding:
            slot.expires = now + slot.ttl
        return slot.entry

    async def get(self, req: CacheRequest) -> Hit | None:
        entry = self.lookup(req.key)
        return None if entry is None else Hit(entry, "l1")

    async def put(self, req: CacheRequest, entry: Entry) -> None:
        self.insert(req.key, entry, req.ttl)

    def insert(self, key: str, entry: Entry, ttl: float) -> None:
        old = self._slots.pop(key, None)  # first: a newer answer too large to keep still
        if old is not None:  # replaces the old one (it is served from L2 instead)
            self.bytes -= old.size
        size = len(entry.encoded()) + 256
        if self.max_entries == 0 or size > self.max_bytes:
            return
        self._slots[key] = _Slot(entry, time.monotonic() + ttl, ttl, size)
        self.bytes += size
        self._evict()
        self._metrics.add(self._metrics.stores, ("l1",))

    async def invalidate(self, selector: Selector) -> int:
        doomed = [
            k for k, s in self._slots.items()
            if selector.everything or selector.matches(s.entry.model, s.entry.tags)
        ]  # fmt: skip
        for key in doomed:
            self._drop(key, self._slots[key])
        return len(doomed)

    async def close(self) -> None:
        self._slots.clear()
        self.bytes = 0

    def _evict(self) -> None:
        while self._slots and (len(self._slots) > self.max_entries or self.bytes > self.max_bytes):
            _, slot = self._slots.popitem(last=False)
            self.bytes -= slot.size
            self._metrics.l1_evictions.inc()

    def _drop(self, key: str, slot: _Slot) -> None:
        del self._slots[key]
        self.bytes -= slot.size
