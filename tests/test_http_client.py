"""The sidecar's upstream client (aiohttp, configured in ``sidecar/http_client.py``) against
real servers over TCP: aiohttp servers for the ordinary cases, raw asyncio servers for what
well-behaved servers never send. The last tests drive a real sidecar process with the
official SDK in front of such servers: what a caller sees when its upstream misbehaves."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import json
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from llmcache.sidecar.http_client import (
    UPSTREAM_ERRORS,
    Client,
    describe,
    env_proxy,
    new_session,
    send,
)

from tests.conftest import SidecarFactory
from tests.support import Proc, free_port, serve_app, wait_for

Raw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
STALE = b"STALE"


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    c = new_session(connect_timeout=2, read_timeout=5)
    yield c
    await c.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Raw], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Raw) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (Content-Length framed); ``IncompleteReadError`` once
    the client closed the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body


def socket_state(local_port: int, remote_port: int) -> tuple[str, int, int] | None:
    """(TCP state, bytes sent but not acknowledged, bytes received but not read by the
    application) of the loopback socket between these ports, from the kernel's table;
    None once it is gone."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == local_port and int(remote[1], 16) == remote_port:
            tx, rx = fields[4].split(":")
            return fields[3], int(tx, 16), int(rx, 16)
    return None


def consumed(client_port: int, server_port: int) -> bool:
    """Everything the server sent reached the client's kernel and was read from there by
    the client: it has gone through the client's protocol code (a condition, not a nap)."""
    server = socket_state(server_port, client_port)
    client = socket_state(client_port, server_port)
    return (server is None or server[1] == 0) and (client is None or client[2] == 0)


def client_closed(client_port: int, server_port: int) -> bool:
    """The client saw the server's FIN and closed its end."""
    client = socket_state(client_port, server_port)
    return client is None or client[0] not in ("01", "08")  # ESTABLISHED, CLOSE_WAIT


