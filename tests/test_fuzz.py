"""Fuzzing the sidecar's HTTP surface with Hypothesis: whatever a client sends, the sidecar
answers within a timeout and never with a 5xx of its own, and stays healthy afterwards.

A real sidecar process (with a real Redis) in front of the upstream simulator gets bodies
built from the SDKs' own parameter lists with fuzzed values, arbitrary and malformed JSON
(deep nesting, lone surrogates, huge numbers, invalid UTF-8, truncation, non-objects) and
fuzzed headers (API version and beta headers, cache-control, ``x-llmcache-*``,
content-type, gzip bodies valid and not), on the four cached routes, the pass-through
routes and unknown ones. A 5xx is allowed only when the request asked the simulator for it
(``x-sim-status``) and the body is the simulator's: the sidecar's own errors say
``llmcache:``, and aiohttp's ("Server got itself in trouble") carry no ``x-llmcache``.

The budget is fixed (``max_examples``, derandomized) so CI time is bounded.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import warnings
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import (
    HealthCheck,
    currently_in_test_context,
    event,
    example,
    given,
    settings,
)
from hypothesis import strategies as st
from yarl import URL

from tests.support import Proc, RedisServer, llmcache

TIMEOUT_S = 20.0  # an answer slower than this is a hang
ANTHROPIC_KEY = "sk-ant-fuzz-0000"
OPENAI_KEY = "sk-fuzz-0000"
ROUTES = {
    "/anthropic/v1/messages": "anthropic",
    "/openai/v1/chat/completions": "openai",
    "/openai/v1/responses": "openai",
    "/openai/v1/embeddings": "openai",
}
OTHER_PATHS = (
    "/anthropic/v1/messages/count_tokens", "/anthropic/v1/models", "/openai/v1/models",
    "/openai/v1/models/gpt-4o", "/openai/v1/responses/resp_123", "/anthropic/v1/nothing",
    "/openai/v2/x", "/anthropic/", "/openai", "/", "/nope", "/admin/flush", "/rag/kb/x",
    "/stats", "/healthz", "/metrics", "/anthropic/v1/messages/", "//anthropic/v1/messages",
    "/anthropic/v1/messages?beta=true", "/openai/v1/chat/completions?x=%00%ff",
    "/anthropic/../openai/v1/embeddings", "/openai/v1/%2e%2e/models",
)  # fmt: skip
METHODS = ("POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")


# -- strategies -----------------------------------------------------------------------------------

ODD_STRINGS = ("\ud800", "a\udfffb", "\udbff\ud800x", "\x00", "\u2028", "🙂", "", " " * 3)
texts = st.text(max_size=24) | st.sampled_from(ODD_STRINGS)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _sdk_fields() -> dict[str, list[str]]:
    """Each route's request fields, from the official SDKs' parameter types."""
    from anthropic.types import message_create_params
    from openai.types import embedding_create_params
    from openai.types.chat import completion_create_params
    from openai.types.responses import response_create_params

    extra = ["stream", "temperature", "top_p", "top_k"]  # on the wire, not in the base type
    return {
        "/anthropic/v1/messages": [
            *message_create_params.MessageCreateParamsBase.__annotations__,
            *extra,
        ],
        "/openai/v1/chat/completions": [
            *completion_create_params.CompletionCreateParamsBase.__annotations__,
            "stream",
        ],
        "/openai/v1/responses": [
            *response_create_params.ResponseCreateParamsBase.__annotations__,
            "stream",
        ],
        "/openai/v1/embeddings": [*embedding_create_params.EmbeddingCreateParams.__annotations__],
    }


SDK_FIELDS = _sdk_fields()
BASE_BODIES: dict[str, dict[str, Any]] = {
    "/anthropic/v1/messages": {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hi."}],
    },
    "/openai/v1/chat/completions": {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hi."}],
    },
    "/openai/v1/responses": {"model": "gpt-4o-mini", "input": "Say hi."},
    "/openai/v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
}

roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function", "x"])
block_types = st.sampled_from(
    ["text", "image", "tool_use", "tool_result", "thinking", "document", "input_text", "x"]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": texts,
        "id": texts,
        "name": texts,
        "input": json_values,
        "content": json_values,
        "cache_control": json_values,
        "tool_use_id": texts,
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles}, optional={"content": texts | st.lists(blocks, max_size=3) | json_values}
    ),
    max_size=4,
)
tools = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["function", "web_search_20250305", "custom", "mcp"]) | texts,
            "name": texts,
            "function": json_values,
            "input_schema": json_values,
            "parameters": json_values,
        },
    ),
    max_size=3,
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "messages": messages,
    "input": texts | messages | st.lists(texts | st.lists(st.integers(), max_size=4), max_size=4),
    "model": st.sampled_from(["claude-haiku-4-5", "gpt-4o-mini", "gpt-5", "o3", ""]) | texts,
    "max_tokens": st.integers(min_value=-5, max_value=10**30),
    "max_completion_tokens": st.integers(min_value=-5, max_value=200),
    "max_output_tokens": st.integers(min_value=-5, max_value=200),
    "stream": st.booleans() | json_values,
    "temperature": st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
    "n": st.integers(min_value=-2, max_value=5),
    "tools": tools,
    "tool_choice": st.sampled_from(["auto", "none", "required", "any"]) | json_values,
    "system": texts | st.lists(blocks, max_size=3),
    "stop_sequences": st.lists(texts, max_size=3),
    "stop": texts | st.lists(texts, max_size=3),
    "thinking": st.fixed_dictionaries(
        {"type": st.sampled_from(["enabled", "disabled", "adaptive", "x"])},
        optional={"budget_tokens": st.integers(min_value=-5, max_value=5000)},
    ),
    "encoding_format": st.sampled_from(["float", "base64", "x"]),
    "dimensions": st.integers(min_value=-3, max_value=5000),
    "previous_response_id": texts,
    "store": st.booleans() | json_values,
    "background": st.booleans() | json_values,
    "metadata": st.dictionaries(texts, texts, max_size=3) | json_values,
}


@st.composite
def api_bodies(draw: st.DrawFn, route: str) -> dict[str, Any]:
    """A plausible body of ``route`` whose fields (from the SDK's list) take fuzzed values."""
    body = dict(BASE_BODIES[route])
    for name in draw(st.lists(st.sampled_from(SDK_FIELDS[route]), max_size=5, unique=True)):
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(PLAUSIBLE.get(name, json_values) | json_values)
    if draw(st.booleans()):
        body.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    return body


def _dump(doc: Any) -> bytes:
    """JSON text as a client would send it; lone surrogates come out as ``\\udXXX`` escapes."""
    return json.dumps(doc).encode()


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


malformed_bodies = st.one_of(
    json_values.map(_dump),  # any JSON, objects and not
    st.binary(max_size=64),  # anything, invalid UTF-8 included
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b'"x"',
            b"1e999",
            b"NaN",
            b"{",
            b'{"model": "a", "messages": [',
            b'{"model": "\\ud800", "messages": [{"role": "user", "content": "\\udfff"}]}',
            b'{"messages": [{"role": "user", "content": "\xff\xfe"}], "model": "m"}',
            b'{"max_tokens": ' + b"9" * 5000 + b"}",  # beyond Python's int-from-text limit
            b'{"max_tokens": ' + b"9" * 400 + b', "model": "m", "messages": []}',
            b'{"a": 1, "a": 2}',
            b'\xef\xbb\xbf{"model": "m"}',  # a UTF-8 byte-order mark
        ]
    ),
    st.sampled_from([100, 1000, 5000]).map(deep),
    st.sampled_from([100, 1000, 5000]).map(deep_object),
)


