"""``llmcache upstream-sim``: the simulated Anthropic/OpenAI upstream as a process."""

from __future__ import annotations

import argparse
import sys

from llmcache import serving

from .app import create_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen", default="127.0.0.1:9000", help="HOST:PORT (port 0: any free port)"
    )
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token, ms")
    parser.add_argument("--ms-per-token", type=float, default=0.0, help="per output token, ms")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="relative latency jitter, e.g. 0.1"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latency jitter")
    parser.add_argument(
        "--cache-min-tokens",
        type=int,
        default=None,
        help="minimum cacheable prompt prefix for provider-side caching (default: the real ones)",
    )


async def _serve(args: argparse.Namespace) -> None:
    app = create_app(
        ttft_ms=args.ttft_ms,
        ms_per_token=args.ms_per_token,
        jitter=args.jitter,
        seed=args.seed,
        cache_min_tokens=args.cache_min_tokens,
    )
    await serving.serve(app, args.listen)


def run(args: argparse.Namespace) -> int:
    try:
        serving.run(_serve(args))
    except OSError as err:
        print(f"upstream-sim: {err}", file=sys.stderr)
        return 1
    return 0