async def until(predicate: Callable[[], bool]) -> None:
    """Let the event loop (where the client under test runs) work until ``predicate``
    (kernel state: no event to wait on), for up to 5 s."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{predicate} not true within 5 s")


# -- pooling, streaming, decoding -------------------------------------------------------------


async def test_keeps_connections_alive_and_reuses_them(client: Client) -> None:
    peers: set[object] = set()

    async def echo(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(
            body=await request.read(), headers={"x-seen": request.headers.get("x-a", "")}
        )

    app = web.Application()
    app.router.add_post("/echo", echo)
    runner, base = await serve_app(app)
    try:
        for i in range(20):
            async with send(client, "POST", base + "/echo", b"%d" % i, [("x-a", str(i))]) as r:
                assert (r.status, await r.read(), r.headers["X-Seen"]) == (200, b"%d" % i, str(i))
        assert len(peers) == 1

        async def one(i: int) -> bytes:
            async with send(client, "POST", base + "/echo", b"x" * i, []) as r:
                return await r.read()

        bodies = await asyncio.gather(*(one(i) for i in range(8)))
        assert bodies == [b"x" * i for i in range(8)]
        assert len(peers) <= 8
    finally:
        await runner.cleanup()


async def test_streams_the_body_as_it_arrives(client: Client) -> None:
    first_seen = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)  # chunked: no length known
        await resp.write(b"data: one\n\n")
        await first_seen.wait()  # the second event only after the client saw the first
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/s", stream)
    runner, base = await serve_app(app)
    try:
        got = []
        async with send(client, "GET", base + "/s", b"", []) as r:
            assert r.content_type == "text/event-stream"
            async for chunk in r.content.iter_any():
                got.append(chunk)
                first_seen.set()
        assert b"".join(got) == b"data: one\n\ndata: two\n\n" and len(got) >= 2
    finally:
        await runner.cleanup()


async def test_decodes_gzip_and_reads_large_bodies_whole(client: Client) -> None:
    blob = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
    peers: set[object] = set()

    async def text(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        resp = web.Response(text="cached answer " * 500)
        resp.enable_compression(web.ContentCoding(request.query["coding"]))
        return resp

    async def big(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(body=blob)

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/big", big)
    runner, base = await serve_app(app)
    try:
        for coding in ("gzip", "deflate"):
            async with send(client, "GET", f"{base}/text?coding={coding}", b"", []) as r:
                assert r.headers["content-encoding"] == coding
                assert (await r.read()).decode() == "cached answer " * 500
        async with send(client, "GET", base + "/big", b"", []) as r:
            assert await r.read() == blob
        async with send(client, "GET", base + "/big", b"", []) as r:
            digest = hashlib.sha256()
            async for chunk in r.content.iter_any():
                digest.update(chunk)
            assert digest.digest() == hashlib.sha256(blob).digest()
        assert len(peers) == 1
    finally:
        await runner.cleanup()


async def test_a_body_without_length_runs_to_the_close(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": 1}')
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    for _ in range(2):  # never pooled: each request gets a fresh connection
        async with send(client, "POST", base + "/x", b"{}", []) as r:
            assert await r.read() == b'{"a": 1}'
    assert connections == 2


async def test_an_unread_answer_does_not_go_back_to_the_pool(client: Client) -> None:
    peers: set[object] = set()

    async def big(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(body=b"x" * 4_000_000)

    app = web.Application()
    app.router.add_get("/big", big)
    runner, base = await serve_app(app)
    try:
        async with send(client, "GET", base + "/big", b"", []) as r:
            assert r.status == 200  # body left unread
        async with send(client, "GET", base + "/big", b"", []) as r:
            assert len(await r.read()) == 4_000_000
        assert len(peers) == 2
    finally:
        await runner.cleanup()


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    """Servers drop idle keep-alive connections (uvicorn after 5 s): the next request goes
    out on a fresh connection and gets its answer."""
    peers: list[int] = []
    server_port = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        peers.append(writer.get_extra_info("peername")[1])
        writer.write(answer(b"ok " + body))
        await writer.drain()
        writer.close()  # without saying Connection: close, as idle timeouts do

    base = await raw_server(handler)
    server_port = int(base.rsplit(":", 1)[1])
    async with send(client, "POST", base + "/x", b"1", []) as r:
        assert await r.read() == b"ok 1"
    await until(lambda: client_closed(peers[0], server_port))
    async with send(client, "POST", base + "/x", b"2", []) as r:
        assert await r.read() == b"ok 2"
    assert len(peers) == 2 and peers[0] != peers[1]


async def test_no_cookies_no_redirects_no_added_headers_and_the_target_as_given(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    """One caller's cookies must never ride on another's request, a 3xx goes back to the
    caller (following a 307 would send the POST again), and the request line and headers
    are the caller's."""
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            heads.append(head)
            if len(heads) == 1:
                writer.write(
                    b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\n"
                    b"Set-Cookie: session=caller-a; Path=/\r\nContent-Length: 0\r\n\r\n"
                )
            else:
                writer.write(answer(b"{}"))
            await writer.drain()

    base = await raw_server(handler)
    async with send(client, "POST", base + "/v1/a%2Fb?x=a%20b&y=%7E", b"{}", []) as r:
        assert r.status == 307 and r.headers["location"] == "/elsewhere"
    async with send(client, "POST", base + "/v1/next", b"{}", [("x-api-key", "b")]) as r:
        assert r.status == 200
    assert len(heads) == 2  # the redirect was not followed
    first = heads[0].decode().lower()
    assert first.startswith("post /v1/a%2fb?x=a%20b&y=%7e http/1.1\r\n")
    assert "user-agent" not in first and "content-type" not in first
    assert b"cookie" not in heads[1].lower()


