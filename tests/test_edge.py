"""The sidecar's edges against hostile or broken clients: compressed bodies that inflate past
the limit, and connections that open and never finish (real sockets, real processes)."""

from __future__ import annotations

import gzip
import json
import select
import socket
import zlib
from urllib.parse import urlsplit

from tests.conftest import SidecarFactory
from tests.support import Proc, free_port, wait_for
from tests.test_sidecar import KEY_A, http, sim_count

LIMIT = 65_536
SMALL_LIMIT_POLICY = json.dumps({"limits": {"maxBodyBytes": LIMIT}})
MESSAGES = "/anthropic/v1/messages"
HEADERS = {
    "content-type": "application/json",
    "content-encoding": "gzip",
    "x-api-key": KEY_A,
    "anthropic-version": "2023-06-01",
}


def gzip_bomb(inflated: int) -> bytes:
    """A Messages request whose gzip body is ~1000 times smaller than what it inflates to."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = b'{"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": ['
    parts = [z.compress(head), *(z.compress(b" " * 65_536) for _ in range(inflated // 65_536))]
    return b"".join([*parts, z.compress(b"]}"), z.flush()])


def test_a_gzip_body_inflating_past_the_limit_is_413_and_never_reaches_upstream(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar("--policy-json", SMALL_LIMIT_POLICY)
    bomb = gzip_bomb(20 << 20)  # 20 MiB once inflated, limit 64 KiB
    assert len(bomb) < LIMIT
    before = sim_count(upstream)
    for path in (MESSAGES, "/anthropic/v1/messages/count_tokens"):  # cached and passed through
        status, _, body = http("POST", proc.url + path, bomb, HEADERS)
        assert status == 413, body
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == "request_too_large"
        assert f"over {LIMIT} bytes" in error["error"]["message"]
    assert sim_count(upstream) == before
    assert stats_errors(proc) == 2


def test_a_gzip_body_within_the_limit_is_decoded_and_forwarded_as_json(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    proc = sidecar("--policy-json", SMALL_LIMIT_POLICY)
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "compressed on the way in"}],
    }
    raw = json.dumps(doc).encode()
    before = sim_count(upstream)
    status, headers, body = http("POST", proc.url + MESSAGES, gzip.compress(raw), HEADERS)
    assert status == 200 and headers["x-llmcache"] == "miss", body
    assert json.loads(body)["type"] == "message"  # the simulator parsed what it was sent
    plain = {k: v for k, v in HEADERS.items() if k != "content-encoding"}
    status, headers, again = http("POST", proc.url + MESSAGES, raw, plain)
    assert (status, headers["x-llmcache"]) == (200, "hit")  # same decoded body, same entry
    assert json.loads(again) == json.loads(body)
    assert sim_count(upstream) - before == 1


def test_half_open_connections_are_closed_within_the_bounds_and_probes_stay_fast(
    sidecar: SidecarFactory,
) -> None:
    """Slow heads, unfinished bodies, idle keep-alive and silent connections: each is closed
    within the idle or body timeout, connections over the limit get a 503 at once, and
    the admin listener answers probes meanwhile."""
    admin = f"127.0.0.1:{free_port()}"
    proc = sidecar(
        "--admin-listen", admin,
        "--idle-timeout", "1", "--body-timeout", "1", "--max-connections", "100",
        count=2,
    )  # fmt: skip
    host, port = urlsplit(proc.url).hostname, urlsplit(proc.url).port
    lines_before = len(proc.lines)
    openers = (
        b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-le",  # a slow head
        b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n"
        b"content-type: application/json\r\n\r\n{",  # a body that stops
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",  # answered, then kept alive and idle
        b"",  # nothing at all
    )
    clients = []
    for i in range(200):
        s = socket.create_connection((host, port), timeout=5)
        if openers[i % 4]:
            s.sendall(openers[i % 4])
        clients.append(s)
    try:
        # While they are held, the probes' listener answers.
        status, _, body = http("GET", f"http://{admin}/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"

        received = {s: b"" for s in clients}
        open_ = set(clients)

        def all_closed_by_the_server() -> bool:
            readable, _, _ = select.select(list(open_), [], [], 0.1)
            for s in readable:
                try:
                    data = s.recv(65_536)
                except ConnectionResetError:
                    data = b""
                received[s] += data
                if not data:
                    open_.discard(s)
            return not open_

        wait_for(all_closed_by_the_server, timeout=15, what="every connection closed")
        answers = [received[s].split(b"\r\n", 1)[0] for s in clients]
        refused = [a for a in answers if a == b"HTTP/1.1 503 Service Unavailable"]
        assert len(refused) == 100  # over --max-connections
        timed_out = [received[s] for s in clients if b" 408 " in received[s].split(b"\r\n")[0]]
        assert len(timed_out) == 25  # the unfinished bodies, told so in the API's shape
        assert all(b'"type": "request_timeout"' in r for r in timed_out)
    finally:
        for s in clients:
            s.close()
    # The limit's slots are free again, and the storm left a few log lines, not hundreds.
    status, _, _ = http("GET", f"{proc.url}/healthz")
    assert status == 200
    assert len(proc.lines) - lines_before < 20, "".join(proc.lines[lines_before:])


def stats_errors(proc: Proc) -> int:
    return int(json.loads(http("GET", f"{proc.url}/stats")[2])["errors"])
