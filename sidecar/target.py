"""Which upstream path a request reaches: its own path under the route, never another host.

Upstream URLs are the configured upstream plus this path and query. A request target in
absolute form (``POST http://elsewhere/anthropic/v1/messages``: legal HTTP/1.1, meant for
proxies) must not choose the host the caller's credentials go to, and dot segments
(``/openai/v1/../..``) must not reach another path than the one routed: both are refused
with a 400 before anything is looked up, forwarded or stored.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class BadTarget(ValueError):
    pass


def upstream_tail(request: web.Request, prefix: str) -> str:
    """The path and query to append to the upstream's base URL: ``/anthropic/v1/m?x``
    → ``/v1/m?x`` for prefix ``/anthropic``. Raises ``BadTarget``."""
    check(request)
    url = request.rel_url
    tail = url.raw_path[len(prefix) :]
    query = url.raw_query_string
    return f"{tail}?{query}" if query else tail


def check(request: web.Request) -> None:
    """Refuse absolute-form targets for another host, and dot segments."""
    if request.raw_path[:1] != "/":
        _check_authority(request)
    path = request.rel_url.raw_path
    if ("/." in path or "%2e" in path.lower()) and any(
        unquote(segment) in (".", "..") for segment in path.split("/")
    ):
        raise BadTarget(f"the request path {path!r} has dot segments; send it normalised")


def _check_authority(request: web.Request) -> None:
    """An absolute-form target is accepted only when it names this sidecar itself."""
    url = request.url
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    local_host, local_port = (sockname[0], sockname[1]) if sockname else (None, None)
    if url.port == local_port and (url.host in LOOPBACK or url.host == local_host):
        return
    raise BadTarget(
        f"request target names another host ({url.host}:{url.port}); llmcache is not a "
        "forward proxy: send the path only (origin form), e.g. POST /anthropic/v1/messages"
    )