@st.composite
def nested_in_api_body(draw: st.DrawFn, route: str) -> bytes:
    """A valid body with a deeply nested value in the prompt or in another field."""
    nested = draw(st.sampled_from([200, 1000, 3000]).map(deep) | st.just(deep_object(1000)))
    body = _dump(BASE_BODIES[route])
    where = draw(st.sampled_from(["prompt", "metadata", "tools", "system", "x_extra"]))
    if where == "prompt":  # the user's text (or embeddings input) replaced by the nesting
        return body.replace(b'"Say hi."', nested).replace(b'"input": "hi"', b'"input": ' + nested)
    return body[:-1] + f', "{where}": '.encode() + nested + b"}"


@st.composite
def truncated(draw: st.DrawFn, route: str) -> bytes:
    body = _dump(draw(api_bodies(route)))
    return body[: draw(st.integers(min_value=0, max_value=max(0, len(body) - 1)))]


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
FUZZED_HEADERS: dict[str, st.SearchStrategy[str]] = {
    "anthropic-version": st.sampled_from(["2023-06-01", "2023-01-01", ""]) | header_text,
    "anthropic-beta": st.sampled_from(["prompt-caching-2024-07-31", "a,b", ""]) | header_text,
    "openai-organization": header_text,
    "openai-project": header_text,
    "openai-beta": st.sampled_from(["assistants=v2", ""]) | header_text,
    "cache-control": st.sampled_from(
        ["no-cache", "no-store", "NO-STORE", "max-age=0", "no-cache, no-store", ""]
    )
    | header_text,
    "x-llmcache-ttl": st.sampled_from(["1", "0", "-1", "2678400", "2678401", "1e3", "", "9" * 40])
    | st.integers(min_value=-(2**70), max_value=2**70).map(str)
    | header_text,
    "x-llmcache-tags": st.sampled_from(
        ["a,b", ",,,", "a" * 65, ",".join("t" * 17), "é", "t," * 3000]  # the last: 6 KB
    )
    | header_text,
    "content-type": st.sampled_from(
        [
            "application/json",
            "application/json; charset=latin-1",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "",
        ]
    )
    | header_text,
    "accept": st.sampled_from(["text/event-stream", "application/json", "*/*"]) | header_text,
    "x-tenant": header_text,
    "idempotency-key": header_text,
}


