"""The Redis floor: what one GET round trip costs a redis-py asyncio client on this machine.

Three client shapes, each at 1 and at 32 concurrent callers: one connection (requests
serialised on it), a pool of 32 connections, and one connection whose concurrent GETs are
gathered into one MGET per event-loop turn (the shape the sidecar's L2 should have).
``redis-benchmark`` (C) gives the server's own floor when installed.

Run as a process of its own: ``python -m llmcache.bench.redisfloor URL SECONDS`` -> JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from typing import Any

from .procs import pinned

KEY = "llmcache-bench:floor"
VALUE = b"x" * 1024


class MgetBatcher:
    """Concurrent ``get`` calls made in one loop turn leave as a single MGET."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._pending: list[tuple[str, asyncio.Future[bytes | None]]] = []

    async def get(self, key: str) -> bytes | None:
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._pending.append((key, fut))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))
        return await fut

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            values = await self._client.mget([k for k, _ in batch])
        except Exception as exc:  # every waiter learns of the failure
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for (_, fut), value in zip(batch, values, strict=True):
            fut.set_result(value)


async def _measure(get: Any, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    timeouts = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal timeouts
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(get(KEY), 2.0)
            except TimeoutError:
                timeouts += 1
                continue
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(0.99 * n))] * 1000 if n else 0.0,
        "timeouts": timeouts,
    }


async def _all(url: str, seconds: float) -> dict[str, Any]:
    from redis.asyncio import BlockingConnectionPool, Redis

    setup = Redis.from_url(url)
    await setup.set(KEY, VALUE)
    await setup.aclose()
    out: dict[str, Any] = {}
    shapes = {
        "redis-py, 1 connection": 1,
        "redis-py, pool of 32": 32,
        "redis-py, 1 conn + MGET batching": 1,
    }
    for name, connections in shapes.items():
        pool = BlockingConnectionPool.from_url(url, max_connections=connections, timeout=5)
        client = Redis(connection_pool=pool)
        get = MgetBatcher(client).get if "MGET" in name else client.get
        await get(KEY)  # connect outside the measurement
        out[name] = {
            "c1": await _measure(get, 1, seconds),
            "c32": await _measure(get, 32, seconds),
        }
        await client.aclose()
    return out


def redis_benchmark(port: int, core: int | None, requests: int = 50_000) -> dict[str, Any]:
    """``redis-benchmark -t get`` at 1 and 32 clients, or {} when it is not installed."""
    if shutil.which("redis-benchmark") is None:
        return {}
    out: dict[str, Any] = {}
    for clients in (1, 32):
        n = requests // 5 if clients == 1 else requests
        cmd = pinned(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "get", "-d", "1024",
             "-c", str(clients), "-n", str(n), "--csv"],
            core,
        )  # fmt: skip
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        row = next((line for line in text.splitlines() if line.startswith('"GET"')), "")
        fields = [f.strip('"') for f in row.split(",")]
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95...","p99...","max"
        if len(fields) >= 7 and re.match(r"^[\d.]+$", fields[1]):
            out[f"c{clients}"] = {
                "rps": float(fields[1]),
                "p50_ms": float(fields[4]),
                "p99_ms": float(fields[6]),
                "timeouts": 0,
            }
    return out


def main() -> None:
    url, seconds = sys.argv[1], float(sys.argv[2])
    print(json.dumps(asyncio.run(_all(url, seconds))))


if __name__ == "__main__":
    main()