# -- never twice, never someone else's bytes ------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE", "GET"])
async def test_a_request_the_server_read_is_never_sent_again(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]], method: str
) -> None:
    """On a reused keep-alive connection the server reads the request whole, then closes
    without a byte of answer: it may be generating (and billing) already. The caller gets
    an error, the server saw the request once."""
    seen: list[tuple[int, bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        while True:
            _, body = await read_request(reader)
            seen.append((number, body))
            if body == b"second":
                writer.close()
                return
            writer.write(answer(b"ok"))
            await writer.drain()

    base = await raw_server(handler)
    async with send(client, method, base + "/x", b"first", []) as r:
        assert await r.read() == b"ok"
    with pytest.raises(UPSTREAM_ERRORS) as info:
        async with send(client, method, base + "/x", b"second", []) as r:
            await r.read()
    assert "closed before the answer ended" in describe(info.value)
    assert seen == [(1, b"first"), (1, b"second")]  # on the reused connection, once
    async with send(client, method, base + "/x", b"third", []) as r:
        assert await r.read() == b"ok"


async def test_never_resends_once_the_answer_began(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Len")
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    with pytest.raises(UPSTREAM_ERRORS):
        async with send(client, "POST", base + "/x", b"{}", []):
            pass
    assert served == 1


async def test_a_cut_body_is_an_error_not_a_short_answer(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial":')
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    with pytest.raises(UPSTREAM_ERRORS) as info:
        async with send(client, "POST", base + "/x", b"{}", []) as r:
            await r.read()
    assert describe(info.value) == "the answer's body was cut short"


@pytest.mark.parametrize(
    "pushed",
    [
        answer(STALE),  # a whole answer
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + STALE,  # an answer, begun
        b"HTTP/1.1 200 OK\r\nContent-Le",  # a head, begun
        STALE + b"\r\n\r\n",  # not HTTP
    ],
    ids=["answer", "partial-body", "partial-head", "garbage"],
)
async def test_bytes_pushed_on_an_idle_connection_never_become_an_answer(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]], pushed: bytes
) -> None:
    peers: list[int] = []
    idle = asyncio.Event()
    pushed_out = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        first = len(peers) == 1
        while True:
            _, body = await read_request(reader)
            writer.write(answer(b"answer to " + body))
            await writer.drain()
            if first:
                first = False
                await idle.wait()  # the client holds the connection in its pool
                writer.write(pushed)
                await writer.drain()
                pushed_out.set()

    base = await raw_server(handler)
    port = int(base.rsplit(":", 1)[1])
    async with send(client, "POST", base + "/x", b"one", []) as r:
        assert await r.read() == b"answer to one"
    idle.set()
    await pushed_out.wait()
    await until(lambda: consumed(peers[0], port))  # the pushed bytes reached the client
    async with send(client, "POST", base + "/x", b"two", []) as r:
        assert await r.read() == b"answer to two"
    async with send(client, "POST", base + "/x", b"three", []) as r:
        assert await r.read() == b"answer to three"


@pytest.mark.parametrize("separate", [False, True], ids=["same-write", "later-write"])
async def test_bytes_after_an_answer_never_reach_anyone(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]], separate: bool
) -> None:
    """``ok`` then ``STALE`` on the connection: the caller gets ``ok`` or an error (never
    ``okSTALE``), and the connection is not used again."""
    peers: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        while True:
            _, body = await read_request(reader)
            if body == b"one":
                writer.write(answer(b"ok"))
                if separate:
                    await writer.drain()
                writer.write(STALE)
            else:
                writer.write(answer(b"answer to " + body))
            await writer.drain()

    base = await raw_server(handler)
    port = int(base.rsplit(":", 1)[1])
    try:
        async with send(client, "POST", base + "/x", b"one", []) as r:
            assert await r.read() == b"ok"
    except UPSTREAM_ERRORS as exc:
        assert STALE.decode() not in describe(exc)
    await until(lambda: consumed(peers[0], port))
    async with send(client, "POST", base + "/x", b"two", []) as r:
        assert await r.read() == b"answer to two"
    assert len(peers) == 2


async def test_timeouts_and_refusals_and_garbage(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    hold = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await hold.wait()
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    quick = new_session(connect_timeout=2, read_timeout=0.3)
    try:
        with pytest.raises(TimeoutError):
            async with send(quick, "POST", await raw_server(silent) + "/x", b"{}", []):
                pass
    finally:
        hold.set()
        await quick.close()
    with pytest.raises(UPSTREAM_ERRORS) as info:
        async with send(client, "POST", await raw_server(garbage) + "/x", b"{}", []):
            pass
    assert describe(info.value) == "its answer is not valid HTTP/1.1"  # no upstream bytes
    with pytest.raises(OSError, match="Cannot connect"):
        async with send(client, "POST", f"http://127.0.0.1:{free_port()}/x", b"{}", []):
            pass


async def test_tls_verifies_the_server(tmp_path: Path) -> None:
    """An unknown certificate is refused (``SSL_CERT_FILE`` is how one is trusted: see the
    sidecar test below, the variable is read when the process starts)."""
    cert, key = _self_signed(tmp_path)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="over tls")

    app = web.Application()
    app.router.add_get("/", hello)
    runner, base = await serve_app(app, _server_context(cert, key))
    session = new_session()
    try:
        with pytest.raises(UPSTREAM_ERRORS, match="CERTIFICATE_VERIFY_FAILED"):
            async with send(session, "GET", base + "/", b"", []):
                pass
    finally:
        await session.close()
        await runner.cleanup()


# -- through a sidecar process --------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Coroutine[Any, Any, None]]


