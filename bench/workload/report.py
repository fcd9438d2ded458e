"""The workload results as a table (stdout, README), JSON and a PNG chart."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

TARGETS = {"hit_rate": 0.60, "cost_change": -0.50, "wall_change": -0.60}


def verdicts(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Targets are judged on the richest cache mode that ran; wrong answers on every mode."""
    ran = [s for s in summaries if s.get("available") and s["mode"] != "direct"]
    if not ran:
        return {}
    best = next((s for s in ran if s["mode"] == "all"), ran[-1])
    return {
        "judged_mode": best["mode"],
        "hit_rate": {"value": best["hit_rate"], "target": ">= 60 %",
                     "pass": best["hit_rate"] >= TARGETS["hit_rate"]},
        "cost_change": {"value": best.get("cost_change", 0.0), "target": "<= -50 %",
                        "pass": best.get("cost_change", 0.0) <= TARGETS["cost_change"]},
        "wall_change": {"value": best.get("wall_change", 0.0), "target": "<= -60 %",
                        "pass": best.get("wall_change", 0.0) <= TARGETS["wall_change"]},
        "wrong_answers": {"value": sum(s["wrong_answers"] for s in ran),
                          "target": "0 in every mode",
                          "pass": all(s["wrong_answers"] == 0 for s in ran)},
    }  # fmt: skip


def _fmt_layers(s: dict[str, Any]) -> str:
    return " ".join(f"{k}:{v:.1%}" for k, v in s["layer_hit_rate"].items()) or "-"


def _semantic(s: dict[str, Any], key: str) -> str:
    """A semantic-layer cell: counts, or p50 / p99 of the time its lookups took."""
    sem = s.get("semantic")
    if not sem:
        return "-"
    if "/" in key:  # lookup counts by outcome
        return " / ".join(f"{sem[o + '_lookups']:.0f}" for o in key.split("/"))
    if key in ("on_misses", "on_hits"):
        q = sem[key]
        return f"{q['p50_ms']:.2f} / {q['p99_ms']:.2f}" if q["count"] else "-"
    return f"{sem[key]}"


def _peers(s: dict[str, Any]) -> str:
    """Sidecar processes, and how many misses led or joined a call across them."""
    peers = s.get("peer_coalescing") or {}
    if s.get("pods", 1) <= 1 and not peers:
        return "1"
    return f"{s.get('pods', 1)} ({peers.get('led', 0):.0f}/{peers.get('joined', 0):.0f})"


def table(summaries: list[dict[str, Any]]) -> str:
    cols = [s for s in summaries if s.get("available")]
    missing = [s for s in summaries if not s.get("available")]
    rows: list[tuple[str, Any]] = [
        ("requests", lambda s: f"{s['requests']}"),
        ("upstream LLM calls", lambda s: f"{s['upstream_calls']}"),
        ("vector-store queries", lambda s: f"{s.get('vector_store_queries', 0)}"),
        ("hit rate (combined)", lambda s: f"{s['hit_rate']:.1%}"),
        ("hit rate by layer", _fmt_layers),
        ("tokens spent", lambda s: f"{s['tokens_spent']:,}"),
        ("tokens saved", lambda s: f"{s['tokens_saved']:,}"),
        ("USD spent", lambda s: f"{s['usd_spent']:.4f}"),
        ("USD saved", lambda s: f"{s['usd_saved']:.4f}"),
        ("cost vs no cache", lambda s: f"{s['cost_change']:+.1%}" if "cost_change" in s else "-"),
        ("wall time s", lambda s: f"{s['wall_s']:.1f}"),
        ("wall vs no cache", lambda s: f"{s['wall_change']:+.1%}" if "wall_change" in s else "-"),
        ("p50 ms", lambda s: f"{s['p50_ms']:.1f}"),
        ("p95 ms", lambda s: f"{s['p95_ms']:.1f}"),
        ("p99 ms", lambda s: f"{s['p99_ms']:.1f}"),
        ("errors", lambda s: f"{s['errors']}"),
        ("miss p50 / p99 ms", lambda s: f"{s['miss_p50_ms']:.1f} / {s['miss_p99_ms']:.1f}"),
        ("semantic hits", lambda s: _semantic(s, "hits")),
        ("semantic wrong", lambda s: _semantic(s, "wrong_answers")),
        ("sem. +ms on misses", lambda s: _semantic(s, "on_misses")),
        ("sem. ms on hits", lambda s: _semantic(s, "on_hits")),
        ("sem skip/overld/tmo", lambda s: _semantic(s, "skipped/overloaded/timeout")),
        ("pods (led/joined)", _peers),
        ("wrong answers", lambda s: f"{s['wrong_answers']}"),
        ("semantic-equivalent", lambda s: f"{s['semantic_equivalent_answers']}"),
    ]
    width = max(24, *(len(s["title"]) + 2 for s in cols))
    lines = [f"| {'':20} |" + "|".join(f" {s['title']:>{width}} " for s in cols) + "|"]
    lines.append("|" + "-" * 22 + "|" + "|".join("-" * (width + 2) for _ in cols) + "|")
    for label, fn in rows:
        lines.append(f"| {label:20} |" + "|".join(f" {fn(s):>{width}} " for s in cols) + "|")
    for s in missing:
        lines.append(f"\n{s['title']}: not run ({s.get('reason', '')})")
    return "\n".join(lines)


