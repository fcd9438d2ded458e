"""Real processes for tests: start, wait until they say where they listen, stop."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

LISTENING = re.compile(r"listening on (http://\S+)")


class Proc:
    """A child process whose output is collected on a thread (so its pipe never fills)."""

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        ready: re.Pattern[str] = LISTENING,
        count: int = 1,
        timeout: float = 30.0,
    ) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.popen = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self.urls: list[str] = []
        deadline = time.monotonic() + timeout
        while len(self.urls) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.popen.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.args} did not start:\n" + "".join(self.lines[-40:]))
            try:
                line = self._queue.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            match = ready.search(line)
            if match:
                self.urls.append(match.group(1))

    @property
    def url(self) -> str:
        return self.urls[0]

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)
            self._queue.put(line)

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        return self.popen.returncode


def llmcache(*args: str, env: dict[str, str] | None = None, count: int = 1) -> Proc:
    return Proc([sys.executable, "-m", "llmcache", *args], env=env, count=count)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02
) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


class RedisServer:
    """A real ``redis-server`` on a free loopback port, with no persistence."""

    def __init__(self, workdir: Path) -> None:
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
        return f"redis://127.0.0.1:{self.port}/0"

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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
