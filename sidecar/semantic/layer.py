"""The semantic layer: after the exact layers, serve the answer of an earlier request whose
last user turn means the same, within the same hard partition (see ``canonical``).

Lookup: render → embed (batched, exact-cached) → best candidate of the partition in the
in-process index → threshold → verification guards → the cached answer (memory, else one
Redis GET). In shadow mode the same happens but the request still goes upstream, and when
its answer arrives the best candidate is judged: correct if the cached answer's text equals
the fresh one after whitespace and case folding, or their embeddings have cosine >=
``SHADOW_ANSWER_SIMILARITY``; else wrong. A would-be hit counts as ``would_hit_correct`` or
``would_hit_wrong``; candidates a little below the threshold or vetoed by a guard are judged
too, and feed the threshold advice (``advisor``).

What a miss costs, so the layer never makes a request slower than the exact layers alone:

- the embedding starts when the request is keyed (``begin``), while L1 and L2 look;
- a request whose partition holds no entry cannot hit: its lookup waits for nothing
  (``skipped``), and its embedding, needed only for the index, runs beside the upstream call;
- a lookup waits at most ``embedder.timeoutMs``; the embedding goes on after that; while
  embeddings take longer than that on average (an overloaded embedder), lookups do not wait
  at all (``overloaded``) unless the vector is already there;
- the answer is indexed under the request's own vector: at once when it is ready, else after
  the response is sent, in the background (at most ``MAX_DEFERRED`` at a time, each within
  ``index_deadline``, counted in ``llmcache_semantic_deferred_stores_total``). So a slow or
  loaded embedder costs hits on the requests it is slow for, never the entries themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from llmcache.embedder import Embedder, EmbedderError, threads
from llmcache.policy import SemanticLayer as SemanticSpec

from .. import tracing
from ..layers import CacheRequest, Entry, Hit, Selector
from ..metrics import Metrics
from . import guards
from .advisor import SHADOW_MARGIN, ThresholdAdvisor
from .canonical import Rendered, render
from .index import Record, VectorIndex
from .metrics import semantic_metrics
from .store import SemanticStore
from .thresholds import effective_threshold

log = logging.getLogger(__name__)

SHADOW_ANSWER_SIMILARITY = 0.90
MAX_DEFERRED = 1024  # answers waiting for their embedding to be indexed, at most
RECENT_WEIGHT = 0.2  # of the latest embedding in the moving average of their durations
_SCRATCH = "semantic"
_SHADOW = "semantic_shadow"
T = TypeVar("T")


def index_deadline(timeout_ms: int) -> float:
    """Seconds an embedding may take for the index, queueing included: only the background
    waits for it, and a loaded local model works through a backlog at its own pace (a 2 s
    deadline dropped 76 of 121 entries at a load average of 10 on 2 cores). What bounds the
    backlog is ``MAX_DEFERRED``."""
    return max(8 * timeout_ms / 1000, 60.0)


@dataclass(frozen=True, slots=True)
class _Shadow:
    """A shadow-mode candidate, judged when the fresh answer arrives."""

    record_id: str
    score: float
    vetoed_by: str | None
    entry: Entry | None  # fetched already: a would-be hit (else fetched when judged)


@dataclass(slots=True)
class _Pending:
    """A request's rendering and its embedding (started once, shared by lookup and store)."""

    rendered: Rendered
    vector: asyncio.Task[np.ndarray | None] | None = None


def answer_text(response: dict[str, Any]) -> str:
    """The text of an Anthropic, OpenAI chat or OpenAI responses answer."""
    parts: list[str] = []
    for block in response.get("content") or []:  # anthropic
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    for choice in response.get("choices") or []:  # openai chat
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            parts.append(message["content"])
    for item in response.get("output") or []:  # openai responses
        for block in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
    return "\n".join(parts)


def _material(route: str, body: dict[str, Any]) -> dict[str, Any]:
    """The provider's key material (its field-by-field decision of what changes the
    answer), so the semantic partition ignores exactly what the exact key ignores."""
    try:
        from ..providers import PROVIDERS

        provider = PROVIDERS.get(route)
        return provider.key_material(body) if provider is not None else body
    except Exception:
        return body


