"""OpenTelemetry traces of the sidecar's requests, opt-in (``spec.tracing``, docs/tracing.md).

Off (the default), the request path pays one attribute check (``Tracing.tracer is None``)
and nothing else: no span objects, and the OpenTelemetry packages (the ``tracing`` extra)
are not even imported. On, each request gets a SERVER span that continues the caller's
W3C ``traceparent``, each upstream call a CLIENT span whose context replaces the caller's
``traceparent`` on the way out (so the app's trace goes on through the cache into the
provider), a coalesced request a link to the span of the request whose call it joined, and
Redis and embedder faults become events of the span of the request that met them.

What a span carries is chosen to be safe to ship to a tracing backend: names of routes,
models, layers and guards, numbers, statuses. Never a prompt, an answer, a header value or
a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
from collections.abc import Awaitable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from llmcache.policy import Tracing as TracingSpec

from .metrics import FaultCounter
from .providers.base import Usage

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from .runtime import Runtime

log = logging.getLogger(__name__)

SCOPE = "llmcache.sidecar"
SERVICE_NAME = "llmcache-sidecar"
# GenAI semantic conventions (gen_ai.operation.name) by llmcache route.
OPERATIONS = {
    "anthropic.messages": "chat",
    "openai.chat": "chat",
    "openai.responses": "chat",
    "openai.embeddings": "embeddings",
}
PROVIDERS = {"anthropic": "anthropic", "openai": "openai"}
MAX_MODEL_CHARS = 256  # of a model name read from a request body


@dataclass(slots=True)
class _Request:
    """The spans of one request in flight (the value of ``_CURRENT`` while it runs)."""

    tracer: Tracer
    span: Span
    children: list[Span] = field(default_factory=list)


_CURRENT: ContextVar[_Request | None] = ContextVar("llmcache_trace", default=None)
# Cache key → span of the request making that upstream call, for the links of those joining it.
_LEADERS: dict[str, Span] = {}


class Tracing:
    """The tracer in force for one sidecar, rebuilt when the policy or environment that
    configures it changes; ``tracer`` is None while tracing is off."""

    def __init__(self, resource: dict[str, str]) -> None:
        self.tracer: Tracer | None = None
        self._resource = resource
        self._provider: TracerProvider | None = None
        self._config: tuple[str | None, float | None] | None = None
        self.ratio: float | None = None  # the policy's sampling ratio (None: OTEL_* decides)
        self._retired: set[asyncio.Task[None]] = set()

    async def apply(self, spec: TracingSpec) -> None:
        """Take ``spec`` into account; the previous exporter flushes in the background."""
        wanted = _config(spec)
        if wanted == self._config:
            return
        old, self._config = self._provider, wanted
        self.tracer = self._provider = None
        self.ratio = None
        if wanted is not None:
            try:
                self._provider = _provider(wanted, self._resource)
            except ImportError as exc:  # fail open: serving never depends on tracing
                log.error("tracing enabled but unavailable (install the `tracing` extra): %s", exc)
            except Exception as exc:  # e.g. an OTEL_* variable the SDK cannot use
                log.error("tracing enabled but could not start, running without: %s", exc)
            else:
                self.tracer = self._provider.get_tracer(SCOPE)
                self.ratio = wanted[1]
                log.info("tracing on: endpoint %s, sampling %s", *_shown(wanted))
        if old is not None:
            task = asyncio.create_task(asyncio.to_thread(old.shutdown))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    async def close(self) -> None:
        """Export what is still buffered (at shutdown)."""
        provider, self._provider, self.tracer = self._provider, None, None
        for task in list(self._retired):
            with contextlib.suppress(Exception):
                await task
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)


def _config(spec: TracingSpec) -> tuple[str | None, float | None] | None:
    """(endpoint, sampling ratio), None fields left to the ``OTEL_*`` variables; None: off."""
    if not spec.enabled or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return (spec.endpoint, spec.sampling_ratio)


def _shown(config: tuple[str | None, float | None]) -> tuple[str, str]:
    endpoint, ratio = config
    return (
        endpoint or "from OTEL_EXPORTER_OTLP_*",
        "from OTEL_TRACES_SAMPLER" if ratio is None else f"{ratio:g} of new traces",
    )


def _provider(config: tuple[str | None, float | None], resource: dict[str, str]) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    endpoint, ratio = config
    # Unset: the SDK reads OTEL_TRACES_SAMPLER(_ARG), and the exporter OTEL_EXPORTER_OTLP_*.
    sampler = None if ratio is None else ParentBased(TraceIdRatioBased(ratio))
    attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME, **resource}
    provider = TracerProvider(sampler=sampler, resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


@functools.cache
def _api() -> tuple[ModuleType, Any]:
    """The OpenTelemetry API and the W3C propagator, imported once, when first traced."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return trace, TraceContextTextMapPropagator()


