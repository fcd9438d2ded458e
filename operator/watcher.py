"""Keeps a replica's ``PolicyStore`` in step with the API server (list, then watch).

An invalid spec (one the API server accepted but pydantic rejects) never replaces the
last valid one: sidecars keep what works, and the kopf handlers report the problem.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from llmcache.policy import API_GROUP, API_VERSION, PLURAL, CachePolicySpec

from .kubeapi import ApiError, KubeApi
from .store import PolicyRecord, PolicyStore

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


def collection_path(namespace: str | None) -> str:
    if namespace is None:
        return f"/apis/{API_GROUP}/{API_VERSION}/{PLURAL}"
    return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}"


def record_of(obj: dict[str, Any]) -> PolicyRecord | None:
    meta = obj.get("metadata") or {}
    try:
        spec = CachePolicySpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        log.warning("CachePolicy %s/%s invalid, not delivered: %s",
                    meta.get("namespace"), meta.get("name"), exc.errors()[:1])  # fmt: skip
        return None
    return PolicyRecord(
        namespace=meta["namespace"],
        name=meta["name"],
        generation=int(meta.get("generation") or 0),
        spec=spec,
    )


class PolicyWatcher:
    def __init__(
        self, api: KubeApi, store: PolicyStore, namespace: str | None, watch_seconds: int = 300
    ) -> None:
        self.api, self.store, self.namespace = api, store, namespace
        self.watch_seconds = watch_seconds
        self.synced = asyncio.Event()
        self.lists = 0
        """Full lists so far (1 plus one per 410 Gone or failure)."""
        self.watches = 0
        """Watch requests so far: the server ends each after ``watch_seconds``."""

    async def run(self) -> None:
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watch must survive API hiccups
                log.warning("CachePolicy watch (%s) failed: %s", self.namespace or "all", exc)
                await asyncio.sleep(RETRY_SECONDS)

    async def _list_and_watch(self) -> None:
        path = collection_path(self.namespace)
        listing = await self.api.request("GET", path)
        self.lists += 1
        records = [r for r in map(record_of, listing.get("items") or []) if r is not None]
        keep = [r for r in records]
        # Policies present but currently invalid keep their last valid record.
        present = {
            (i["metadata"]["namespace"], i["metadata"]["name"]) for i in listing.get("items") or []
        }
        valid = {(r.namespace, r.name) for r in records}
        for key in present - valid:
            old = self.store.get(*key)
            if old is not None:
                keep.append(old)
        if self.namespace is None:
            await self.store.replace_all(keep)
        else:
            for record in keep:
                await self.store.put(record)
            for old in self.store.in_namespace(self.namespace):
                if (old.namespace, old.name) not in present:
                    await self.store.remove(old.namespace, old.name)
        self.synced.set()
        version = listing["metadata"]["resourceVersion"]
        while True:
            try:
                self.watches += 1
                async for event in self.api.watch(path, version, self.watch_seconds):
                    kind, obj = event.get("type"), event.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    await self._apply(kind, obj)
            except ApiError as exc:
                if exc.status == 410:
                    return  # too old: list again
                raise

    async def _apply(self, kind: str | None, obj: dict[str, Any]) -> None:
        if kind == "ERROR":
            raise ApiError(int(obj.get("code") or 500), str(obj.get("message")))
        meta = obj.get("metadata") or {}
        if kind == "DELETED":
            await self.store.remove(meta["namespace"], meta["name"])
        elif kind in ("ADDED", "MODIFIED"):
            record = record_of(obj)
            if record is not None:
                await self.store.put(record)
