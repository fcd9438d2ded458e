"""Every replica's share of the sidecar statistics, written into ``status.sidecars``.

Sidecars push their counters to the delivery Service, which spreads them over all operator
replicas, while only the active replica (kopf peering) runs the timer that writes the totals.
So each replica publishes the per-pod reports it heard, keyed by pod name: whichever replica
a pod reached, its latest counters land in one place and are never counted twice.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from llmcache.policy import API_GROUP, API_VERSION, PLURAL

from .cluster import Cluster, describe
from .status import now_iso
from .store import StatsStore

log = logging.getLogger(__name__)


async def publish_forever(cluster: Cluster, stats: StatsStore, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await publish(cluster, stats)
        except Exception:  # a bug here must not silently end the publishing for good
            log.exception("publishing stats failed")


async def publish(cluster: Cluster, stats: StatsStore) -> None:
    """One merge patch per policy with news: only this replica's pods are touched."""
    for (namespace, name), pods in stats.take_new().items():
        at = now_iso()
        sidecars = {pod: {**counters, "at": at} for pod, counters in pods.items()}
        try:
            await cluster.call(
                cluster.custom.patch_namespaced_custom_object_status,
                API_GROUP, API_VERSION, namespace, PLURAL, name,
                {"status": {"sidecars": sidecars}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:  # the policy is gone
                stats.forget(namespace, name)
            else:
                log.warning("cannot publish stats of %s/%s: %s", namespace, name, describe(exc))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot publish stats of %s/%s: %s", namespace, name, exc)