def composition_text(comp: dict[str, Any]) -> str:
    shares = comp["shares"]
    order = ["first", "repeat", "paraphrase", "fresh", "burst-dup"]
    parts = [f"{k} {shares.get(k, 0.0):.1%}" for k in order]
    return (
        f"trace: {comp['requests']} requests from {comp['agents']} agents "
        f"({', '.join(f'{k} {v}' for k, v in comp['routes'].items())}); "
        f"{comp['streaming_share']:.0%} streaming; composition: "
        + ", ".join(parts)
        + " (first = first ask of a task wording; repeat = exact repeat of an earlier request; "
        "paraphrase = other wording of an earlier task; fresh = never repeats; "
        "burst-dup = extra copies sent concurrently)"
    )


def verdict_text(v: dict[str, Any]) -> str:
    if not v:
        return ""
    lines = [f"targets (judged on mode '{v['judged_mode']}'):"]
    for key in ("hit_rate", "cost_change", "wall_change", "wrong_answers"):
        item = v[key]
        value = item["value"]
        shown = f"{value:+.1%}" if key.endswith("change") else (
            f"{value:.1%}" if key == "hit_rate" else str(value))  # fmt: skip
        lines.append(f"  {'PASS' if item['pass'] else 'MISS'}  {key}: {shown} "
                     f"(target {item['target']})")  # fmt: skip
    return "\n".join(lines)


def ceiling_text(bound: dict[str, float]) -> str:
    return (
        "ceiling on this trace (a perfect cache, simulated from the no-cache step times): "
        f"exact {bound['exact']:+.1%}, exact+semantic {bound['semantic']:+.1%} wall time"
    )


def chart(summaries: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [s for s in summaries if s.get("available")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in cols:
        lat = s["latencies_ms"]
        n = len(lat)
        ax1.step(lat, [(i + 1) / n for i in range(n)], where="post", label=s["title"])
    ax1.set_xscale("log")
    ax1.set_xlabel("request latency, ms (log)")
    ax1.set_ylabel("share of requests")
    ax1.set_title("latency CDF per mode")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    names = [textwrap.fill(s["title"], 16) for s in cols]
    spent = [s["usd_spent"] for s in cols]
    saved = [s["usd_saved"] for s in cols]
    ax2.bar(names, spent, label="USD spent (upstream)", color="#c0392b")
    ax2.bar(names, saved, bottom=spent, label="USD saved (served from cache)", color="#27ae60")
    ax2.set_ylabel("USD (list prices)")
    ax2.set_title("cost per mode")
    ax2.tick_params(axis="x", labelsize=7)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