class SemanticLayer:
    name = "semantic"

    def __init__(
        self,
        spec: SemanticSpec,
        embedder: Embedder,
        metrics: Metrics,
        prefix: str,
        redis_url: str | None = None,
        redis_timeout_ms: int = 50,
        dim: int = 384,
    ) -> None:
        self.spec = spec
        self.embedder = embedder
        self._metrics = metrics
        self._m = semantic_metrics(metrics)
        self.index = VectorIndex(dim, spec.max_entries, spec.max_bytes, self._evicted)
        # Read at scrape time: a load adds thousands of records a second, no per-record cost.
        self._m.entries.labels("semantic").set_function(lambda: len(self.index))
        self._m.index_bytes.labels("semantic").set_function(lambda: self.index.nbytes)
        self.store = SemanticStore(
            prefix, "s", metrics, dim, self._on_record, redis_url, redis_timeout_ms,
            spec.max_entries,
        )  # fmt: skip
        self._timeout = spec.embedder.timeout_ms / 1000
        self._index_timeout = index_deadline(spec.embedder.timeout_ms)
        self._enabled_guards = tuple(guards.GUARDS) if spec.verify else ()
        self.threshold = effective_threshold(spec.threshold, spec.embedder.model)
        self.advisor = ThresholdAdvisor(self.threshold) if spec.shadow else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._deferred = 0
        self.recent_s = 0.0  # moving average of how long embeddings take
        self._generation = 0  # bumped by every invalidation: a deferred store then drops

    def start(self) -> None:
        self._m.threads.set(threads.current())
        self.store.start()

    @property
    def loaded(self) -> bool:
        """Whether the first background load of the records in Redis has finished."""
        return self.store.loaded.is_set()

    def _on_record(self, record: Record, vector: np.ndarray, cold: bool = False) -> bool:
        return self.index.add(record, vector, cold)

    def _evicted(self, record: Record) -> None:
        self._m.evictions.labels("semantic").inc()
        self.store.evicted(record.id)

    # -- the request's embedding -----------------------------------------------------------

    def _pending(self, req: CacheRequest) -> _Pending | None:
        """The request's rendering (None: not semantically cacheable), made once."""
        found = req.extra.get(_SCRATCH)
        if found is not None and found[0] is self:  # not another (replaced) layer's
            pending: _Pending | None = found[1]
            return pending
        rendered = render(req.route, req.model, req.partition, _material(req.route, req.body))
        pending = _Pending(rendered) if rendered is not None else None
        req.extra[_SCRATCH] = (self, pending)
        return pending

    def _embedding(self, pending: _Pending) -> asyncio.Task[np.ndarray | None]:
        if pending.vector is None:
            pending.vector = self._spawn(self._embed(pending.rendered.text))
        return pending.vector

    async def _embed(self, text: str) -> np.ndarray | None:
        """The text's vector, or None (counted) when the embedder fails or takes longer than
        the index deadline."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self._index_timeout):
                vectors = await self.embedder.embed([text])
            vector: np.ndarray = vectors[0]
            self._took(time.perf_counter() - t0)
            return vector
        except EmbedderError as exc:
            self._m.embedder_faults.labels(exc.reason).inc()
        except TimeoutError:
            self._took(self._index_timeout)
            self._m.embedder_faults.labels("index_timeout").inc()
        except Exception as exc:  # never fail a request for the semantic layer
            log.warning("embedding failed: %s", exc)
            self._m.embedder_faults.labels("error").inc()
        return None

    def _took(self, seconds: float) -> None:
        """Every embedding (index-only ones too) updates the estimate, so lookups resume as
        soon as the embedder is fast again."""
        self.recent_s += RECENT_WEIGHT * (seconds - self.recent_s)

    def begin(self, req: CacheRequest) -> None:
        """Called once the request is keyed, before the exact layers look: start embedding
        now if the lookup will wait for it (an entry shares the partition), or if there is
        no lookup but a store (``cache-control: no-cache``)."""
        try:
            pending = self._pending(req)
            if pending is not None and (
                not req.lookup or self.index.has_partition(pending.rendered.partition)
            ):
                self._embedding(pending)
        except Exception as exc:
            log.warning("semantic layer: %s", exc)

    # -- lookup ----------------------------------------------------------------------------

    async def get(self, req: CacheRequest) -> Hit | None:
        t0 = time.perf_counter()
        pending = self._pending(req)
        if pending is None:
            return None
        try:
            outcome, hit = await self._lookup(pending, req)
        except Exception as exc:  # a lookup never fails the request
            log.warning("semantic lookup failed: %s", exc)
            outcome, hit = "error", None
        self._m.lookups.observe((outcome,), time.perf_counter() - t0)
        tracing.note("llmcache.semantic.outcome", outcome)
        return hit

    async def _lookup(self, pending: _Pending, req: CacheRequest) -> tuple[str, Hit | None]:
        rendered = pending.rendered
        task = self._embedding(pending)  # a skipped lookup still needs it for the index
        if not self.index.has_partition(rendered.partition):
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
            return "skipped", None
        if not task.done() and self.recent_s > self._timeout:
            return "overloaded", None  # it would time out: a miss now, not after timeoutMs
        try:
            async with asyncio.timeout(self._timeout):
                vector = await asyncio.shield(task)
        except TimeoutError:
            self._m.embedder_faults.labels("timeout").inc()
            return "timeout", None
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this request was cancelled, not the embedding
            return "error", None  # the layer is closing
        if vector is None:
            return "error", None
        found = self.index.search(rendered.partition, vector)
        if found is None:
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
            return "miss", None
        record, score = found
        self._m.similarity.labels("semantic").observe(score)
        tracing.note("llmcache.semantic.similarity", float(score))
        tracing.note("llmcache.semantic.threshold", self.threshold)
        if score < self.threshold:
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
                if score >= self.threshold - SHADOW_MARGIN:
                    req.extra[_SHADOW] = _Shadow(record.id, score, None, None)
            return "miss", None
        failed = guards.first_failure(rendered.text, record.text, self._enabled_guards)
        tracing.note("llmcache.semantic.guard", failed or "passed")
        if failed is not None:
            self._m.rejections.labels(failed).inc()
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
                req.extra[_SHADOW] = _Shadow(record.id, score, failed, None)
            return "miss", None
        entry = await self.store.entry(record.id)
        if entry is None:
            self.index.remove(record.id)
            return "miss", None
        if self.spec.shadow:
            req.extra[_SHADOW] = _Shadow(record.id, score, None, entry)
            return "miss", None
        self.index.touch(record.id)  # a hit keeps its record from eviction the longest
        expires = min(record.expires, entry.expires or record.expires)
        return "hit", Hit(entry, "semantic", score, expires)

    # -- store -----------------------------------------------------------------------------

    async def put(self, req: CacheRequest, entry: Entry) -> None:
        """Index the answer under the request's own vector; never waits for the embedder."""
        try:
            pending = self._pending(req)
            if pending is None:
                return
            task = self._embedding(pending)
            would: _Shadow | None = req.extra.pop(_SHADOW, None)
            rendered = pending.rendered
            record = Record(
                id=req.key, partition=rendered.partition, text=rendered.text,
                model=entry.model, expires=time.time() + min(req.ttl, self.spec.ttl_seconds),
                tags=entry.tags,
            )  # fmt: skip
            if task.done():
                if not task.cancelled() and (vector := task.result()) is not None:
                    self._index(record, vector, entry)
                if would is not None:
                    self._spawn(self._score_shadow(would, entry))
                return
            if self._deferred >= MAX_DEFERRED:
                self._m.deferred.labels("overflow").inc()
                return
            self._deferred += 1
            self._spawn(self._store_later(record, task, entry, would, self._generation))
        except Exception as exc:  # put never raises
            log.warning("semantic store failed: %s", exc)

    async def _store_later(
        self,
        record: Record,
        task: asyncio.Task[np.ndarray | None],
        entry: Entry,
        would: _Shadow | None,
        generation: int,
    ) -> None:
        try:
            vector = await task  # bounded by the index deadline (``_embed``)
            if vector is None:
                self._m.deferred.labels("failed").inc()
            elif generation != self._generation or record.expires <= time.time():
                self._m.deferred.labels("flushed").inc()  # a flush came in between
            else:
                self._index(record, vector, entry)
                self._m.deferred.labels("indexed").inc()
            if would is not None:
                await self._score_shadow(would, entry)
        except Exception as exc:
            log.warning("semantic deferred store failed: %s", exc)
        finally:
            self._deferred -= 1

    def _index(self, record: Record, vector: np.ndarray, entry: Entry) -> None:
        self.index.add(record, vector)
        self.store.save(record, vector, entry)
        self._metrics.stores.labels("semantic").inc()

    async def _score_shadow(self, would: _Shadow, fresh: Entry) -> None:
        cached = would.entry or await self.store.entry(would.record_id)
        if cached is None:  # expired or flushed meanwhile: nothing to judge
            return
        a, b = answer_text(cached.response), answer_text(fresh.response)
        same = " ".join(a.lower().split()) == " ".join(b.lower().split())
        if not same and a and b:
            try:
                async with asyncio.timeout(self._index_timeout):
                    va, vb = await self.embedder.embed([a, b])
                same = float(va @ vb) >= SHADOW_ANSWER_SIMILARITY
            except Exception:
                self._m.embedder_faults.labels("shadow").inc()
                return
        judged = "correct" if same else "wrong"
        if would.entry is not None:
            self._m.shadow.labels(f"would_hit_{judged}").inc()
        if would.vetoed_by is not None:
            self._m.shadow_vetoes.labels(would.vetoed_by, judged).inc()
        if self.advisor is not None:
            self.advisor.observe(would.score, same, would.vetoed_by)
            found = self.advisor.recommended()
            if found is not None:
                self._m.recommended_threshold.labels("semantic").set(found[0])
                self._m.recommended_recall.labels("semantic").set(found[1])

    def stats(self) -> dict[str, Any]:
        """This layer's part of ``GET /stats``: in shadow mode, the threshold advice."""
        return {"shadow": self.advisor.report()} if self.advisor is not None else {}

    # -- invalidation ----------------------------------------------------------------------

    async def invalidate(self, selector: Selector) -> int:
        self._generation += 1
        if selector.everything:
            n = len(self.index)
            self.index.clear()
            self.store.drop_local()  # Redis: the full flush SCANs P:* itself
            return n
        ids = [rid for rid, r in self.index.records.items() if selector.matches(r.model, r.tags)]
        for rid in ids:
            self.index.remove(rid)
        self.store.forget(ids)
        return len(ids)

    # -- plumbing --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.close()
        await self.embedder.close()
        self._m.entries.labels("semantic").set_function(lambda: 0)  # and let the index go
        self._m.index_bytes.labels("semantic").set_function(lambda: 0)
