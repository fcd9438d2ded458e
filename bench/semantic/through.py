"""``llmcache bench semantic`` recall rows through a running sidecar: does the sidecar serve
the paraphrases the offline computation predicts, also when lookups come in bursts? (issue
14: "the semantic layer's recall through a loaded sidecar equal to its offline recall").

A real sidecar (in-process local model, memory store, the policy's defaults with the semantic
layer on, so ``timeoutMs`` 250) in front of the API simulator (300 ms to the first token).
Each true paraphrase pair of the tuning split gets a partition of its own (its own system
prompt); the first wordings are asked and their answers indexed, then the second wordings,
``concurrency`` at a time, on a quiet machine or beside processes that spin on the cores.
A row counts the pairs the offline computation (same model, threshold and guards) predicts
as semantic hits, the ones the sidecar served from its semantic layer, and the lookups that
gave up (timed out, or skipped because the embedder was overloaded): a lookup that gives up
is a miss, so under load the two counts part. Rows share one sidecar, in order: how warm
the model is and what the embedder's recent speed was carry over from row to row.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

import aiohttp
from llmcache.bench.procs import Proc, llmcache, wait_until
from prometheus_client.parser import text_string_to_metric_families

# (lookups at a time, processes spinning beside the sidecar: an application taking the cores)
CASES = ((1, 0), (16, 0), (16, 2), (64, 2), (64, 6))
PAIRS = 120
POLICY = {"semantic": {"enabled": True}}
_HEADERS = {"x-api-key": "bench-key", "anthropic-version": "2023-06-01"}


def _metric(base: str, name: str, **labels: str) -> float:
    """The sum of a sidecar's samples ``name`` that carry ``labels``."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _gave_up(base: str) -> float:
    return sum(
        _metric(base, "llmcache_semantic_lookup_seconds_count", outcome=outcome)
        for outcome in ("timeout", "overloaded")
    )


def _pairs(n: int) -> tuple[list[tuple[str, str]], list[bool]]:
    """The first ``n`` paraphrase pairs of the tuning split, and which of them the offline
    computation predicts as semantic hits."""
    from llmcache.sidecar.semantic import guards
    from llmcache.sidecar.semantic.thresholds import effective_threshold

    from llmcache.embedder.minilm import MODEL_NAME, MiniLM

    from .pairs import labelled

    pairs = [(a, b) for a, b, same, _ in labelled("tuning") if same][:n]
    model = MiniLM()
    first = model.embed([a for a, _ in pairs])
    second = model.embed([b for _, b in pairs])
    threshold = effective_threshold(None, MODEL_NAME)
    predicted = [
        float(x @ y) >= threshold and guards.first_failure(b, a) is None
        for x, y, (a, b) in zip(first, second, pairs, strict=True)
    ]
    return pairs, predicted


async def _ask(http: aiohttp.ClientSession, base: str, partition: int, text: str) -> dict[str, str]:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 1024,
        "system": f"You answer questions for partition {partition}.",
        "messages": [{"role": "user", "content": text}],
    }
    async with http.post(f"{base}/anthropic/v1/messages", json=body, headers=_HEADERS) as resp:
        await resp.read()
        resp.raise_for_status()
        return {k.lower(): v for k, v in resp.headers.items() if k.lower().startswith("x-llm")}


async def _round(
    base: str, pairs: list[tuple[str, str]], offset: int, concurrency: int
) -> list[bool]:
    """Fill the partitions ``offset`` onwards with the first wordings (answers indexed), then
    ask the second wordings ``concurrency`` at a time; which were semantic hits."""
    gate = asyncio.Semaphore(concurrency)  # the fill too: it is not measured
    async with aiohttp.ClientSession() as http:
        before = _metric(base, "llmcache_stores_total", layer="semantic")

        async def first(i: int, text: str) -> None:
            async with gate:
                await _ask(http, base, offset + i, text)

        await asyncio.gather(*(first(i, a) for i, (a, _) in enumerate(pairs)))
        await asyncio.to_thread(
            wait_until,
            lambda: _metric(base, "llmcache_stores_total", layer="semantic") >= before + len(pairs),
            120.0,
        )

        async def second(i: int, text: str) -> bool:
            async with gate:
                headers = await _ask(http, base, offset + i, text)
            return (headers.get("x-llmcache"), headers.get("x-llmcache-layer")) == (
                "hit",
                "semantic",
            )

        return list(await asyncio.gather(*(second(i, b) for i, (_, b) in enumerate(pairs))))


def measure(n: int = PAIRS) -> list[dict[str, Any]]:
    """One row per case: predicted and served semantic hits, and lookups given up."""
    pairs, predicted = _pairs(n)
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0", "--ttft-ms", "300")
    sidecar: Proc | None = None
    rows = []
    try:
        sidecar = llmcache(
            "sidecar", "--listen", "127.0.0.1:0", "--anthropic-upstream", sim.url,
            "--openai-upstream", sim.url, "--policy-json", json.dumps(POLICY),
            "--log-level", "warning",
        )  # fmt: skip
        base = sidecar.url
        for k, (concurrency, busy) in enumerate(CASES):
            gave_up = _gave_up(base)
            hogs = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)
            ]
            try:
                t0 = time.perf_counter()
                served = asyncio.run(_round(base, pairs, k * len(pairs), concurrency))
                seconds = time.perf_counter() - t0
                load = os.getloadavg()[0]
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            rows.append(
                {
                    "concurrency": concurrency,
                    "busy_processes": busy,
                    "pairs": len(pairs),
                    "predicted": sum(predicted),
                    "served": sum(served),
                    "served_not_predicted": sum(
                        s and not p for s, p in zip(served, predicted, strict=True)
                    ),
                    "gave_up": int(_gave_up(base) - gave_up),
                    "seconds": round(seconds, 1),
                    "load_1min": round(load, 2),
                }
            )
    finally:
        if sidecar is not None:
            sidecar.stop()
        sim.stop()
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print("\nrecall through a sidecar (in-process model, timeoutMs 250, tuning paraphrases)")
    for r in rows:
        print(
            f"  {r['concurrency']:2d} at a time, {r['busy_processes']} busy processes: served "
            f"{r['served']:3d} of {r['predicted']} predicted ({r['pairs']} pairs; "
            f"{r['gave_up']} lookups gave up, "
            f"{r['served_not_predicted']} served unpredicted; load {r['load_1min']})"
        )