# -- the request's span ------------------------------------------------------------------------


async def serve(
    rt: Runtime, request: web.Request, route: str, handling: Awaitable[web.StreamResponse]
) -> web.StreamResponse:
    """Run ``handling`` (the request's handler, not yet started) inside its SERVER span."""
    tracer = rt.tracing.tracer
    if tracer is None or _dropped(request, rt.tracing.ratio):
        return await handling
    trace, propagator = _api()
    template = _route_template(request)
    span = tracer.start_span(
        f"{request.method} {template}",
        context=propagator.extract(request.headers),
        kind=trace.SpanKind.SERVER,
    )
    if span.is_recording():  # an unsampled request costs no more than the span's ids
        span.set_attributes(_request_attributes(request.method, template, route))
    current = _Request(tracer, span)
    token = _CURRENT.set(current)
    try:
        resp = await handling
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
        raise
    else:
        if span.is_recording():
            await _record_outcome(span, request, rt, route, resp)
        return resp
    finally:
        _CURRENT.reset(token)
        for child in current.children:  # cut short (a cancelled request): ended here
            if child.is_recording():
                child.set_status(trace.StatusCode.ERROR, "request ended first")
                child.end()
        span.end()


def _dropped(request: web.Request, ratio: float | None) -> bool:
    """Whether the sampler would drop this request's trace, decided before any span object
    is made: starting even a non-recording span is most of what tracing costs a request
    (a 1 % ratio kept 66 % of the untraced hit throughput). The same decision as
    ``ParentBased(TraceIdRatioBased(ratio))``: the caller's sampled flag when it sends a
    ``traceparent``, else the ratio. (A dropped request passes the caller's ``traceparent``
    upstream unchanged, as with tracing off.) Not taken when ``OTEL_TRACES_SAMPLER`` chooses
    the sampler (``ratio`` None)."""
    if ratio is None:
        return False
    parent = request.headers.get("traceparent")
    if parent:
        return parent.endswith("-00")  # sampled flag unset; anything else: the SDK decides
    return random.random() >= ratio


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _request_attributes(method: str, template: str, route: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "http.route": template,
        "llmcache.route": route,
    }
    operation = OPERATIONS.get(route)
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
        attributes["gen_ai.provider.name"] = PROVIDERS[route.split(".", 1)[0]]
    return attributes


async def _record_outcome(
    span: Span, request: web.Request, rt: Runtime, route: str, resp: web.StreamResponse
) -> None:
    """What the cache did, read from what the response says about it (``x-llmcache*``), so
    the request path itself needs no tracing calls on its hit path."""
    headers = resp.headers
    result = headers.get("x-llmcache", "none")
    layer = headers.get("x-llmcache-layer", "none")
    span.set_attribute("http.response.status_code", resp.status)
    span.set_attribute("llmcache.cache.result", result)
    span.set_attribute("llmcache.cache.layer", layer)
    similarity = headers.get("x-llmcache-similarity")
    if similarity is not None:
        with contextlib.suppress(ValueError):
            span.set_attribute("llmcache.cache.similarity", float(similarity))
    walked = _walked(rt, request, result, layer) if route in OPERATIONS else ()
    if walked:
        span.set_attribute("llmcache.cache.layers", list(walked))
    if route in OPERATIONS and (model := await _model(request)) is not None:
        span.set_attribute("gen_ai.request.model", model)
    if resp.status >= 500:
        span.set_status(_api()[0].StatusCode.ERROR)


def _walked(rt: Runtime, request: web.Request, result: str, layer: str) -> Sequence[str]:
    """The layers looked in, in order: up to the one that answered, all of them on a miss."""
    if result not in ("hit", "miss") or "no-cache" in request.headers.get("cache-control", ""):
        return ()
    names = [layer.name for layer in rt.layers]
    if result == "hit" and layer in names:
        return names[: names.index(layer) + 1]
    return names


