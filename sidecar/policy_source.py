"""Where live policy updates come from, and where statistics go.

A policy file is re-read when it changes (a mounted ConfigMap, or a file edited by hand);
the operator's delivery endpoint is long-polled (``?wait=``, ``If-None-Match``), so a change
reaches the sidecar within a round trip and an idle sidecar costs one open request; so does
an exhausted budget (``budgetExhausted``). An invalid update is counted and ignored: the
sidecar keeps serving with the policy it has. Statistics go out from ``reporter.py``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
from pydantic import ValidationError

from llmcache.policy import CachePolicySpec, describe_error, load_spec, parse_spec

from .runtime import Runtime

log = logging.getLogger(__name__)

FILE_POLL_SECONDS = 1.0
LONG_POLL_SECONDS = 30
RETRY_MIN, RETRY_MAX = 0.5, 10.0


async def watch_file(rt: Runtime, path: str, loaded: float | None = None) -> None:
    """Re-read ``path`` whenever its modification time differs from that of the version in
    force (``loaded``: taken before the process read it first)."""
    last = loaded if loaded is not None else file_version(path)
    while True:
        await asyncio.sleep(FILE_POLL_SECONDS)
        current = file_version(path)
        if current == last:
            continue
        last = current
        try:
            spec = load_spec(path)
        except (OSError, ValueError) as exc:
            rt.metrics.policy_reloads.labels("invalid").inc()
            reason = describe_error(exc) if isinstance(exc, ValidationError) else str(exc)
            log.error("policy file %s rejected, keeping the current policy: %s", path, reason)
            continue
        await _apply(rt, spec, rt.generation, rt.delivered_redis_url)


async def watch_url(rt: Runtime, url: str) -> None:
    async with aiohttp.ClientSession() as session:
        await _watch_url(rt, url, session)


async def _watch_url(rt: Runtime, url: str, session: aiohttp.ClientSession) -> None:
    etag: str | None = None
    pause = RETRY_MIN
    timeout = aiohttp.ClientTimeout(total=LONG_POLL_SECONDS + 15)
    while True:
        headers = {"If-None-Match": etag} if etag else {}
        token_file = rt.settings.policy_token_file
        try:
            if token_file:  # re-read every time: the kubelet renews it
                headers["Authorization"] = f"Bearer {read_token(token_file)}"
            async with session.get(
                url, params={"wait": str(LONG_POLL_SECONDS)}, headers=headers, timeout=timeout
            ) as resp:
                if resp.status == 304:
                    pause = RETRY_MIN
                    continue
                if resp.status >= 400:
                    reason = (await resp.text()).strip()[:200]  # e.g. why a token is refused
                    raise aiohttp.ClientResponseError(
                        resp.request_info, (), status=resp.status, message=reason
                    )
                doc = await resp.json()
                tag = resp.headers.get("ETag")
            spec = parse_spec(doc["spec"])
            generation = int(doc.get("generation", 0))
            redis_url = doc.get("redisUrl")
            exhausted = doc.get("budgetExhausted") is True
            if redis_url is not None and not isinstance(redis_url, str):
                raise TypeError("redisUrl must be a string")
        except (
            aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError
        ) as exc:  # fmt: skip
            reason = str(exc)
            if isinstance(exc, ValidationError):
                rt.metrics.policy_reloads.labels("invalid").inc()
                reason = describe_error(exc)
            log.warning("policy source %s: %s; retrying in %.1fs", url, reason, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)
            continue
        pause = RETRY_MIN
        etag = tag or f'"{generation}"'
        if exhausted != rt.budget_exhausted:
            log.warning("policy budget %s", "spent: cacheOnly" if exhausted else "available again")
            rt.budget_exhausted = exhausted
        await _apply(rt, spec, generation, redis_url)


async def _apply(
    rt: Runtime, spec: CachePolicySpec, generation: int, redis_url: str | None
) -> None:
    """``redis_url``: the policy's own Redis user, when the operator delivers one."""
    if spec == rt.policy and generation == rt.generation and redis_url == rt.delivered_redis_url:
        rt.metrics.policy_reloads.labels("unchanged").inc()
        return
    rt.delivered_redis_url = redis_url
    await rt.apply(spec, generation)
    rt.metrics.policy_reloads.labels("applied").inc()
    log.info("policy generation %d applied", generation)


def file_version(path: str) -> float | None:
    try:
        return Path(path).stat().st_mtime_ns / 1e9
    except OSError:
        return None


def read_token(path: str) -> str:
    """The projected ServiceAccount token (a small file on tmpfs)."""
    return Path(path).read_text().strip()
