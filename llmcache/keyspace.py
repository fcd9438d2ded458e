"""Where a policy's entries live in Redis, shared by the sidecar (which writes them) and the
operator (which flushes them).

Everything of one policy sits under one prefix ``P = <keyPrefix>:<namespace>:<policy>``:
entries ``P:e:<sha256>``, tag and model index sets ``P:t:<tag>`` and ``P:m:<model>``,
semantic and RAG data under ``P:s:`` and ``P:r:``, the leases of calls in flight
``P:lease:{P:e:<sha256>}``, and the invalidation channel ``P:inval`` on which every flush is
announced so each sidecar drops the same entries from its L1.

Only a lease carries a hash tag (its entry's key, so the two share a slot): otherwise, on a
Redis Cluster the keys of a policy spread over every slot, and nothing needs two keys in one
slot. Lookups are MGETs split per slot, writes are
single-key commands in a pipeline, a flush reads each index set on its own (SMEMBERS, the
union or intersection taken here) and unlinks per slot, and a full flush scans every
primary. The channel is classic pub/sub, which a cluster delivers to every node's
subscribers (docs/deploy.md, "Redis topologies").
"""

from __future__ import annotations

import json
from typing import Any

INDEX_TTL = 32 * 86_400  # index sets outlive the longest entry TTL (31 days)
STANDALONE_NAMESPACE = "_"
STANDALONE_POLICY = "default"
SCAN_BATCH = 500


def policy_prefix(key_prefix: str, namespace: str | None, policy: str | None) -> str:
    return f"{key_prefix}:{namespace or STANDALONE_NAMESPACE}:{policy or STANDALONE_POLICY}"


def entry_key(prefix: str, digest: str) -> str:
    return f"{prefix}:e:{digest}"


def tag_key(prefix: str, tag: str) -> str:
    return f"{prefix}:t:{tag}"


def model_key(prefix: str, model: str) -> str:
    return f"{prefix}:m:{model}"


def channel(prefix: str) -> str:
    return f"{prefix}:inval"


def lease_key(prefix: str, digest: str) -> str:
    """Held by the pod calling upstream for ``digest`` (``sidecar/peers.py``). Its hash tag
    is the entry's key, so on a cluster both live in one slot and the pipeline that writes
    the entry and then deletes the lease reaches one node, in that order."""
    return f"{prefix}:lease:{{{entry_key(prefix, digest)}}}"


def selector_json(
    tags_any: list[str] | tuple[str, ...] = (),
    tags_all: list[str] | tuple[str, ...] = (),
    model: str | None = None,
) -> str:
    return json.dumps({"tagsAny": list(tags_any), "tagsAll": list(tags_all), "model": model})


async def flush(
    client: Any,
    prefix: str,
    tags_any: list[str] | tuple[str, ...] = (),
    tags_all: list[str] | tuple[str, ...] = (),
    model: str | None = None,
) -> int:
    """Remove the policy's matching entries from Redis and announce the flush.

    Returns how many entries were removed from Redis. ``client`` is a ``redis.asyncio.Redis``
    or ``RedisCluster`` (``llmcache/redis_client.py``). An empty selector removes every key
    under the prefix (entries, indexes, semantic and RAG data alike).
    """
    if not (tags_any or tags_all or model):
        removed = 0
        async for batch in _scan_batches(client, f"{prefix}:*"):
            entries = sum(1 for k in batch if k.startswith(f"{prefix}:e:".encode()))
            await client.unlink(*batch)
            removed += entries
    else:
        keys = await _selected_entries(client, prefix, tuple(tags_any), tuple(tags_all), model)
        removed = 0
        for i in range(0, len(keys), SCAN_BATCH):
            removed += int(await client.unlink(*keys[i : i + SCAN_BATCH]))
    await client.publish(channel(prefix), selector_json(tags_any, tags_all, model))
    return removed


async def _selected_entries(
    client: Any,
    prefix: str,
    tags_any: tuple[str, ...],
    tags_all: tuple[str, ...],
    model: str | None,
) -> list[bytes]:
    """Set algebra here, not SUNION/SINTER in Redis: on a cluster the index sets live in
    different slots, and a flush is rare enough to read each set once."""
    sets: list[set[bytes]] = []
    if tags_any:
        sets.append(set().union(*[await _members(client, tag_key(prefix, t)) for t in tags_any]))
    if tags_all:
        members = [await _members(client, tag_key(prefix, t)) for t in tags_all]
        sets.append(set.intersection(*members))
    if model:
        sets.append(await _members(client, model_key(prefix, model)))
    return sorted(set.intersection(*sets)) if sets else []


async def _members(client: Any, key: str) -> set[bytes]:
    return set(await client.smembers(key))


async def _scan_batches(client: Any, pattern: str) -> Any:
    """Keys matching ``pattern`` in batches; on a cluster, of every primary."""
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=SCAN_BATCH):
        batch.append(key)
        if len(batch) >= SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
