"""Real processes for the benchmarks and the tests: start, learn where they listen, pin to
a core, stop. (The tests import this; the benchmarks ship in the package and never import
the test tree.)"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

LISTENING = re.compile(r"listening on (http://\S+)")


def pinned(args: Sequence[str], core: int | None) -> list[str]:
    """``args`` run under ``taskset -c core`` when a core is given and taskset exists."""
    if core is None or shutil.which("taskset") is None or (os.cpu_count() or 1) <= core:
        return list(args)
    return ["taskset", "-c", str(core), *args]


class Proc:
    """A child process whose output is drained on a thread, ready once it prints its URL."""

    def __init__(
        self,
        args: Sequence[str],
        core: int | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        ready: re.Pattern[str] | None = LISTENING,
        count: int = 1,
    ) -> None:
        """Wait until the process has printed ``count`` lines matching ``ready``."""
        self.args = pinned(args, core)
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
        if ready is None:
            return
        deadline = time.monotonic() + timeout
        while len(self.urls) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.popen.poll() is not None:
                self.stop()
                tail = "".join(self.lines[-30:])
                raise RuntimeError(f"{' '.join(self.args)} did not start:\n{tail}")
            try:
                line = self._queue.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            match = ready.search(line)
            if match:
                self.urls.append(match.group(1))

    @property
    def url(self) -> str:
        return self.urls[0] if self.urls else ""

    @property
    def pid(self) -> int:
        return self.popen.pid

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


def llmcache(*args: str, core: int | None = None, env: dict[str, str] | None = None) -> Proc:
    """``python -m llmcache ARGS`` as a child process."""
    return Proc([sys.executable, "-m", "llmcache", *args], core=core, env=env)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    assert callable(predicate)
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"condition not met within {timeout}s")
        time.sleep(interval)


def redis_ping(port: int) -> bool:
    """Whether a Redis on this loopback port answers PING (no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisProc:
    """A real ``redis-server`` on a free loopback port, no persistence, own temp dir."""

    def __init__(self, core: int | None = None, port: int | None = None) -> None:
        """``port``: a given one (to restart a killed Redis where its clients look)."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self._dir = tempfile.TemporaryDirectory(prefix="llmcache-bench-redis-")
        self.port = port or free_port()
        self.popen = subprocess.Popen(
            pinned(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self._dir.name],
                core,
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.ping, timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        return redis_ping(self.port)

    def command(self, *words: str) -> bytes:
        """One inline command, for FLUSHALL and the like (no client library needed)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall((" ".join(words) + "\r\n").encode())
            return s.recv(4096)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._dir.cleanup()