class ThreadServer:
    """A raw asyncio server on a thread of its own, for tests that block in an SDK call
    while a sidecar process talks to it. ``handler(reader, writer, n)``: n counts the
    connections from 1."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._handler = handler
        self._connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready, ssl_context), daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def _run(self, ready: threading.Event, ssl_context: ssl.SSLContext | None) -> None:
        asyncio.set_event_loop(self.loop)
        start = asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        self._server = self.loop.run_until_complete(start)
        self.port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        self._writers.add(writer)
        try:
            await self._handler(reader, writer, self._connections)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        async def shutdown() -> None:
            self._server.close()
            for writer in list(self._writers):  # handlers end on the EOF
                writer.close()
            await asyncio.sleep(0)

        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def thread_server() -> Iterator[Callable[..., ThreadServer]]:
    servers: list[ThreadServer] = []

    def start(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> ThreadServer:
        servers.append(ThreadServer(handler, ssl_context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def message(text: str) -> bytes:
    """An Anthropic Messages answer, as a complete HTTP/1.1 response."""
    doc = {
        "id": "msg_" + hashlib.sha256(text.encode()).hexdigest()[:16],
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    return answer(json.dumps(doc).encode(), b"Content-Type: application/json\r\n")


def prompt_of(body: bytes) -> str:
    return str(json.loads(body)["messages"][0]["content"])


def ask(proc: Proc, text: str) -> tuple[str, str]:
    """(x-llmcache, answer text) for one Messages call through the sidecar."""
    client = anthropic.Anthropic(
        api_key="sk-ant-test-0123456789", base_url=f"{proc.url}/anthropic", max_retries=0
    )
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": text}]
    )
    block = raw.parse().content[0]
    assert block.type == "text"
    return raw.headers["x-llmcache"], block.text


def test_sidecar_never_resends_a_post_the_upstream_read(
    sidecar: SidecarFactory, thread_server: Callable[..., ThreadServer]
) -> None:
    """Issue 12, item 3: the upstream reads the whole POST on a reused keep-alive connection
    and closes without answering. It sees the POST once; the SDK gets a 502 in the API's
    error shape; nothing is cached, so the same request afterwards reaches the upstream."""
    seen: list[tuple[int, str]] = []
    hang_up = True

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            _, body = await read_request(reader)
            prompt = prompt_of(body)
            seen.append((n, prompt))
            if prompt == "second" and hang_up:
                return  # closed by ThreadServer, not one byte of answer
            writer.write(message(f"answer to {prompt}"))
            await writer.drain()

    upstream = thread_server(handler)
    proc = sidecar("--anthropic-upstream", upstream.url())
    assert ask(proc, "first") == ("miss", "answer to first")
    with pytest.raises(anthropic.APIStatusError) as info:
        ask(proc, "second")
    assert seen == [(1, "first"), (1, "second")]  # once, on the reused connection
    assert info.value.status_code == 502
    error = info.value.response.json()
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "llmcache: upstream call failed" in error["error"]["message"]
    hang_up = False
    assert ask(proc, "second") == ("miss", "answer to second")
    assert ask(proc, "second") == ("hit", "answer to second")
    assert [p for _, p in seen] == ["first", "second", "second"]


@pytest.mark.parametrize(
    "pushed",
    [
        message("STALE answer"),
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
        b'{"type": "message", "content": [{"type": "text", "text": "STALE',
    ],
    ids=["whole", "begun"],
)
def test_sidecar_never_serves_or_stores_an_answer_nobody_asked_for(
    sidecar: SidecarFactory, thread_server: Callable[..., ThreadServer], pushed: bytes
) -> None:
    """Issue 12, item 4: the upstream pushes an answer on a pooled, idle connection. The
    next request gets its own answer, and the cache holds each request's own answer."""
    writers: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writers.append(writer)
        while True:
            _, body = await read_request(reader)
            writer.write(message(f"answer to {prompt_of(body)}"))
            await writer.drain()

    async def push() -> int:
        writers[0].write(pushed)
        await writers[0].drain()
        return int(writers[0].get_extra_info("peername")[1])

    upstream = thread_server(handler)
    proc = sidecar("--anthropic-upstream", upstream.url())
    assert ask(proc, "first") == ("miss", "answer to first")
    peer = upstream.call(push())
    wait_for(lambda: consumed(peer, upstream.port), what="the sidecar read the pushed bytes")
    assert ask(proc, "second") == ("miss", "answer to second")
    assert ask(proc, "second") == ("hit", "answer to second")
    assert ask(proc, "first") == ("hit", "answer to first")


