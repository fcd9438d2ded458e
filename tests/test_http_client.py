"""The sidecar's own HTTP/1.1 client against real servers over TCP: aiohttp servers for the
ordinary cases, raw asyncio servers for what well-behaved servers never send."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from llmcache.sidecar.http_client import Client, UpstreamError

Raw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve_app(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> tuple[
    web.AppRunner, str
]:  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    return runner, f"{scheme}://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    c = Client(connect_timeout=2, read_timeout=5)
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


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (Content-Length framed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


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
            async with client.request("POST", base + "/echo", b"%d" % i, [("x-a", str(i))]) as r:
                assert (r.status, await r.read(), r.headers["X-Seen"]) == (200, b"%d" % i, str(i))
        assert len(peers) == 1 and client.connections_opened == 1

        async def one(i: int) -> bytes:
            async with client.request("POST", base + "/echo", b"x" * i) as r:
                return await r.read()

        bodies = await asyncio.gather(*(one(i) for i in range(8)))
        assert bodies == [b"x" * i for i in range(8)]
        assert client.connections_opened <= 8
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
        async with client.request("GET", base + "/s") as r:
            assert r.content_type == "text/event-stream"
            async for chunk in r.iter_chunks():
                got.append(chunk)
                first_seen.set()
        assert b"".join(got) == b"data: one\n\ndata: two\n\n" and len(got) >= 2
    finally:
        await runner.cleanup()


async def test_decodes_gzip_and_reads_large_bodies_whole(client: Client) -> None:
    blob = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB

    async def text(request: web.Request) -> web.Response:
        resp = web.Response(text="cached answer " * 500)
        resp.enable_compression(web.ContentCoding(request.query["coding"]))
        return resp

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=blob)

    app = web.Application()
    app.router.add_get("/text", text)
    app.router.add_get("/big", big)
    runner, base = await serve_app(app)
    try:
        for coding in ("gzip", "deflate"):
            async with client.request("GET", f"{base}/text?coding={coding}") as r:
                assert r.headers["content-encoding"] == coding
                assert (await r.read()).decode() == "cached answer " * 500
        async with client.request("GET", base + "/big") as r:
            assert await r.read() == blob  # past the high-water mark: reading pauses, resumes
        async with client.request("GET", base + "/big") as r:
            digest = hashlib.sha256()
            async for chunk in r.iter_chunks():
                digest.update(chunk)
            assert digest.digest() == hashlib.sha256(blob).digest()
        assert client.connections_opened == 1
    finally:
        await runner.cleanup()


async def test_a_body_without_length_runs_to_the_close(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a": 1}')
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    for _ in range(2):  # never pooled: each request gets a fresh connection
        async with client.request("POST", base + "/x", b"{}") as r:
            assert await r.read() == b'{"a": 1}'
    assert client.connections_opened == 2


async def test_resends_once_when_the_server_closed_the_idle_connection(
    client: Client, raw_server: Callable[[Raw], Awaitable[str]]
) -> None:
    requests: list[bytes] = []
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without saying Connection: close, as idle timeouts do
        await writer.wait_closed()
        closed.set()

    base = await raw_server(handler)
    async with client.request("POST", base + "/x", b"1") as r:
        assert await r.read() == b"ok"
    async with asyncio.timeout(5):
        await closed.wait()
    # Whether or not the client noticed the close yet, the request must get its answer.
    async with client.request("POST", base + "/x", b"2") as r:
        assert await r.read() == b"ok"
    assert [req.endswith(b"\r\n\r\n1") for req in requests] == [True, False]
    assert requests[1].endswith(b"\r\n\r\n2") and client.connections_opened == 2


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
    with pytest.raises(UpstreamError, match="closed by the server"):
        async with client.request("POST", base + "/x", b"{}"):
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
    async with client.request("POST", base + "/x", b"{}") as r:
        with pytest.raises(UpstreamError):
            await r.read()


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

    quick = Client(connect_timeout=2, read_timeout=0.3)
    try:
        with pytest.raises(TimeoutError, match="no answer"):
            async with quick.request("POST", await raw_server(silent) + "/x", b"{}"):
                pass
    finally:
        hold.set()
        await quick.close()
    with pytest.raises(UpstreamError, match="malformed"):
        async with client.request("POST", await raw_server(garbage) + "/x", b"{}"):
            pass
    with pytest.raises(UpstreamError, match="cannot connect"):
        async with client.request("POST", f"http://127.0.0.1:{_closed_port()}/x", b"{}"):
            pass
    with pytest.raises(ValueError, match="line break"):
        headers = [("x-a", "1\r\nx-b: 2")]
        async with client.request("POST", await raw_server(silent) + "/x", b"{}", headers):
            pass


async def test_an_unread_answer_does_not_go_back_to_the_pool(client: Client) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 4_000_000)

    app = web.Application()
    app.router.add_get("/big", big)
    runner, base = await serve_app(app)
    try:
        async with client.request("GET", base + "/big") as r:
            assert r.status == 200  # body left unread
        async with client.request("GET", base + "/big") as r:
            assert len(await r.read()) == 4_000_000
        assert client.connections_opened == 2
    finally:
        await runner.cleanup()


async def test_tls_verifies_the_server(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="over tls")

    app = web.Application()
    app.router.add_get("/", hello)
    runner, base = await serve_app(app, server_ctx)
    trusting = ssl.create_default_context(cafile=str(cert))
    good, default = Client(ssl_context=trusting), Client()
    try:
        async with good.request("GET", base + "/") as r:
            assert await r.read() == b"over tls"
        with pytest.raises(UpstreamError, match="CERTIFICATE_VERIFY_FAILED"):
            async with default.request("GET", base + "/"):
                pass
    finally:
        await good.close()
        await default.close()
        await runner.cleanup()


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
