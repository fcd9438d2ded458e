"""The in-process local model, batched and cached; the model runs on a worker thread so the
event loop keeps serving hits while a batch is embedded."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import threads as thread_counts
from .batching import Batcher, Observer
from .minilm import MiniLM

_MODELS: dict[int, MiniLM] = {}


def shared_model(threads: int | None = None) -> MiniLM:
    """One model per process and thread count (``threads.model_threads()`` unless given),
    however many layers or apps use it."""
    n = threads or thread_counts.model_threads()
    if n not in _MODELS:
        _MODELS[n] = MiniLM(threads=n)
    return _MODELS[n]


class LocalEmbedder:
    def __init__(
        self,
        window_ms: float = 2.0,
        max_batch: int = 64,
        cache_size: int = 10_000,
        observe: Observer | None = None,
        threads: int | None = None,
    ) -> None:
        self._model = shared_model(threads)
        self.model = self._model.name
        self.threads = self._model.threads
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self.batcher = Batcher(self._run, window_ms / 1000, max_batch, cache_size, observe)

    async def _run(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._model.embed, texts)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self.batcher.embed(texts)

    async def close(self) -> None:
        await self.batcher.close()
        self._pool.shutdown(wait=False)
