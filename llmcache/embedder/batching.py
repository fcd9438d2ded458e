"""Micro-batching and an exact LRU in front of any batch embedding function.

Concurrent callers within ``window`` seconds share one backend call of at most ``max_size``
texts; texts embedded before are answered from the LRU without a call. Identical texts in
one window are embedded once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import numpy as np

from . import EmbedderError

BatchFn = Callable[[list[str]], Awaitable[np.ndarray]]
Observer = Callable[[int], None]


class LRU:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, key: str) -> np.ndarray | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class Batcher:
    def __init__(
        self,
        fn: BatchFn,
        window: float = 0.002,
        max_size: int = 64,
        cache_size: int = 10_000,
        observe: Observer | None = None,
    ) -> None:
        self._fn = fn
        self.window = window
        self.max_size = max_size
        self.cache = LRU(cache_size)
        self._observe = observe
        self._pending: dict[str, asyncio.Future[np.ndarray]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # backend calls made (tests and the bench read it)

    async def embed(self, texts: list[str]) -> np.ndarray:
        futures: list[asyncio.Future[np.ndarray] | np.ndarray] = []
        for text in texts:
            cached = self.cache.get(text)
            futures.append(cached if cached is not None else self._enqueue(text))
        # Shielded: identical texts share one future, and a caller that gives up (its own
        # timeout) must not cancel the answer the other callers are waiting for.
        rows = [f if isinstance(f, np.ndarray) else await asyncio.shield(f) for f in futures]
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def _enqueue(self, text: str) -> asyncio.Future[np.ndarray]:
        fut = self._pending.get(text)
        if fut is not None:
            return fut
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending[text] = fut
        if len(self._pending) >= self.max_size:
            self._dispatch()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._dispatch)
        return fut

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, {}
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: dict[str, asyncio.Future[np.ndarray]]) -> None:
        texts = list(batch)
        self.calls += 1
        if self._observe is not None:
            self._observe(len(texts))
        try:
            rows = await self._fn(texts)
            if rows.shape[0] != len(texts):
                raise EmbedderError("malformed", f"{rows.shape[0]} vectors for {len(texts)} texts")
        except BaseException as exc:
            error = exc if isinstance(exc, EmbedderError) else EmbedderError("error", str(exc))
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(error)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for text, row in zip(texts, rows, strict=True):
            self.cache.put(text, row)
            fut = batch[text]
            if not fut.done():
                fut.set_result(row)

    async def close(self) -> None:
        self._dispatch()
        for task in list(self._tasks):
            task.cancel()
