"""The data path's HTTP client: aiohttp's ``ClientSession``, configured for a caching proxy.

One session per sidecar carries every upstream call (LLM APIs and vector stores):

- a keep-alive pool per origin (no limit on connections: a streamed answer holds its own
  for minutes, and queueing calls behind it would add their wait to the caller's latency);
  an idle connection is dropped after 15 s, under most servers' own keep-alive timeout;
- ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` honoured, read once per origin: aiohttp's
  ``trust_env`` reads them (and ``~/.netrc``, whose credentials it would add to requests)
  in two thread-pool hops per request, which took a call to a local server from 0.35 to
  1.24 ms p50 on the benchmark machine; TLS verified with the system trust store
  (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured);
- connect within 10 s, then at most 900 s of silence mid-answer; no total deadline (a long
  generation may stream for longer than any fixed limit);
- answers decoded (``auto_decompress``: gzip, deflate, and br/zstd when aiohttp can decode
  them): the bytes cached and sent back are the plain body, without ``content-encoding``;
- no cookie jar (one caller's cookies must never ride on another caller's request), no
  redirects followed (a 3xx goes back to the caller, as the API sent it), no headers added
  beyond what HTTP needs;
- a request is sent once. A POST that fails after its bytes may have reached the upstream
  could already be a generation that is billed: the caller gets a 502 and decides (the
  official SDKs retry with their own budget). aiohttp never resends a POST or a PATCH; its
  one resend of an idempotent method on a reused connection is switched off as well
  (a retried DELETE that did succeed answers 404);
- a pooled connection that received anything while idle is closed, not reused: such bytes
  would otherwise be taken for the next request's answer (``_Connector``).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias

import aiohttp
from yarl import URL

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ConnectionKey
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

Client: TypeAlias = aiohttp.ClientSession
Response: TypeAlias = aiohttp.ClientResponse

# What an upstream call can fail with: cannot connect, went away, timed out, or sent
# something that is not HTTP. All of them end in a 502 for the caller, nothing stored.
UPSTREAM_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, TimeoutError)
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


class _Connector(aiohttp.TCPConnector):
    """aiohttp's pool, minus connections that received data nobody asked for.

    aiohttp hands out a pooled connection as long as its socket is open; an answer the
    server pushed while the connection idled is queued on it and would be read as the
    next request's response. Such a connection reports ``should_close`` (a queued
    message, a started body, or a parse error): it is closed here instead of reused.
    (Bytes still in flight when a request goes out cannot be told apart from its answer:
    that race is HTTP/1.1's own.)
    """

    async def _get(self, key: ConnectionKey, traces: list[Trace]) -> Connection | None:
        while True:
            conn = await super()._get(key, traces)
            if conn is None or conn.protocol is None or not conn.protocol.should_close:
                return conn
            conn.close()


def new_session(
    *, connect_timeout: float = 10.0, read_timeout: float = 900.0, idle_timeout: float = 15.0
) -> Client:
    """The configured session; create it inside the running event loop, close it at exit."""
    session = aiohttp.ClientSession(
        connector=_Connector(limit=0, keepalive_timeout=idle_timeout),
        timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,  # the proxy comes from env_proxy, per origin
        auto_decompress=True,
        skip_auto_headers=("User-Agent", "Content-Type"),
    )
    # The switch aiohttp's own test client uses; without it a GET, PUT or DELETE whose
    # reused connection fails is sent a second time.
    session._retry_connection = False
    return session


def send(
    client: Client, method: str, url: str, body: bytes, headers: Iterable[tuple[str, str]]
) -> AbstractAsyncContextManager[Response]:
    """``async with send(...) as response:``: one request, sent once, target as given.

    ``url`` is the upstream base plus the caller's raw path and query, passed on as they
    are (not re-quoted). The connection goes back to the pool when the block ends with
    the body read to its end, and is closed otherwise.
    """
    target = URL(url, encoded=True)
    return client.request(
        method,
        target,
        data=None if not body and method in _BODYLESS else body,
        headers=list(headers),
        allow_redirects=False,
        proxy=env_proxy(target.scheme, target.host or ""),
    )


@lru_cache(maxsize=256)
def env_proxy(scheme: str, host: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY`` name for this origin unless
    ``NO_PROXY`` exempts it (the standard library's reading, as aiohttp's ``trust_env``).
    Credentials in the proxy URL are sent to the proxy."""
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def describe(exc: BaseException) -> str:
    """A failed call in a few words for the caller's 502: never the upstream's bytes (a
    parse error would quote them, and they may be someone else's answer)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return "its answer is not valid HTTP/1.1"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection closed before the answer ended"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer's body was cut short"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    return str(exc) or type(exc).__name__
