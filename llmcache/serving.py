"""Running an aiohttp app as one of llmcache's processes: bind, say where, stop on a signal.

Every process prints ``listening on http://HOST:PORT`` once per bound address (port 0 picks
a free port); the tests, the benchmarks and people starting it by hand read that line.

A listener started with ``Limits`` bounds what clients can hold: aiohttp alone keeps a
connection that never finishes its request head for an hour, waits for a body forever and
accepts until the process runs out of file descriptors (taking the probes' listener with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from aiohttp import web

log = logging.getLogger(__name__)
T = TypeVar("T")
EVENT_LOOP_ENV = "LLMCACHE_EVENT_LOOP"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (``LLMCACHE_EVENT_LOOP=asyncio``: the
    standard loop). A miss through the sidecar is a few event-loop turns on each side of the
    upstream call; uvloop makes each turn cheaper, which is most of what a miss adds to the
    call (bench/latency: the sidecar and its floors run on the same loop)."""
    if os.environ.get(EVENT_LOOP_ENV, "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


@dataclass(frozen=True)
class Limits:
    """What clients may hold of one listener (documented in README, "Connection limits")."""

    # A connection that has not sent a complete request head this long after it opened or
    # after its previous answer is closed (slow or partial heads, idle keep-alive).
    idle_timeout: float = 60.0
    # A request body must have arrived this long after the handler started on its head.
    body_timeout: float = 60.0
    # Open client connections; further ones get a 503 and are closed.
    max_connections: int = 4096


# The listener's body timeout, for the handlers that read bodies (``Limits.body_timeout``).
BODY_TIMEOUT = web.AppKey("body_timeout", float)


def split_address(address: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``host:port`` (``[::1]:80``, ``:8080``) as a pair."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or default_host, int(port)


async def start(
    app: web.Application,
    address: str,
    default_host: str = "127.0.0.1",
    backlog: int = 128,
    limits: Limits | None = None,
) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = split_address(address, default_host)
    site: web.BaseSite
    if limits is None:
        site = web.TCPSite(runner, host, port, backlog=backlog)
    else:
        site = _LimitedSite(runner, host, port, backlog, limits)
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


# -- bounded listeners -------------------------------------------------------------------------

_REFUSAL_BODY = (
    b'{"type":"error","error":{"type":"overloaded_error",'
    b'"message":"llmcache: too many open connections; retry shortly"}}'
)
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


class _LimitedSite(web.BaseSite):
    """A TCP listener holding at most ``max_connections`` client connections, each closed
    when idle for ``idle_timeout`` (aiohttp's keep-alive timer, which also runs from the
    moment a connection opens and until its request head is complete)."""

    __slots__ = ("_host", "_limits", "_open", "_port")

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, backlog: int, limits: Limits
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port, self._limits = host, port, limits
        self._open = 0

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accept, self._host, self._port, backlog=self._backlog, reuse_address=True
        )

    def _accept(self) -> asyncio.BaseProtocol:
        if self._open >= self._limits.max_connections:
            log.warning(
                "%d client connections open (the limit): refusing new ones with 503",
                self._open,
            )
            return _Refused()
        server = self._runner.server
        assert server is not None
        self._open += 1
        return _Connection(
            self._closed,
            server,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=self._limits.idle_timeout,
            access_log=None,
        )

    def _closed(self) -> None:
        self._open -= 1


class _Connection(web.RequestHandler):
    """aiohttp's connection handler, telling its listener when it is gone."""

    __slots__ = ("_on_closed",)

    def __init__(self, on_closed: Callable[[], None], manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._on_closed: Callable[[], None] | None = on_closed

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._on_closed is not None:
            self._on_closed()
            self._on_closed = None


class _Refused(asyncio.Protocol):
    """Over the limit: a 503 in the APIs' error shape (SDKs retry it), then closed; the
    client gets a second to read it before the socket goes."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)
        tcp.write(_REFUSAL)
        with contextlib.suppress(OSError, NotImplementedError):
            tcp.write_eof()
        self._timer = asyncio.get_running_loop().call_later(1.0, tcp.abort)

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (containers often start at 1024,
    fewer than a busy proxy's connections); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


# -- logs --------------------------------------------------------------------------------------


class RepeatFilter(logging.Filter):
    """Let one line of a kind through per ``window`` seconds; the next one that passes says
    how many were held back. A kind is the logger, the level and the message with its
    numbers blanked (ports, counts and ids vary from line to line of one flood), so a storm
    of identical faults (half-open connections, a Redis outage) costs a line per kind every
    ``window`` seconds instead of megabytes. Only warnings and errors are held back: info
    lines are events an operator reads one by one (``policy generation 2 applied``)."""

    def __init__(self, window: float = 10.0) -> None:
        super().__init__()
        self.window = window
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # kind → [since, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, _DIGITS.sub("#", str(record.msg)[:200]))
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = [now, 0]
        if seen is not None and seen[1]:
            held, since = int(seen[1]), now - seen[0]
            record.msg = f"{record.msg} [and {held} more like it in the last {since:.0f} s]"
        return True


_DIGITS = re.compile(r"\d+")


def quiet_repeated_logs(window: float = 10.0) -> None:
    """Put a ``RepeatFilter`` on every handler of the root logger (after ``basicConfig``)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter(window))
