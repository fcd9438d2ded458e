"""Running an aiohttp app as one of llmcache's processes: bind, say where, stop on a signal.

Every process prints ``listening on http://HOST:PORT`` once per bound address (port 0 picks
a free port); the tests, the benchmarks and people starting it by hand read that line.
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web


def split_address(address: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``host:port`` (``[::1]:80``, ``:8080``) as a pair."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or default_host, int(port)


async def start(
    app: web.Application, address: str, default_host: str = "127.0.0.1", backlog: int = 128
) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, *split_address(address, default_host), backlog=backlog)
    await site.start()
    for host, port, *_ in runner.addresses:
        print(f"listening on http://{host}:{port}", flush=True)
    return runner


async def until_stopped() -> None:
    """Return on SIGINT or SIGTERM (Kubernetes stops pods with SIGTERM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(app: web.Application, address: str, backlog: int = 128) -> None:
    runner = await start(app, address, backlog=backlog)
    try:
        await until_stopped()
    finally:
        await runner.cleanup()
