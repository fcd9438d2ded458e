"""Talking to the upstream API: which headers cross the proxy and how answers go back.

Upstream answers that are not cached (errors above all) reach the client unchanged:
status, body and headers such as ``retry-after`` and ``request-id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from aiohttp import web
from multidict import CIMultiDict

from .http_client import Client, Response, new_session

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
        "accept-encoding", "content-encoding",
    }
)  # fmt: skip
# Headers of ours that must not leak upstream.
OWN_REQUEST_HEADERS = frozenset({"x-llmcache-ttl", "x-llmcache-tags"})


def new_client() -> Client:
    """Connect within 10 s; a streamed answer may pause for up to 15 minutes."""
    return new_session(connect_timeout=10, read_timeout=900)


def request_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in headers.items()
        if (lower := name.lower()) not in HOP_BY_HOP and lower not in OWN_REQUEST_HEADERS
    ]


def response_headers(upstream: Response, extra: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.headers.items():
        if name.lower() not in HOP_BY_HOP:
            out.add(name, value)
    for name, value in extra:
        out[name] = value
    return out


def api_error(family: str, status: int, kind: str, message: str) -> web.Response:
    """An error of the sidecar's own, in the shape the API's SDK knows how to raise."""
    message = f"llmcache: {message}"
    if family == "anthropic":
        doc: dict[str, object] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        doc = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.Response(
        status=status,
        body=json.dumps(doc).encode(),
        content_type="application/json",
        headers={"x-llmcache": "bypass"},
    )
