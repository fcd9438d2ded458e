"""A lean HTTP/1.1 client for the data path: upstream LLM APIs and vector stores.

aiohttp's ``ClientSession`` was the miss path's largest cost: about 105 µs of CPU per call
on the benchmark machine, against about 30 µs for a keep-alive connection that feeds llhttp
(``httptools``) directly. The sidecar needs none of what the rest buys (cookies, redirects,
proxies, auth helpers, multipart), so its upstream calls go through this instead:

- a pool of idle keep-alive connections per origin, most recently used first, each closed
  once idle for longer than ``idle_timeout`` (under the usual server keep-alive);
- TLS with the system trust store (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured);
- bodies streamed with back-pressure; gzip and deflate decoded;
- a request sent on a reused connection that the server had already closed (not one response
  byte back) is sent once more on a fresh connection, as Go's net/http and urllib3 do;
- a connect timeout and an idle-read timeout (no byte for that long), as ``TimeoutError``.

Control-plane calls (policy long poll, stats) stay on aiohttp: they are rare and slow.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType

import httptools
from multidict import CIMultiDict

HIGH_WATER = 1 << 20  # body bytes buffered unread before reading from the socket pauses
INLINE_BODY = 1 << 16  # bodies up to this size go out in one write with the head


class UpstreamError(ConnectionError):
    """The server could not be reached, went away mid-answer, or did not speak HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    host_header: str

    @classmethod
    def parse(cls, authority: str, scheme: str) -> Origin:
        if "@" in authority:
            raise ValueError("credentials in upstream URLs are not supported")
        default = 443 if scheme == "https" else 80
        host, port = authority, default
        if authority.startswith("["):  # [IPv6]:port
            end = authority.index("]")
            host = authority[1:end]
            if authority[end + 1 : end + 2] == ":":
                port = int(authority[end + 2 :])
        elif ":" in authority:
            host, _, number = authority.rpartition(":")
            port = int(number)
        return cls(scheme, host, port, authority)