async def _model(request: web.Request) -> str | None:
    """The requested model, from the body the handler read (aiohttp keeps it); None when the
    body was read as a stream (no length given), not read at all (refused before), or is not
    a JSON object with a model."""
    if not request.content.is_eof():
        return None
    raw = await request.read()
    if not raw:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model[:MAX_MODEL_CHARS] if isinstance(model, str) else None


# -- hooks of the request path (each returns at once when the request is not traced) ------------


def note(key: str, value: str | float | int | bool) -> None:
    """An attribute of the current request's span (e.g. a bypass reason, a guard verdict)."""
    current = _CURRENT.get()
    if current is not None:
        current.span.set_attribute(key, value)


def upstream_call(
    route: str, model: str | None, url: str, headers: list[tuple[str, str]], method: str = "POST"
) -> Any:
    """Start the CLIENT span of an upstream call and put its ``traceparent`` (in place of the
    caller's) into ``headers``; None when the request is not traced. End with
    ``upstream_done``."""
    current = _CURRENT.get()
    if current is None:
        return None
    trace, propagator = _api()
    family = route.split(".", 1)[0]
    operation = OPERATIONS.get(route)
    target = urlsplit(url)
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "server.address": target.hostname or "",
        "llmcache.route": route,
    }
    if target.port is not None:
        attributes["server.port"] = target.port
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
        attributes["gen_ai.provider.name"] = PROVIDERS.get(family, family)
    if model:
        attributes["gen_ai.request.model"] = model[:MAX_MODEL_CHARS]
    name = f"{operation} {model}" if operation and model else f"{method} {family}"
    span = current.tracer.start_span(
        name,
        context=trace.set_span_in_context(current.span),
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
    )
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context=trace.set_span_in_context(span))
    headers[:] = [(k, v) for k, v in headers if k.lower() not in ("traceparent", "tracestate")]
    headers.extend(carrier.items())
    current.children.append(span)
    return span


def upstream_done(
    span: Any, status: int | None = None, usage: Usage | None = None, error: str | None = None
) -> None:
    """End an ``upstream_call`` span with the answer's status and token usage, or an error
    (usage also goes on the request's span: what this request cost)."""
    if span is None:
        return
    error_status = _api()[0].StatusCode.ERROR
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_status(error_status)
    if error is not None:
        span.set_attribute("error.type", "upstream_call_failed")
        span.set_status(error_status, error)
    if usage is not None:
        attributes = _usage_attributes(usage)
        span.set_attributes(attributes)
        current = _CURRENT.get()
        if current is not None:
            current.span.set_attributes(attributes)
    span.end()
    current = _CURRENT.get()
    if current is not None and span in current.children:
        current.children.remove(span)


def _usage_attributes(usage: Usage) -> dict[str, int]:
    # GenAI conventions: input_tokens counts every input token, cached ones included.
    return {
        "gen_ai.usage.input_tokens": usage.input + usage.cache_read + usage.cache_write,
        "gen_ai.usage.output_tokens": usage.output,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write,
    }


def leading(key: str) -> None:
    """The current request makes the upstream call others with ``key`` may join."""
    current = _CURRENT.get()
    if current is not None:
        _LEADERS[key] = current.span


def led(key: str) -> None:
    """That call is over: nobody joins it any more."""
    if _LEADERS:
        _LEADERS.pop(key, None)


def joined(key: str) -> None:
    """The current request waits for the call another request is making: link to it."""
    current = _CURRENT.get()
    leader = _LEADERS.get(key) if current is not None else None
    if current is not None and leader is not None:
        current.span.add_link(leader.get_span_context(), {"llmcache.link": "coalesced"})


def _fault(name: str, labels: tuple[str, ...]) -> None:
    """A fail-open fault counted in ``llmcache_redis_faults_total`` or
    ``llmcache_embedder_faults_total``: an event of the span of the request that met it."""
    current = _CURRENT.get()
    if current is None or not current.span.is_recording():
        return
    if name == "llmcache_redis_faults" and len(labels) == 2:
        current.span.add_event("llmcache.redis.fault", {"op": labels[0], "reason": labels[1]})
    elif name == "llmcache_embedder_faults" and labels:
        current.span.add_event("llmcache.embedder.fault", {"reason": labels[0]})


FaultCounter.hook = _fault
