"""llmcache command line: one subcommand per process the project runs.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; they are
imported only when chosen, so the sidecar never pays for the operator's or the embedder's
imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

COMMANDS = {
    "sidecar": ("llmcache.sidecar.cli", "the caching reverse proxy (runs beside the app)"),
    "operator": ("llmcache.operator.cli", "the CachePolicy operator and injection webhook"),
    "embedder": ("llmcache.embedder.cli", "the shared embedding service for semantic caching"),
    "upstream-sim": (
        "llmcache.upstream_sim.cli",
        "a local server of the Anthropic/OpenAI wire formats (tests, demos, benchmarks)",
    ),
    "bench": (
        "llmcache.bench.cli",
        "benchmarks: latency, workload, redis-faults, semantic precision",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="llmcache", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"llmcache {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints usage or the "invalid choice" error and exits
        return 2
    module_name, help_text = COMMANDS[argv[0]]
    if argv[0] in ("sidecar", "embedder"):  # before numpy loads (see embedder/threads.py)
        from llmcache.embedder import threads

        threads.pin_from_env()
    module = importlib.import_module(module_name)
    command = argparse.ArgumentParser(
        prog=f"llmcache {argv[0]}",
        description=help_text,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,  # every --help shows defaults
    )
    module.add_arguments(command)
    return int(module.run(command.parse_args(argv[1:])) or 0)


def _version() -> str:
    try:
        return version("llmcache")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