class _Connection(asyncio.Protocol):
    """One socket and the response arriving on it (the parser's callbacks fill it in)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.begin()

    def begin(self) -> None:
        """Forget the previous response (a connection carries one at a time)."""
        self.status = 0
        self.raw_headers: list[tuple[str, str]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received = 0
        self.chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._interim = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def send(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        if len(body) <= INLINE_BODY:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            self.transport.write(body)

    async def wait(self, silence: float) -> None:
        """Until more of the response arrived or it failed; ``TimeoutError`` after
        ``silence`` seconds without a byte. (One timer handle, cheaper than
        ``asyncio.timeout`` on this path.)"""
        if self._error is not None:
            raise self._error
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(silence, self._expire, waiter, silence)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def drain(self) -> bytes:
        """The body bytes buffered so far; reading resumes if it had paused."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed HTTP response: {exc}"))
            self.close()
            return
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self.headers_done and self._ends_at_eof():
            self.complete, self.keep_alive = True, False
            self._wake()
            return
        why = f": {exc}" if exc else ""
        self._fail(UpstreamError(f"connection closed by the server before the answer ended{why}"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # interim (103 Early Hints ...): the real answer follows
            self._interim = True
            self.raw_headers = []
            return
        self.status = status
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    # -- internals --------------------------------------------------------------------------

    def _ends_at_eof(self) -> bool:
        """A body without length or chunking runs until the server closes (RFC 9112 6.3)."""
        names = {name.lower() for name, _ in self.raw_headers}
        return "content-length" not in names and "transfer-encoding" not in names

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _expire(self, waiter: asyncio.Future[None], silence: float) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError(f"no answer from the server for {silence:g} s"))


class Response:
    """The status and headers of an answer; its body is read with ``read`` or
    ``iter_chunks`` (once)."""

    def __init__(self, client: Client, origin: Origin, conn: _Connection) -> None:
        self._client, self._origin, self._conn = client, origin, conn
        self._released = False
        self.status = conn.status
        self.headers: CIMultiDict[str] = CIMultiDict(conn.raw_headers)
        ctype = self.headers.get("content-type", "application/octet-stream")
        self.content_type = ctype.partition(";")[0].strip().lower()
        encoding = self.headers.get("content-encoding", "").strip().lower()
        self._decoder = _decoder(encoding)

    async def read(self) -> bytes:
        conn = self._conn
        if conn.complete and self._decoder is None:  # the whole answer came in at once
            data = conn.drain()
            self.release()
            return data
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, decoded."""
        conn, decoder = self._conn, self._decoder
        while True:
            if conn.chunks:
                data = conn.drain()
                if decoder is not None:
                    data = _decode(decoder, data)
                if data:
                    yield data
                continue
            if conn.complete:
                break
            await conn.wait(self._client.read_timeout)
        if decoder is not None and (tail := decoder.flush()):
            yield tail
        self.release()

    def release(self) -> None:
        """Back to the pool if the answer was read to its end and the server keeps the
        connection open; otherwise closed."""
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.complete and conn.keep_alive and not conn.chunks and not conn.closed:
            self._client._checkin(self._origin, conn)
        else:
            conn.close()


class _Call:
    def __init__(
        self, client: Client, method: str, url: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> None:
        self._args = (method, url, body, headers)
        self._client = client
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._client.send(*self._args)
        return self._response

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._response is not None:
            self._response.release()


class Client:
    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 900.0,
        idle_timeout: float = 30.0,
        max_idle_per_origin: int = 256,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.idle_timeout, self.max_idle = idle_timeout, max_idle_per_origin
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._origins: dict[str, Origin] = {}
        self.connections_opened = 0

    def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> _Call:
        """``async with client.request(...) as response:``; the connection goes back to the
        pool when the block ends with the body read."""
        return _Call(self, method, url, body, headers)

    async def send(
        self, method: str, url: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> Response:
        origin, target = self._split(url)
        head = _head(method, target, origin.host_header, headers, body)
        conn = self._checkout(origin)
        while True:
            if conn is None:
                conn = await self._connect(origin)
            conn.send(head, body)
            try:
                while not conn.headers_done:
                    await conn.wait(self.read_timeout)
            except UpstreamError:
                conn.close()
                if conn.reused and conn.received == 0:
                    conn = None  # the server had closed it while idle: once more, fresh
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if method == "HEAD":  # the headers announce a body that never comes
                conn.complete, conn.keep_alive = True, False
            return Response(self, origin, conn)

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    # -- pool ------------------------------------------------------------------------------

    def _split(self, url: str) -> tuple[Origin, str]:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")
        authority, slash, path = rest.partition("/")
        origin = self._origins.get(authority + scheme)
        if origin is None:
            origin = self._origins[authority + scheme] = Origin.parse(authority, scheme)
        return origin, slash + path if slash else "/"

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if conn.closed or now - conn.idle_since > self.idle_timeout:
                conn.close()
                continue
            conn.begin()
            conn.reused = True
            return conn
        return None

    def _checkin(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        idle.append(conn)

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        if tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    origin.host,
                    origin.port,
                    ssl=self._ssl if tls else None,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            raise TimeoutError(
                f"cannot connect to {origin.host_header} within {self.connect_timeout:g} s"
            ) from None
        except OSError as exc:  # refused, unresolvable, TLS verification ...
            raise UpstreamError(f"cannot connect to {origin.host_header}: {exc}") from exc
        self.connections_opened += 1
        return conn


def _head(
    method: str, target: str, host: str, headers: Iterable[tuple[str, str]], body: bytes
) -> bytes:
    """The request line and headers. The caller leaves out hop-by-hop headers; ``Host``,
    ``Content-Length`` and ``Accept-Encoding`` are this client's."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers:
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"line break in request header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("Accept-Encoding: gzip, deflate\r\n\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)
    return None


def _decode(decoder: zlib._Decompress, data: bytes) -> bytes:
    try:
        return decoder.decompress(data)
    except zlib.error as exc:
        raise UpstreamError(f"undecodable response body: {exc}") from exc
