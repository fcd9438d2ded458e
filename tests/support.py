"""Real processes for tests: llmcache commands and redis-server (the process handling
itself is the benchmarks' ``Proc``)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import redis
from aiohttp import web
from llmcache.bench.procs import LISTENING, Proc, free_port, redis_ping

T = TypeVar("T")

__all__ = [
    "LISTENING", "Proc", "RedisServer", "ThreadedApp", "free_port", "llmcache", "serve_app",
    "wait_for",
]  # fmt: skip


def llmcache(*args: str, env: dict[str, str] | None = None, count: int = 1) -> Proc:
    return Proc([sys.executable, "-m", "llmcache", *args], env=env, count=count)


async def serve_app(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> tuple[
    web.AppRunner, str
]:  # fmt: skip
    """Serve ``app`` in this event loop on a free loopback port: (runner to clean up, URL)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    return runner, f"{scheme}://127.0.0.1:{port}"


class ThreadedApp:
    """``app`` served by an event loop on a thread of its own: for tests that block in an SDK
    call while a sidecar process talks to the app (an embedder, an upstream)."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(serve_app(app), self._loop).result(10)
        self._runner, self.url = started

    def stop(self) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def wait_for(
    predicate: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll until ``predicate`` returns something truthy and return it; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or predicate} not true within {timeout}s")
        time.sleep(interval)


class RedisServer:
    """A real ``redis-server`` on a free loopback port, with no persistence; with
    ``password``, the ``default`` user (the admin) needs it (``url`` carries it)."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.password = password
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError(
                "redis-server is not installed: run `bash .ci/run` or apt-get install redis-server"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        auth = f"default:{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10)

    def ping(self) -> bool:
        if not self.password:
            return redis_ping(self.port)
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
