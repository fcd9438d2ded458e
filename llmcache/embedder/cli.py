"""``llmcache embedder --listen HOST:PORT``."""

from __future__ import annotations

import argparse
import os

from llmcache import serving

from . import threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        default=os.environ.get("LLMCACHE_EMBEDDER_LISTEN", "127.0.0.1:8790"),
        help="host:port to serve /v1/embeddings on [LLMCACHE_EMBEDDER_LISTEN]",
    )
    parser.add_argument(
        "--window-ms", type=float, default=2.0, help="how long a batch waits for more inputs, ms"
    )
    parser.add_argument(
        "--max-batch", type=int, default=64, help="inputs embedded together at most"
    )
    parser.add_argument(
        "--cache-size", type=int, default=10_000, help="texts whose vectors are kept (exact LRU)"
    )
    parser.add_argument(
        "--threads",
        type=_threads,
        default=os.environ.get(threads.ENV, str(threads.DEFAULT)),
        help=f"threads of the model (onnxruntime) and numpy's BLAS [{threads.ENV}]",
    )


def _threads(value: str) -> int:
    try:
        return threads.configured(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads.limit(args.threads)
    from .service import create_app

    serving.run(
        serving.serve(create_app(args.window_ms, args.max_batch, args.cache_size), args.listen)
    )
    return 0