@dataclass
class Case:
    method: str
    path: str  # as sent (already percent-encoded)
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    encoding: str = ""  # gzip | gzip-invalid | deflate | br-invalid | ""
    chunked: bool = False
    absolute: bool = False  # the request target in absolute form (as to a proxy)
    asked_status: int = 0  # x-sim-status: the simulator answers with this status

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return (
            f"Case({self.method} {self.path} absolute={self.absolute} encoding={self.encoding!r} "
            f"chunked={self.chunked} headers={self.headers} body[{len(self.body)}]={body!r})"
        )


@st.composite
def headers_for(draw: st.DrawFn, family: str) -> dict[str, str]:
    headers: dict[str, str] = {"content-type": "application/json"}
    auth = draw(st.sampled_from(["good", "good", "good", "none", "fuzzed", "bearer-anthropic"]))
    if auth == "good" and family == "anthropic":
        headers |= {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    elif auth == "good":
        headers["authorization"] = f"Bearer {OPENAI_KEY}"
    elif auth == "fuzzed":
        name = draw(st.sampled_from(["x-api-key", "authorization", "api-key"]))
        headers[name] = draw(header_text)
    elif auth == "bearer-anthropic":
        headers |= {"authorization": f"Bearer {ANTHROPIC_KEY}", "anthropic-version": "2023-06-01"}
    for name in draw(st.lists(st.sampled_from(sorted(FUZZED_HEADERS)), max_size=4, unique=True)):
        headers[name] = draw(FUZZED_HEADERS[name])
    return headers


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "gzip-invalid":
        return b"\x1f\x8b\x08\x00garbage" + body[:20]
    if encoding == "gzip-truncated":
        return gzip.compress(body)[:-6]
    return body  # br-invalid: the raw body, which is not brotli


CONTENT_ENCODING = {
    "gzip": "gzip",
    "gzip-invalid": "gzip",
    "gzip-truncated": "gzip",
    "deflate": "deflate",
    "br-invalid": "br",
    "junk": "x-unknown",
}


@st.composite
def api_cases(draw: st.DrawFn, bodies: str) -> Case:
    route = draw(st.sampled_from(sorted(ROUTES)))
    if bodies == "valid-ish":
        raw = _dump(draw(api_bodies(route)))
    elif bodies == "nested":
        raw = draw(nested_in_api_body(route))
    elif bodies == "truncated":
        raw = draw(truncated(route))
    else:
        raw = draw(malformed_bodies)
    case = Case("POST", route, raw, draw(headers_for(ROUTES[route])))
    case.chunked = draw(st.integers(0, 5)) == 0
    if draw(st.integers(0, 9)) == 0:  # the simulator answers with an error of its own
        case.asked_status = draw(st.sampled_from([400, 429, 500, 503, 529]))
        case.headers["x-sim-status"] = str(case.asked_status)
    return case


@st.composite
def header_cases(draw: st.DrawFn) -> Case:
    case = draw(api_cases("valid-ish"))
    encoding = draw(st.sampled_from(["", *CONTENT_ENCODING]))
    if encoding:
        # Sent in one piece: an encoding aiohttp cannot decode is refused as soon as the
        # headers are read, and a client still sending chunks would see a reset, not the 400.
        case.chunked = False
        case.encoding = encoding
        case.body = _encode(case.body, encoding)
        case.headers["content-encoding"] = CONTENT_ENCODING[encoding]
    for name in draw(st.lists(st.sampled_from(sorted(FUZZED_HEADERS)), min_size=1, max_size=8)):
        case.headers[name] = draw(FUZZED_HEADERS[name])
    return case


@st.composite
def route_cases(draw: st.DrawFn) -> Case:
    path = draw(st.sampled_from([*OTHER_PATHS, *ROUTES]))
    if draw(st.integers(0, 3)) == 0:
        tail = draw(st.text(st.sampled_from("abc/._-~%?=&;:@!$'()*+,0123456789"), max_size=20))
        path = path.rstrip("/") + "/" + tail
    family = "anthropic" if "anthropic" in path else "openai"
    body = draw(st.sampled_from([b"", b"{}", _dump(BASE_BODIES["/openai/v1/embeddings"])]))
    case = Case(draw(st.sampled_from(METHODS)), path, body, draw(headers_for(family)))
    case.absolute = draw(st.integers(0, 4)) == 0
    return case


# -- sending ------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 7):
        yield body[i : i + 7]


class Client:
    """One aiohttp session on a private event loop, for Hypothesis' synchronous examples."""

    def __init__(self, sidecar: str) -> None:
        self.base = sidecar
        self.runner = asyncio.Runner()
        self.session = self.runner.run(self._open())

    async def _open(self) -> aiohttp.ClientSession:
        # A fresh connection per request: a malformed request may rightly end its connection.
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        return aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

    def send(self, case: Case) -> Reply:
        return self.runner.run(self._send(case))

    async def _send(self, case: Case) -> Reply:
        data: bytes | AsyncIterator[bytes] = _chunks(case.body) if case.chunked else case.body
        skip = ["Content-Type", "Accept-Encoding"]
        if case.absolute:  # through the sidecar as if it were a proxy: absolute-form target
            url, proxy = URL(f"http://127.0.0.1:9{case.path}", encoded=True), self.base
        else:
            url, proxy = URL(self.base + case.path, encoded=True), None
        try:
            async with self.session.request(
                case.method,
                url,
                data=data if case.method not in ("GET", "HEAD") or case.body else None,
                headers=case.headers,
                skip_auto_headers=skip,
                proxy=proxy,
            ) as resp:
                return Reply(resp.status, dict(resp.headers), await resp.read())
        except TimeoutError:
            raise AssertionError(f"no answer within {TIMEOUT_S} s (a hang): {case!r}") from None

    def close(self) -> None:
        self.runner.run(self.session.close())
        self.runner.close()


def sidecar_error(case: Case, reply: Reply) -> str | None:
    """Why ``reply`` is a 5xx of the sidecar's own making, or None if it is not."""
    if reply.status < 500:
        return None
    if "x-llmcache" not in {k.lower() for k in reply.headers}:
        return "a 5xx without x-llmcache: the sidecar's handler failed"
    if b"llmcache:" in reply.body[:200]:
        return "a 5xx of the sidecar's own (llmcache: message)"
    if reply.status != case.asked_status:
        return f"a {reply.status} relayed from the simulator, which was not asked for one"
    return None


@dataclass
class Target:
    proc: Proc
    client: Client
    logged: int = 0  # log lines already judged by an earlier test

    def check(self, case: Case) -> Reply:
        reply = self.client.send(case)
        if currently_in_test_context():  # pytest --hypothesis-show-statistics
            cache = {k.lower(): v for k, v in reply.headers.items()}.get("x-llmcache", "-")
            event(f"{case.method} {case.path.split('?')[0]} -> {reply.status} {cache}")
        problem = sidecar_error(case, reply)
        assert problem is None, (
            f"{problem}\n{case!r}\n-> {reply.status} {reply.body[:300]!r}\n"
            f"sidecar log tail:\n{''.join(self.proc.lines[-25:])}"
        )
        return reply

    def healthy(self) -> None:
        """The sidecar is alive, answers its probe and still serves each API."""
        assert self.proc.popen.poll() is None, self.proc.output()[-3000:]
        probe = Case("GET", "/healthz", b"")
        assert self.client.send(probe).status == 200
        for route, family in ROUTES.items():
            headers = good_headers(family)
            reply = self.check(Case("POST", route, _dump(BASE_BODIES[route]), headers))
            assert reply.status == 200, (route, reply.status, reply.body[:300])
        lines, self.logged = self.proc.lines[self.logged :], len(self.proc.lines)
        own, http = logged_errors(lines)
        assert not own, "the sidecar logged errors:\n" + "\n".join(own)
        if http:  # aiohttp logs each request it refused while parsing at ERROR, traceback and all
            warnings.warn("aiohttp.server logged: " + " | ".join(http), stacklevel=1)


RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ([\w.]+): (.*)")


def logged_errors(lines: list[str]) -> tuple[list[str], list[str]]:
    """Distinct ERROR records of a log (message and final exception line): the sidecar's
    own (any logger but ``aiohttp.server``), and aiohttp's for requests it could not parse."""
    own: set[str] = set()
    http: set[str] = set()
    record: tuple[str, str, str] | None = None
    last = ""

    def close() -> None:
        if record is not None and record[0] in ("ERROR", "CRITICAL"):
            (http if record[1] == "aiohttp.server" else own).add(f"{record[2]} ... {last}")

    for line in lines:
        match = RECORD.match(line)
        if match:
            close()
            record, last = (match[1], match[2], match[3]), ""
        elif line.strip() and not line[:1].isspace():
            last = line.strip()  # a traceback's exception line comes last
    close()
    return sorted(own), sorted(http)


def good_headers(family: str) -> dict[str, str]:
    if family == "anthropic":
        return {
            "content-type": "application/json",
            "x-api-key": ANTHROPIC_KEY,
            "anthropic-version": "2023-06-01",
        }
    return {"content-type": "application/json", "authorization": f"Bearer {OPENAI_KEY}"}


@pytest.fixture(scope="module")
def target(upstream: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One sidecar (with Redis) for the whole module: whatever one test sends, the next
    still finds it serving, and CI starts it once. Its policy adds the checks a policy can
    ask for (a temperature ceiling, excluded models) to the default path."""
    redis = RedisServer(tmp_path_factory.mktemp("fuzz-redis"))
    policy = {"cacheability": {"maxTemperature": 1.5, "excludeModels": ["*-preview"]}}
    proc = llmcache(
        "sidecar", "--listen", "127.0.0.1:0", "--redis-url", redis.url,
        "--anthropic-upstream", upstream.url, "--openai-upstream", upstream.url,
        "--policy-json", json.dumps(policy),
    )  # fmt: skip
    client = Client(proc.url)
    yield Target(proc, client)
    client.close()
    proc.stop()
    redis.stop()


FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


# -- tests --------------------------------------------------------------------------------------


def test_fuzzed_api_bodies_get_answers_not_sidecar_errors(target: Target) -> None:
    """Plausible bodies of each API, their fields (from the SDKs' own lists) fuzzed."""

    @FUZZ
    @given(st.one_of(api_cases("valid-ish"), api_cases("truncated")))
    def run(case: Case) -> None:
        reply = target.check(case)
        if reply.status == 200 and not case.chunked:  # again: the hit path, or a second miss
            target.check(case)

    run()
    target.healthy()


def test_malformed_bodies_get_clear_errors(target: Target) -> None:
    """Arbitrary JSON and not JSON: deep nesting, lone surrogates, huge numbers, invalid
    UTF-8, truncation, non-objects."""

    @FUZZ
    @given(st.one_of(api_cases("malformed"), api_cases("nested")))
    @example(Case("POST", "/anthropic/v1/messages", deep(1000), {"x-api-key": ANTHROPIC_KEY}))
    @example(
        Case(
            "POST",
            "/openai/v1/chat/completions",
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud800"}]}',
            {"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"},
        )
    )
    def run(case: Case) -> None:
        target.check(case)

    run()
    target.healthy()


def test_fuzzed_headers_and_encodings(target: Target) -> None:
    """API version and beta headers, cache-control, x-llmcache-ttl/-tags, content-type,
    content-encoding with valid, truncated and invalid gzip."""

    bomb = gzip.compress(b"0" * (32 << 20))  # 32 MiB of zeros in ~32 KB: above the body limit
    bomb_case = Case(
        "POST",
        "/openai/v1/embeddings",
        bomb,
        {"authorization": f"Bearer {OPENAI_KEY}", "content-encoding": "gzip"},
        encoding="gzip-bomb",
    )

    @FUZZ
    @given(header_cases())
    @example(bomb_case)
    def run(case: Case) -> None:
        target.check(case)

    run()
    target.healthy()


def test_other_and_unknown_routes(target: Target) -> None:
    """Pass-through and unknown routes, any method, odd paths, absolute-form targets."""

    @FUZZ
    @given(route_cases())
    @example(
        Case(
            "POST",
            "/anthropic/v1/messages",
            _dump(BASE_BODIES["/anthropic/v1/messages"]),
            {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
            absolute=True,
        )
    )
    def run(case: Case) -> None:
        target.check(case)

    run()
    target.healthy()
