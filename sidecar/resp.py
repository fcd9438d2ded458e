"""A lean Redis connection for the L2's hot path: one socket, pipelined commands, replies
parsed by hiredis.

redis-py's general client (connection pool, retry wrappers, packing in Python, response
callbacks) costs more CPU per lookup than Redis spends answering it. Here every command of a
call is packed by hiredis, written at once, and its replies are matched in order as they
arrive, so any number of calls share one connection. Used for GET/MGET/SET-style commands
only; pub/sub and flushes stay on redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url

Command = tuple[str | bytes | int, ...]


class RespError(Exception):
    """Redis answered with an error, or the connection failed."""


class _Call:
    """The replies one ``execute`` waits for: a single future for all its commands, so a
    failed connection leaves one exception per call, which its caller always retrieves
    (one future per command left the rest unretrieved, each logged as "Future exception
    was never retrieved")."""

    __slots__ = ("expected", "future", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], expected: int) -> None:
        self.future = future
        self.replies: list[Any] = []
        self.expected = expected


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[_Call] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's is not a subclass of asyncio.Transport (an assert on
        # it failed every Redis operation under uvloop).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            call = self.waiting[0]
            call.replies.append(reply)
            if len(call.replies) == call.expected:
                self.waiting.popleft()
                if not call.future.done():  # a caller that gave up still owns its place
                    call.future.set_result(call.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        error = RespError(f"connection lost: {exc}" if exc else "connection closed")
        while self.waiting:
            future = self.waiting.popleft().future
            if not future.done():  # a cancelled caller's future is done: nobody to tell
                future.set_exception(error)


class RespConnection:
    def __init__(self, url: str) -> None:
        options = parse_url(url)
        self._path: str | None = options.get("path")
        self._host = options.get("host", "localhost")
        self._port = int(options.get("port", 6379))
        self._ssl = ssl.create_default_context() if url.startswith("rediss://") else None
        self._handshake: list[Command] = []
        if options.get("password"):
            auth = [options["username"]] if options.get("username") else []
            self._handshake.append(("AUTH", *auth, options["password"]))
        if int(options.get("db") or 0):
            self._handshake.append(("SELECT", int(options["db"])))
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def execute(self, *commands: Command) -> list[Any]:
        """Send ``commands`` together and return their replies; raise ``RespError`` if any
        reply is an error or the connection fails."""
        protocol = await self._connected()
        return _checked(await self._send(protocol, commands))

    def reset(self) -> None:
        """Drop the connection (after a timeout: late replies must not pile up)."""
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.abort()
        self._protocol = None

    async def close(self) -> None:
        self.reset()

    async def _send(self, protocol: _Protocol, commands: tuple[Command, ...]) -> list[Any]:
        transport = protocol.transport
        if transport is None:
            raise RespError("not connected")
        if not commands:
            return []
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(_Call(future, len(commands)))
        packed = (hiredis.pack_command(c) for c in commands)  # type: ignore[arg-type]  # stub: 1-tuple
        transport.write(b"".join(packed))
        return await future

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and self._protocol.transport is not None:
                return self._protocol
            loop = asyncio.get_running_loop()
            try:
                if self._path:
                    _, protocol = await loop.create_unix_connection(_Protocol, self._path)
                else:
                    _, protocol = await loop.create_connection(
                        _Protocol, self._host, self._port, ssl=self._ssl
                    )
            except OSError as exc:
                raise RespError(f"cannot connect: {exc}") from exc
            if self._handshake:
                _checked(await self._send(protocol, tuple(self._handshake)))
            self._protocol = protocol
            return protocol


def _checked(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, hiredis.ReplyError):
            raise RespError(str(reply))
    return replies
