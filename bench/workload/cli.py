"""``llmcache bench workload``: one trace, replayed without cache and through the sidecar."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import report
from .ceiling import ceiling
from .runner import ModeResult, default_modes, run_modes, summarise
from .trace import TraceConfig, generate

RESULTS = Path(__file__).resolve().parent.parent / "results"
MEAN_OUTPUT_TOKENS = 100  # what the simulator answers to this trace's prompts, about
MISS_SHARE = 0.45  # share of a cached mode's time spent on misses, about


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes",
        type=float,
        default=4.0,
        help="time budget of the whole run; sizes the trace (default 4: ~100 steps per agent)",
    )
    parser.add_argument(
        "--steps-per-agent",
        type=int,
        default=None,
        help="trace length per agent (default: derived from --minutes)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ttft-ms", type=float, default=300.0, help="simulated time to first token (default 300)"
    )
    parser.add_argument(
        "--ms-per-token",
        type=float,
        default=5.0,
        help="simulated time per output token (default 5)",
    )
    parser.add_argument(
        "--modes",
        default="direct,exact,all,batch",
        help="comma-separated subset of direct,exact,all,batch and of pods,pods-shared,fanout,"
        "fanout-shared (the agents over 3 sidecars sharing Redis, coalescing per pod or across "
        "pods; fanout: each burst's copies to different sidecars)",
    )
    parser.add_argument(
        "--semantic-policy",
        default=None,
        help="JSON of the policy's `semantic` section for the all/batch modes",
    )
    parser.add_argument(
        "--rag-query-ms",
        type=float,
        default=40.0,
        help="simulated vector-store query time (default 40)",
    )
    parser.add_argument("--out-dir", default=str(RESULTS))
    parser.add_argument("--name", default="workload", help="output file stem")
    parser.add_argument("--no-chart", action="store_true")  # fmt: skip


def steps_for(minutes: float, ttft_ms: float, ms_per_token: float, cached_modes: int) -> int:
    request_s = (ttft_ms + MEAN_OUTPUT_TOKENS * ms_per_token) / 1000
    budget = minutes * 60 * 0.8  # the rest: start-up, oracle, chart
    per_step = request_s * (1 + MISS_SHARE * cached_modes)
    return max(3, int(budget / max(per_step, 1e-3)))


def step_costs(direct: ModeResult) -> dict[tuple[str, int], float]:
    """Each step's measured time without a cache: its slowest concurrent request."""
    costs: dict[tuple[str, int], float] = {}
    for o in direct.outcomes:
        costs[(o.agent, o.step)] = max(costs.get((o.agent, o.step), 0.0), o.latency_s)
    return costs


def run(args: argparse.Namespace) -> int:
    started = time.time()
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    semantic = json.loads(args.semantic_policy) if args.semantic_policy else None
    modes = [m for m in default_modes(semantic) if m.name in wanted]
    if not modes:
        print("no known mode in --modes", file=sys.stderr)
        return 2
    cached = sum(1 for m in modes if m.policy is not None)
    steps = args.steps_per_agent or steps_for(args.minutes, args.ttft_ms, args.ms_per_token, cached)
    config = replace(TraceConfig(), seed=args.seed, steps_per_agent=steps)
    trace = generate(config)
    comp = trace.composition()
    print(f"llmcache bench workload: seed {args.seed}, {steps} steps per agent, upstream "
          f"TTFT {args.ttft_ms:g} ms + {args.ms_per_token:g} ms/token", flush=True)  # fmt: skip
    print(report.composition_text(comp), flush=True)
    sim_args = ["--ttft-ms", str(args.ttft_ms), "--ms-per-token", str(args.ms_per_token),
                "--seed", str(args.seed)]  # fmt: skip
    results, _oracle = asyncio.run(
        run_modes(trace, modes, sim_args, lambda m: print(m, flush=True), args.rag_query_ms)
    )
    baseline = next((r for r in results if r.mode.name == "direct"), None)
    summaries = [summarise(r, baseline) for r in results]
    verdict = report.verdicts(summaries)
    bound = ceiling(trace, step_costs(baseline)) if baseline and baseline.outcomes else {}
    print()
    print(report.composition_text(comp))
    print()
    print(report.table(summaries))
    print()
    print(report.verdict_text(verdict))
    if bound:
        print(report.ceiling_text(bound))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": {
            "command": "llmcache bench workload " + " ".join(sys.argv[3:]),
            "seed": args.seed,
            "upstream": {"ttft_ms": args.ttft_ms, "ms_per_token": args.ms_per_token},
            "vector_store": {
                "kind": "qdrant (llmcache.upstream_sim.vectorstore)",
                "query_ms": args.rag_query_ms,
            },
            "trace_config": asdict(config),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_seconds_total": time.time() - started,
        },
        "composition": comp,
        "ceiling": {"wall_change": bound},
        "modes": [{k: v for k, v in s.items() if k != "latencies_ms"} for s in summaries],
        "verdicts": verdict,
    }
    (out_dir / f"{args.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    if not args.no_chart:
        report.chart(summaries, out_dir / f"{args.name}.png")
    print(f"\nwrote {out_dir / (args.name + '.json')}"
          + ("" if args.no_chart else f" and {args.name}.png")
          + f" in {time.time() - started:.0f} s")  # fmt: skip
    return 0
