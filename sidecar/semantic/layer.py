"""The semantic layer: after the exact layers, serve the answer of an earlier request whose
last user turn means the same, within the same hard partition (see ``canonical``).

Lookup: render → embed (batched, exact-cached) → best candidate of the partition in the
in-process index → threshold → verification guards → the cached answer (memory, else one
Redis GET). In shadow mode the same happens but the request still goes upstream, and when
its answer arrives the would-be hit is scored: ``would_hit_correct`` if the cached answer's
text equals the fresh one after whitespace and case folding, or their embeddings have
cosine >= ``SHADOW_ANSWER_SIMILARITY``; else ``would_hit_wrong``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np

from llmcache.embedder import Embedder, EmbedderError
from llmcache.policy import SemanticLayer as SemanticSpec

from ..layers import CacheRequest, Entry, Hit, Selector
from ..metrics import Metrics
from . import guards
from .canonical import Rendered, render
from .index import Record, VectorIndex
from .metrics import semantic_metrics
from .store import SemanticStore

log = logging.getLogger(__name__)

SHADOW_ANSWER_SIMILARITY = 0.90
_SCRATCH = "semantic"


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
        self.index = VectorIndex(dim, spec.max_entries)
        self.store = SemanticStore(
            prefix, "s", metrics, dim, self._on_record, redis_url, redis_timeout_ms,
            spec.max_entries,
        )  # fmt: skip
        self._timeout = spec.embedder.timeout_ms / 1000
        self._enabled_guards = tuple(guards.GUARDS) if spec.verify else ()

    def start(self) -> None:
        self.store.start()

    def _on_record(self, record: Record, vector: np.ndarray) -> None:
        self.index.add(record, vector)
        self._m.entries.labels("semantic").set(len(self.index))

    # -- lookup ----------------------------------------------------------------------------

    async def _prepare(self, req: CacheRequest) -> tuple[Rendered, np.ndarray] | None:
        cached = req.extra.get(_SCRATCH)
        if cached is not None:
            return cached if cached != () else None
        rendered = render(req.route, req.model, req.partition, _material(req.route, req.body))
        result: tuple[Rendered, np.ndarray] | None = None
        if rendered is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    vectors = await self.embedder.embed([rendered.text])
                result = (rendered, vectors[0])
            except EmbedderError as exc:
                self._m.embedder_faults.labels(exc.reason).inc()
            except TimeoutError:
                self._m.embedder_faults.labels("timeout").inc()
            except Exception as exc:  # never fail a request for the semantic layer
                log.warning("embedding failed: %s", exc)
                self._m.embedder_faults.labels("error").inc()
        req.extra[_SCRATCH] = result if result is not None else ()
        return result

    async def get(self, req: CacheRequest) -> Hit | None:
        prepared = await self._prepare(req)
        if prepared is None:
            return None
        rendered, vector = prepared
        found = self.index.search(rendered.partition, vector)
        if found is None:
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
            return None
        record, score = found
        self._m.similarity.labels("semantic").observe(score)
        if score < self.spec.threshold:
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
            return None
        failed = guards.first_failure(rendered.text, record.text, self._enabled_guards)
        if failed is not None:
            self._m.rejections.labels(failed).inc()
            if self.spec.shadow:
                self._m.shadow.labels("no_candidate").inc()
            return None
        entry = await self.store.entry(record.id)
        if entry is None:
            self.index.remove(record.id)
            return None
        if self.spec.shadow:
            req.extra["semantic_shadow"] = entry
            return None
        expires = min(record.expires, entry.expires or record.expires)
        return Hit(entry, "semantic", score, expires)

    # -- store -----------------------------------------------------------------------------

    async def put(self, req: CacheRequest, entry: Entry) -> None:
        try:
            prepared = await self._prepare(req)
            if prepared is None:
                return
            rendered, vector = prepared
            would = req.extra.pop("semantic_shadow", None)
            if would is not None:
                await self._score_shadow(would, entry)
            ttl = min(req.ttl, self.spec.ttl_seconds)
            record = Record(
                id=req.key, partition=rendered.partition, text=rendered.text,
                model=entry.model, expires=time.time() + ttl, tags=entry.tags,
            )  # fmt: skip
            self.index.add(record, vector)
            self._m.entries.labels("semantic").set(len(self.index))
            self.store.save(record, vector, entry)
            self._metrics.stores.labels("semantic").inc()
        except Exception as exc:  # put never raises
            log.warning("semantic store failed: %s", exc)

    async def _score_shadow(self, cached: Entry, fresh: Entry) -> None:
        a, b = answer_text(cached.response), answer_text(fresh.response)
        same = " ".join(a.lower().split()) == " ".join(b.lower().split())
        if not same and a and b:
            try:
                async with asyncio.timeout(self._timeout * 4):
                    va, vb = await self.embedder.embed([a, b])
                same = float(va @ vb) >= SHADOW_ANSWER_SIMILARITY
            except Exception:
                self._m.embedder_faults.labels("shadow").inc()
                return
        self._m.shadow.labels("would_hit_correct" if same else "would_hit_wrong").inc()

    # -- invalidation ----------------------------------------------------------------------

    async def invalidate(self, selector: Selector) -> int:
        if selector.everything:
            n = len(self.index)
            self.index.clear()
            self.store.drop_local()  # Redis: the full flush SCANs P:* itself
            self._m.entries.labels("semantic").set(0)
            return n
        ids = [rid for rid, r in self.index.records.items() if selector.matches(r.model, r.tags)]
        for rid in ids:
            self.index.remove(rid)
        self.store.forget(ids)
        self._m.entries.labels("semantic").set(len(self.index))
        return len(ids)

    async def close(self) -> None:
        await self.store.close()
        await self.embedder.close()
