"""``llmcache bench semantic`` memory rows: what a sidecar's semantic index costs at start
and in memory, and what a bound below the working set costs in hits.

- ``start``: generated records (384-d, clustered like prompt embeddings, a 200-character
  text each, over ``PARTITIONS`` partitions) written into a real ``redis-server`` the way
  the sidecar writes them; then a real sidecar process starts against it and is timed to
  ready (it prints that it listens, and ``/readyz`` answers) and to loaded (``/readyz``
  lists no layer still ``loading``), and its RSS read from ``/proc`` once loaded, beside a
  sidecar with no records.
- ``bounded``: a Zipf-distributed stream of near-duplicate queries over N records, through
  the real index with a bound of N/10 records: hit rate with least-recently-used eviction
  (a hit refreshes its record), with first-in-first-out eviction (what the index did before
  it had recency), and with no bound (the ceiling).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

PARTITIONS = 10
DIM = 384
TEXT = (
    "Question {i}: how should the service handle a retry after a timeout when the upstream "
    "answers slowly, and which settings of the client library decide how long it waits?"
)
WRITE_BATCH = 1_000
UNBOUNDED = {"maxEntries": 10_000_000, "maxBytes": 64 * 1024**3}


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    centers = rng.standard_normal((max(n // 50, 1), DIM)).astype(np.float32)
    rows = centers[rng.integers(0, len(centers), n)]
    rows = rows + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (comparable on a loaded machine)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
        return body


def _gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and 'layer="semantic"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def start(redis_url: str, bounds: dict[str, int], timeout: float = 1_800.0) -> dict[str, Any]:
    """Start a sidecar against the filled Redis: seconds to ready and to loaded, RSS."""
    from ..procs import Proc

    semantic = {
        "enabled": True,
        # Never called here (no request is embedded); the local model would add its own RSS.
        "embedder": {"url": "http://127.0.0.1:9/v1", "model": "generated"},
        **bounds,
    }
    t0 = time.perf_counter()
    proc = Proc(
        [sys.executable, "-m", "llmcache", "sidecar", "--listen", "127.0.0.1:0",
         "--redis-url", redis_url, "--policy-json", json.dumps({"semantic": semantic})],
        timeout=120,
    )  # fmt: skip
    try:
        ready_s = time.perf_counter() - t0
        ready_cpu = _cpu_seconds(proc.pid)
        ready = json.loads(_get(f"{proc.url}/readyz"))
        deadline = time.monotonic() + timeout
        while json.loads(_get(f"{proc.url}/readyz"))["loading"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not loaded within {timeout} s")
            time.sleep(0.05)
        loaded_s = time.perf_counter() - t0
        loaded_cpu = _cpu_seconds(proc.pid)
        metrics = _get(f"{proc.url}/metrics").decode()
        rss, peak = _rss_mb(proc.pid)
        return {
            "ready_seconds": round(ready_s, 2),
            "loading_when_ready": bool(ready["loading"]),
            "loaded_seconds": round(loaded_s, 2),
            "ready_cpu_seconds": round(ready_cpu, 2),
            "loaded_cpu_seconds": round(loaded_cpu, 2),
            "records_held": int(_gauge(metrics, "llmcache_semantic_index_entries")),
            "index_mb": round(_gauge(metrics, "llmcache_semantic_index_bytes") / 1e6, 1),
            "rss_mb": rss,
            "peak_rss_mb": peak,
        }
    finally:
        proc.stop()


def start_rows(sizes: tuple[int, ...], capped: int | None) -> list[dict[str, Any]]:
    """One row per size with no bound, then (``capped``) the largest size at the defaults."""
    from llmcache import keyspace

    from ..procs import RedisProc

    prefix = keyspace.policy_prefix("llmcache", None, None)
    rows: list[dict[str, Any]] = []
    redis = RedisProc()
    try:
        empty = start(redis.url, UNBOUNDED)
        rows.append({"records": 0, "bound": "none", "fill_seconds": 0.0, **empty})
        print_start(rows[-1:])
        written = 0
        for n in sorted(sizes):
            fill_s = fill_more(redis.url, prefix, written, n)
            written = n
            rows.append({"records": n, "bound": "none", "fill_seconds": fill_s,
                         **start(redis.url, UNBOUNDED)})  # fmt: skip
            print_start(rows[-1:])
        if capped and written:
            rows.append({"records": written, "bound": "defaults (64 MiB)",
                         "fill_seconds": 0.0, **start(redis.url, {})})  # fmt: skip
            print_start(rows[-1:])
    finally:
        redis.stop()
    return rows


def fill_more(redis_url: str, prefix: str, have: int, want: int) -> float:
    """Grow the records from ``have`` to ``want`` (ids ``have``..``want-1``)."""
    if want <= have:
        return 0.0
    import redis
    from llmcache.sidecar.semantic.index import Record
    from llmcache.sidecar.semantic.store import encode_record

    client = redis.Redis.from_url(redis_url)
    rng = np.random.default_rng(have + 11)
    base = time.time() + 86_400
    t0 = time.perf_counter()
    for lo in range(have, want, WRITE_BATCH):
        hi = min(want, lo + WRITE_BATCH)
        vectors = _rows(rng, hi - lo)
        pipe = client.pipeline(transaction=False)
        ids: dict[str, float] = {}
        for i in range(lo, hi):
            rid = f"{i:032x}"
            record = Record(rid, f"p{i % PARTITIONS}", TEXT.format(i=i), "m", base + i)
            pipe.set(f"{prefix}:s:v:{rid}", encode_record(record, vectors[i - lo]), ex=90_000)
            ids[rid] = record.expires
        pipe.zadd(f"{prefix}:s:ids", ids)
        pipe.execute()
    client.close()
    return round(time.perf_counter() - t0, 2)


def print_start(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        print(
            f"  {r['records']:>9d} records  bound {r['bound']:18s}"
            f"  ready {r['ready_seconds']:6.2f} s ({r['ready_cpu_seconds']:.2f} CPU)"
            f"  loaded {r['loaded_seconds']:7.2f} s ({r['loaded_cpu_seconds']:.2f} CPU)"
            f"  held {r['records_held']:>9d}"
            f"  index {r['index_mb']:8.1f} MB  RSS {r['rss_mb']:8.1f} MB"
            f"  (peak {r['peak_rss_mb']:.1f})"
        )


# -- hit rate under a bound -----------------------------------------------------------------


def bounded(n: int, queries: int, zipf_s: float = 1.1, seed: int = 5) -> list[dict[str, Any]]:
    """Hit rate of a Zipf stream of near-duplicates over ``n`` records, bound ``n // 10``.

    A query for record ``k`` is ``k``'s vector plus noise (cosine ~0.98 to it); a hit is the
    index returning ``k`` above 0.9. A miss stores ``k`` again (what the sidecar does with
    the fresh answer), so the index holds what the stream asks for, within the bound."""
    from . import _one_thread

    with _one_thread():  # as a sidecar runs it (--embed-threads 1), and as ``latency`` does
        return _bounded(n, queries, zipf_s, seed)


def _bounded(n: int, queries: int, zipf_s: float, seed: int) -> list[dict[str, Any]]:
    from llmcache.sidecar.semantic.index import Record, VectorIndex

    rng = np.random.default_rng(seed)
    vectors = _rows(rng, n)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    weights = ranks**-zipf_s
    weights /= weights.sum()
    picks = rng.choice(n, size=queries, p=weights)
    noise = rng.standard_normal((queries, DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    bound = max(1, n // 10)
    far = time.time() + 86_400
    rows = []
    for name, cap, recency in (
        ("no bound", n, True),
        ("LRU, bound n/10", bound, True),
        ("FIFO, bound n/10 (before)", bound, False),
    ):
        index = VectorIndex(DIM, cap)
        hits = 0
        t0 = time.perf_counter()
        for q, k in enumerate(picks):
            query = vectors[k] * 0.98 + noise[q] * 0.2
            query /= np.linalg.norm(query)
            found = index.search("p", query)
            if found is not None and found[0].id == str(k) and found[1] >= 0.9:
                hits += 1
                if recency:
                    index.touch(str(k))
            else:
                index.add(Record(str(k), "p", "", "m", far), vectors[k])
        rows.append({
            "records": n, "queries": queries, "zipf_s": zipf_s, "policy": name,
            "bound": cap, "hit_rate": round(hits / queries, 4),
            "seconds": round(time.perf_counter() - t0, 2),
        })  # fmt: skip
    # The best any bound of n/10 can do: always holding the n/10 most asked-for records.
    top = set(np.argsort(-weights)[:bound].tolist())
    first_seen: set[int] = set()
    oracle = 0
    for k in picks.tolist():
        oracle += k in top and k in first_seen
        first_seen.add(k)
    rows.append({
        "records": n, "queries": queries, "zipf_s": zipf_s,
        "policy": "oracle (the n/10 most asked, after first ask)", "bound": bound,
        "hit_rate": round(oracle / queries, 4), "seconds": 0.0,
    })  # fmt: skip
    return rows


def print_bounded(rows: list[dict[str, Any]]) -> None:
    print("\nhit rate under a bound (Zipf stream of near-duplicates, real index)")
    for r in rows:
        print(
            f"  {r['records']:>8d} records  {r['queries']:>7d} queries  s={r['zipf_s']}"
            f"  {r['policy']:46s} bound {r['bound']:>7d}  hit rate {r['hit_rate']:.3f}"
        )
