"""Every replica's share of the sidecar statistics, written into ``status.ledger``.

Sidecars push their reports to the delivery Service, which spreads them over all operator
replicas, while only the active replica (kopf peering) runs the timer that writes the totals.
So each replica keeps its own running sums per policy in
``status.ledger.replicas.<replica>`` (one merge patch per policy per interval, only when a
report came in): the object grows with the replicas, never with the pods. A replica that
restarts reads its sums back before its first write, so they only ever grow. A report is
acknowledged to its sidecar once the write holding it succeeded (``StatsStore``).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from llmcache.policy import API_GROUP, API_VERSION, PLURAL

from .cluster import Cluster, describe
from .ledger import ReplicaSums
from .metrics import OperatorMetrics
from .status import now_iso
from .store import StatsStore

log = logging.getLogger(__name__)


async def publish_forever(
    cluster: Cluster,
    stats: StatsStore,
    replica: str,
    interval: float,
    metrics: OperatorMetrics | None = None,
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await publish(cluster, stats, replica, metrics)
        except Exception:  # a bug here must not silently end the publishing for good
            log.exception("publishing stats failed")


async def publish(
    cluster: Cluster, stats: StatsStore, replica: str, metrics: OperatorMetrics | None = None
) -> None:
    for (namespace, name), batch in stats.take().items():
        ok = False
        try:
            base = stats.written(namespace, name)
            if base is None:
                base = await read_back(cluster, namespace, name, replica)
            sums = base.merge(batch.sums)
            doc = sums.to_status(stats.pods(namespace, name), now_iso())
            await cluster.call(
                cluster.custom.patch_namespaced_custom_object_status,
                API_GROUP, API_VERSION, namespace, PLURAL, name,
                {"status": {"ledger": {"replicas": {replica: doc}}}},
                _content_type="application/merge-patch+json",
            )  # fmt: skip
            ok = True
        except ApiException as exc:
            if exc.status == 404:  # the policy is gone
                stats.forget(namespace, name)
            else:
                log.warning("cannot write stats of %s/%s: %s", namespace, name, describe(exc))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot write stats of %s/%s: %s", namespace, name, exc)
        finally:
            if ok:
                stats.committed(namespace, name, batch, sums)
            else:
                stats.failed(batch)
            if metrics is not None:
                metrics.stats_writes.labels("ok" if ok else "failed").inc()


async def read_back(cluster: Cluster, namespace: str, name: str, replica: str) -> ReplicaSums:
    """This replica's sums as status holds them (zero for a replica new to the policy)."""
    obj = await cluster.call(
        cluster.custom.get_namespaced_custom_object_status,
        API_GROUP, API_VERSION, namespace, PLURAL, name,
    )  # fmt: skip
    replicas = (((obj or {}).get("status") or {}).get("ledger") or {}).get("replicas") or {}
    return ReplicaSums.from_status(replicas.get(replica))
