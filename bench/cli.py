"""``llmcache bench <name>``: latency, workload, redis-faults, and (when installed) semantic
precision."""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from . import fleet_stats, latency, redisfaults
from .workload import cli as workload


def _semantic() -> ModuleType | None:
    """The semantic-precision benchmark lives in its own package; it may not exist yet."""
    try:
        return importlib.import_module("llmcache.bench.semantic")
    except ImportError:
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    latency.add_arguments(
        sub.add_parser("latency", help="hit/miss latency and throughput vs. this machine's floors")
    )
    workload.add_arguments(
        sub.add_parser("workload", help="replay a multi-agent trace: no cache vs. cache modes")
    )
    redisfaults.add_arguments(
        sub.add_parser(
            "redis-faults", help="Redis killed and frozen under load: every answer checked"
        )
    )
    fleet_stats.add_arguments(
        sub.add_parser(
            "fleet-stats", help="10 000 simulated sidecars' statistics to two real operators"
        )
    )
    semantic = _semantic()
    if semantic is not None and hasattr(semantic, "add_arguments"):
        semantic.add_arguments(sub.add_parser("semantic", help="semantic-layer precision"))
    else:
        sub.add_parser("semantic", help="semantic-layer precision (not installed)")


def run(args: argparse.Namespace) -> int:
    if args.bench == "latency":
        return latency.run(args)
    if args.bench == "workload":
        return workload.run(args)
    if args.bench == "redis-faults":
        return redisfaults.run(args)
    if args.bench == "fleet-stats":
        return fleet_stats.run(args)
    semantic = _semantic()
    if semantic is None or not hasattr(semantic, "run"):
        print("llmcache bench semantic: llmcache.bench.semantic is not available yet")
        return 2
    return int(semantic.run(args) or 0)
