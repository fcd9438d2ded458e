"""Statistics to the operator, as an exact ledger: each report says what the sidecar had
counted at its last acknowledged report (``from``) and what it has counted now (``to``).

The operator adds ``to - from`` (less what it already has of this process, so a report sent
again after a lost answer is not counted twice there) and answers only once the report is
written into the policy's status; until then ``from`` stays, so nothing is lost to a failed
write or an unreachable operator. ``instance`` names this process: a restarted pod starts
from zero under a new one. Money goes as integer micro-USD so the sums are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from typing import Any

import aiohttp

from .runtime import Runtime

log = logging.getLogger(__name__)

FINAL_REPORT_SECONDS = 2.0

Counters = dict[str, int]


def snapshot(rt: Runtime) -> Counters:
    """This process's cumulative counters (the operator's ledger names)."""
    s = rt.stats
    return {
        "requests": s.requests,
        "hits": s.hits,
        "savedMicroUsd": round(s.saved_usd * 1e6),
        "spentMicroUsd": round(s.spent_usd * 1e6),
        "tokensSaved": s.tokens_saved,
        "redisFaults": int(rt.stats_json()["redisFaults"]),
    }


class Reporter:
    def __init__(self, pod: str, instance: str | None = None) -> None:
        self.pod = pod
        self.instance = instance or uuid.uuid4().hex
        self.acked: Counters | None = None

    def report(self, now: Counters) -> dict[str, Any]:
        return {"pod": self.pod, "instance": self.instance, "from": self.acked, "to": now}

    def acknowledged(self, report: dict[str, Any]) -> None:
        self.acked = report["to"]


async def push_stats(rt: Runtime, url: str, interval: float) -> None:
    async with aiohttp.ClientSession() as session:
        await _push_stats(rt, url, session, interval)


async def _push_stats(
    rt: Runtime, url: str, session: aiohttp.ClientSession, interval: float
) -> None:
    reporter = Reporter(rt.settings.pod_name or os.uname().nodename)
    # The operator answers once its next write holds the report: up to one of its intervals.
    limit = aiohttp.ClientTimeout(total=2 * interval + 10)
    try:
        while True:
            await send(session, url, reporter, snapshot(rt), limit)
            await asyncio.sleep(interval)
    except asyncio.CancelledError:
        # Shutting down: hand over the last counts; the operator writes them without us.
        with contextlib.suppress(Exception):
            final = aiohttp.ClientTimeout(total=FINAL_REPORT_SECONDS)
            await asyncio.shield(send(session, url, reporter, snapshot(rt), final))
        raise


async def send(
    session: aiohttp.ClientSession,
    url: str,
    reporter: Reporter,
    counters: Counters,
    limit: aiohttp.ClientTimeout,
) -> bool:
    report = reporter.report(counters)
    try:
        async with session.post(url, json=report, timeout=limit) as resp:
            if resp.status == 204:
                reporter.acknowledged(report)
                return True
            log.debug("stats report to %s answered %s", url, resp.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.debug("stats report to %s failed: %s", url, exc)
    return False
