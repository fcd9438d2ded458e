"""Keeps a replica's ``PolicyStore`` in step with the API server (list, then watch).

The watch is the client library's (``kubernetes_asyncio.watch.Watch``): when the server ends
it (after ``watch_seconds``) it goes on from the last resourceVersion seen, events or
bookmarks, without a new list; a 410 Gone (that version has been compacted away) means
events were lost, so it lists again; a 401 (rotated token) loads the credentials again and
watches on from the same version.

An invalid spec (one the API server accepted but pydantic rejects) never replaces the
last valid one: sidecars keep what works, and the kopf handlers report the problem.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from llmcache.policy import API_GROUP, API_VERSION, PLURAL, CachePolicySpec, describe_error

from .cluster import Cluster, describe
from .ledger import micro_usd, period_spend
from .store import PolicyRecord, PolicyStore

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
CONNECT_SECONDS = 10.0


def record_of(obj: dict[str, Any]) -> PolicyRecord | None:
    meta = obj.get("metadata") or {}
    try:
        spec = CachePolicySpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        log.warning("CachePolicy %s/%s invalid, not delivered: %s",
                    meta.get("namespace"), meta.get("name"), describe_error(exc, 1))  # fmt: skip
        return None
    return PolicyRecord(
        namespace=meta["namespace"],
        name=meta["name"],
        generation=int(meta.get("generation") or 0),
        spec=spec,
        uid=str(meta.get("uid") or ""),
        redis_epoch=int(((obj.get("status") or {}).get("redisUser") or {}).get("epoch") or 0),
        budget_exhausted=budget_exhausted(spec, obj.get("status") or {}),
    )


def budget_exhausted(spec: CachePolicySpec, status: dict[str, Any]) -> bool:
    """From the replicas' ledgers in the object itself, so every replica knows as soon as
    its watch shows a ledger write (the active replica's ``status.budget`` comes a timer
    interval later)."""
    if spec.budget is None:
        return False
    replicas = (status.get("ledger") or {}).get("replicas") or {}
    spend = period_spend(replicas, spec.budget.period, datetime.datetime.now(datetime.UTC))
    return spend["spentMicroUsd"] >= micro_usd(spec.budget.amount_usd)


class PolicyWatcher:
    def __init__(
        self, cluster: Cluster, store: PolicyStore, namespace: str | None, watch_seconds: int = 300
    ) -> None:
        self.cluster, self.store, self.namespace = cluster, store, namespace
        self.watch_seconds = watch_seconds
        self.synced = asyncio.Event()
        self.lists = 0
        """Full lists so far (1 plus one per 410 Gone or failure)."""
        self.watches = 0
        """Watch requests so far: the server ends each after ``watch_seconds``."""
        self.resource_version = ""
        """The last version seen (list, event or bookmark): where the next watch starts."""

    def _list_request(self) -> tuple[Callable[..., Awaitable[Any]], tuple[str, ...]]:
        custom = self.cluster.custom
        if self.namespace is None:
            return custom.list_cluster_custom_object, (API_GROUP, API_VERSION, PLURAL)
        return custom.list_namespaced_custom_object, (
            API_GROUP, API_VERSION, self.namespace, PLURAL
        )  # fmt: skip

    async def run(self) -> None:
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watch must survive API hiccups
                what = describe(exc) if isinstance(exc, ApiException) else repr(exc)
                log.warning("CachePolicy watch (%s) failed: %s", self.namespace or "all", what)
                await asyncio.sleep(RETRY_SECONDS)

    async def _list_and_watch(self) -> None:
        request, args = self._list_request()
        listing = await self.cluster.call(request, *args)
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
        self.resource_version = listing["metadata"]["resourceVersion"]
        reloaded = False
        while True:
            try:
                self.watches += 1
                await self._watch(request, args)
                reloaded = False  # the server took the credentials
            except ApiException as exc:
                if exc.status == 410:
                    where, version = self.namespace or "all", self.resource_version
                    log.info("CachePolicy watch (%s): version %s is gone (410), listing again",
                             where, version)  # fmt: skip
                    return
                if exc.status == 401 and not reloaded:  # once; a second one goes up
                    log.info("CachePolicy watch (%s): token refused (401), loading credentials "
                             "again", self.namespace or "all")  # fmt: skip
                    await self.cluster.reload()
                    reloaded = True
                    continue
                raise

    async def _watch(self, request: Callable[..., Awaitable[Any]], args: tuple[str, ...]) -> None:
        """One watch request, until the server ends it."""
        async with watch.Watch() as stream:
            async for event in stream.stream(
                request,
                *args,
                resource_version=self.resource_version,
                timeout_seconds=self.watch_seconds,
                allow_watch_bookmarks=True,
                _request_timeout=(CONNECT_SECONDS, self.watch_seconds + 30),
            ):
                kind, obj = event.get("type"), event.get("raw_object") or {}
                await self._apply(kind, obj)
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version:
                    self.resource_version = version

    async def _apply(self, kind: str | None, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if kind == "DELETED":
            await self.store.remove(meta["namespace"], meta["name"])
        elif kind in ("ADDED", "MODIFIED"):
            record = record_of(obj)
            if record is not None:
                await self.store.put(record)
