"""Shared state of one simulator process: options, latency model, counters."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from aiohttp import web

from .promptcache import AnthropicPromptCache, OpenAIPromptCache


@dataclass(frozen=True)
class SimOptions:
    """Knobs of the simulated upstream (CLI flags map one to one)."""

    ttft_ms: float = 0.0
    ms_per_token: float = 0.0
    jitter: float = 0.0  # relative, 0.1 = every request's latency scaled by 0.9..1.1
    seed: int = 0
    # Overrides the per-model minimum cacheable prefix of both providers (None: real minimums).
    cache_min_tokens: int | None = None
    stream_fault_after: int = 3  # deltas sent before an injected stream fault


@dataclass
class Pace:
    """When each output token of one response is due, relative to its start."""

    ttft_s: float
    per_token_s: float
    started: float = field(default_factory=time.monotonic)

    def due(self, tokens_done: int) -> float:
        return self.started + self.ttft_s + tokens_done * self.per_token_s

    async def wait(self, tokens_done: int) -> None:
        """Sleep until ``tokens_done`` tokens may have been produced (no sleep when free)."""
        delay = self.due(tokens_done) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class Latency:
    """TTFT plus a per-token cost, scaled by seeded jitter."""

    def __init__(self, options: SimOptions) -> None:
        self._options = options
        self._rng = random.Random(options.seed)

    def pace(self, request: web.Request) -> Pace:
        ttft = _header_float(request, "x-sim-ttft-ms", self._options.ttft_ms)
        per_token = _header_float(request, "x-sim-ms-per-token", self._options.ms_per_token)
        scale = 1.0
        if self._options.jitter > 0:
            scale = max(0.0, 1.0 + self._rng.uniform(-1.0, 1.0) * self._options.jitter)
        return Pace(ttft_s=ttft * scale / 1000.0, per_token_s=per_token * scale / 1000.0)


def _header_float(request: web.Request, name: str, default: float) -> float:
    raw = request.headers.get(name)
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


class SimState:
    """Everything a handler needs; one per application."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.latency = Latency(options)
        self.requests: Counter[str] = Counter()
        self.anthropic_cache = AnthropicPromptCache(options.cache_min_tokens)
        self.openai_cache = OpenAIPromptCache(options.cache_min_tokens)
        self.responses: dict[str, dict[str, object]] = {}  # stored Responses API objects
        # W3C trace context of recent requests, as received (tests of trace propagation).
        self.traceparents: deque[str] = deque(maxlen=10_000)

    def reset(self) -> None:
        self.requests.clear()
        self.anthropic_cache.clear()
        self.openai_cache.clear()
        self.responses.clear()
        self.traceparents.clear()

    def remember_response(self, response: dict[str, object], limit: int = 10_000) -> None:
        if len(self.responses) >= limit:
            self.responses.pop(next(iter(self.responses)))
        self.responses[str(response["id"])] = response


def credential_scope(request: web.Request) -> str:
    """A one-way hash of the caller's key: provider caches are per organisation."""
    key = request.headers.get("x-api-key") or request.headers.get("authorization") or ""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