@pytest.mark.parametrize("extra", [STALE, message("STALE answer")], ids=["bytes", "answer"])
def test_sidecar_never_serves_or_stores_bytes_after_an_answer(
    sidecar: SidecarFactory, thread_server: Callable[..., ThreadServer], extra: bytes
) -> None:
    """``okSTALE``: bytes after a complete answer, in the same write. The caller gets its
    answer or a 502, never the extra bytes; the next request gets its own answer."""
    stale = True

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        nonlocal stale
        while True:
            _, body = await read_request(reader)
            prompt = prompt_of(body)
            trailing = extra if prompt == "first" and stale else b""
            stale = stale and prompt != "first"
            writer.write(message(f"answer to {prompt}") + trailing)
            await writer.drain()

    upstream = thread_server(handler)
    proc = sidecar("--anthropic-upstream", upstream.url())
    try:
        assert ask(proc, "first") == ("miss", "answer to first")
    except anthropic.APIStatusError as err:
        assert err.status_code == 502 and "STALE" not in err.response.text
    assert ask(proc, "second") == ("miss", "answer to second")
    assert ask(proc, "second") == ("hit", "answer to second")
    assert ask(proc, "first")[1] == "answer to first"
    assert ask(proc, "first") == ("hit", "answer to first")


def _origin_handler() -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            _, body = await read_request(reader)
            writer.write(message(f"answer to {prompt_of(body)}"))
            await writer.drain()

    return handler


def _proxy(lines: list[str]) -> Handler:
    """A forward proxy: ``CONNECT host:port`` tunnels, absolute-form requests are relayed
    to their origin. ``lines`` gets each connection's first request line."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, _, rest = head.partition(b"\r\n")
        lines.append(line.decode())
        method, target, version = line.split(b" ")
        if method == b"CONNECT":
            host, _, port = target.rpartition(b":")
            origin_r, origin_w = await asyncio.open_connection(host.decode(), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            authority, _, path = target.split(b"://", 1)[1].partition(b"/")
            host, _, port = authority.rpartition(b":")
            origin_r, origin_w = await asyncio.open_connection(host.decode(), int(port))
            origin_w.write(b"%s /%s %s\r\n%s" % (method, path, version, rest))
        await asyncio.gather(pipe(reader, origin_w), pipe(origin_r, writer))

    return handler


NO_PROXY_ENV = {"NO_PROXY": "", "no_proxy": ""}


def test_the_proxy_is_chosen_per_origin_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "qdrant.svc,.cluster.local")
    env_proxy.cache_clear()
    try:
        assert env_proxy("https", "api.anthropic.com") == "http://user:pw@proxy.internal:3128"
        assert env_proxy("http", "api.anthropic.com") is None  # no HTTP_PROXY
        assert env_proxy("https", "qdrant.svc") is None
        assert env_proxy("https", "vectors.default.svc.cluster.local") is None
    finally:
        env_proxy.cache_clear()


def test_sidecar_goes_through_http_proxy(
    sidecar: SidecarFactory, thread_server: Callable[..., ThreadServer]
) -> None:
    origin = thread_server(_origin_handler())
    lines: list[str] = []
    proxy = thread_server(_proxy(lines))
    env = {**NO_PROXY_ENV, "HTTP_PROXY": proxy.url(), "http_proxy": proxy.url()}
    proc = sidecar("--anthropic-upstream", origin.url(), env=env)
    assert ask(proc, "via the proxy") == ("miss", "answer to via the proxy")
    assert lines == [f"POST {origin.url()}/v1/messages HTTP/1.1"]


def test_sidecar_tunnels_https_through_https_proxy_and_trusts_ssl_cert_file(
    sidecar: SidecarFactory, thread_server: Callable[..., ThreadServer], tmp_path: Path
) -> None:
    """A TLS upstream with a certificate only ``SSL_CERT_FILE`` vouches for, reached
    through ``HTTPS_PROXY`` (a CONNECT tunnel): both as clusters configure them."""
    cert, key = _self_signed(tmp_path)
    origin = thread_server(_origin_handler(), _server_context(cert, key))
    lines: list[str] = []
    proxy = thread_server(_proxy(lines))
    env = {
        **NO_PROXY_ENV,
        "HTTPS_PROXY": proxy.url(),
        "https_proxy": proxy.url(),
        "SSL_CERT_FILE": str(cert),
    }
    proc = sidecar("--anthropic-upstream", origin.url("https"), env=env)
    assert ask(proc, "through the tunnel") == ("miss", "answer to through the tunnel")
    assert lines == [f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1"]


# -- certificates --------------------------------------------------------------------------------


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
