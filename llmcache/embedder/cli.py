"""``llmcache embedder --listen HOST:PORT``."""

from __future__ import annotations

import argparse
import asyncio
import os

from aiohttp import web


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen", default=os.environ.get("LLMCACHE_EMBEDDER_LISTEN", "127.0.0.1:8790")
    )
    parser.add_argument("--window-ms", type=float, default=2.0, help="batching window")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--cache-size", type=int, default=10_000, help="exact LRU entries")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .service import create_app

    host, _, port = args.listen.rpartition(":")
    return asyncio.run(
        _serve(create_app(args.window_ms, args.max_batch, args.cache_size), host, int(port))
    )


async def _serve(app: web.Application, host: str, port: int) -> int:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or "127.0.0.1", port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    print(f"listening on http://{host or '127.0.0.1'}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0
