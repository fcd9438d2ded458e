"""Embedding latency of the local model as the sidecar runs it (micro-batched on one worker
thread), by model thread count and concurrency: what a semantic lookup waits for.

Every request embeds a text not seen before (the exact LRU is off), so each row measures the
model, not the cache. Rows: model threads (1, 2) x concurrent requests (1, 32); with 32
concurrent requests the batcher merges them into shared model calls, so the latency is a
batch's, and the texts per second show what batching buys.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

THREADS = (1, 2)
CONCURRENCY = (1, 32)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(
    texts: list[str], concurrency: int, threads: int
) -> tuple[list[float], float, int]:
    from llmcache.embedder.local import LocalEmbedder

    embedder = LocalEmbedder(cache_size=0, threads=threads)
    queue = list(texts)
    samples: list[float] = []

    async def worker() -> None:
        while queue:
            text = queue.pop()
            t0 = time.perf_counter()
            await embedder.embed([text])
            samples.append(time.perf_counter() - t0)

    await embedder.embed(["warm-up: the first call pays for lazy initialisation"])
    calls_before = embedder.batcher.calls
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    calls = embedder.batcher.calls - calls_before
    await embedder.close()
    return samples, wall, calls


def measure(texts: list[str], requests: int) -> list[dict[str, Any]]:
    """One row per (threads, concurrency): p50/p99/mean latency per request, texts/s."""
    rows = []
    pool = [t for t in texts if t] or ["empty"]
    offset = 0
    for threads in THREADS:
        for concurrency in CONCURRENCY:
            n = max(requests, concurrency * 4)
            batch = [f"{pool[(offset + i) % len(pool)]} ({offset + i})" for i in range(n)]
            offset += n
            load = os.getloadavg()[0]
            samples, wall, calls = asyncio.run(_measure(batch, concurrency, threads))
            rows.append(
                {
                    "threads": threads,
                    "concurrency": concurrency,
                    "requests": n,
                    "model_calls": calls,
                    "p50_ms": round(_pct(samples, 0.50) * 1e3, 2),
                    "p99_ms": round(_pct(samples, 0.99) * 1e3, 2),
                    "mean_ms": round(statistics.fmean(samples) * 1e3, 2),
                    "texts_per_s": round(n / wall, 1),
                    "load_1min": round(load, 2),
                }
            )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"\nembedding latency (local model, micro-batched; {os.cpu_count()} CPUs)")
    for r in rows:
        print(
            f"  {r['threads']} model thread(s), {r['concurrency']:2d} concurrent: "
            f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
            f"{r['texts_per_s']:7.1f} texts/s  ({r['requests']} requests in "
            f"{r['model_calls']} model calls, load {r['load_1min']})"
        )
