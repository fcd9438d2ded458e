"""Where a policy's entries live in Redis, shared by the sidecar (which writes them) and the
operator (which flushes them).

Everything of one policy sits under one prefix ``P = <keyPrefix>:<namespace>:<policy>``:
entries ``P:e:<sha256>``, tag and model index sets ``P:t:<tag>`` and ``P:m:<model>``,
semantic and RAG data under ``P:s:`` and ``P:r:``, and the invalidation channel ``P:inval``
on which every flush is announced so each sidecar drops the same entries from its L1.
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

    Returns how many entries were removed from Redis. ``client`` is a ``redis.asyncio.Redis``.
    An empty selector removes every key under the prefix (entries, indexes, semantic and RAG
    data alike).
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
        if keys:
            removed = int(await client.unlink(*keys))
    await client.publish(channel(prefix), selector_json(tags_any, tags_all, model))
    return removed


async def _selected_entries(
    client: Any,
    prefix: str,
    tags_any: tuple[str, ...],
    tags_all: tuple[str, ...],
    model: str | None,
) -> list[bytes]:
    sets: list[set[bytes]] = []
    if tags_any:
        sets.append(set(await client.sunion(*[tag_key(prefix, t) for t in tags_any])))
    if tags_all:
        sets.append(set(await client.sinter(*[tag_key(prefix, t) for t in tags_all])))
    if model:
        sets.append(set(await client.smembers(model_key(prefix, model))))
    return sorted(set.intersection(*sets)) if sets else []


async def _scan_batches(client: Any, pattern: str) -> Any:
    cursor = 0
    while True:
        cursor, keys = await client.scan(cursor=cursor, match=pattern, count=SCAN_BATCH)
        if keys:
            yield keys
        if cursor == 0:
            return
