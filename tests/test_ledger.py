"""The statistics ledger's arithmetic: exact sums however reports are resent, split over
replicas, restarted or cut at a budget period's end (docs/operator.md#statistics)."""

from __future__ import annotations

import asyncio
import datetime
import json
import random
from typing import Any

import aiohttp
import pytest
from llmcache.operator.delivery import create_delivery_app, parse_report
from llmcache.operator.ledger import (
    ReplicaSums,
    parse_counters,
    period_spend,
    period_start,
    totals,
    usd,
)
from llmcache.operator.metrics import OperatorMetrics
from llmcache.operator.status import budget_status
from llmcache.operator.store import PolicyRecord, PolicyStore, StatsStore
from llmcache.sidecar.reporter import Reporter

from llmcache.policy import Budget, CachePolicySpec
from tests.conftest import SidecarFactory
from tests.support import Proc, serve_app

KEY = ("apps", "p")
ZERO = parse_counters({})
NOON = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def counters(**values: int) -> dict[str, int]:
    return parse_counters(values)


def commit(stats: StatsStore, written: ReplicaSums) -> ReplicaSums:
    """What the publisher does after a successful write."""
    batch = stats.take()[KEY]
    written = written.merge(batch.sums)
    stats.committed(*KEY, batch, written)
    return written


@pytest.mark.parametrize(
    "bad", [{"hits": -1}, {"hits": 1.0}, {"hits": True}, {"hits": "3"}, {"hits": 2**63}, []]
)
def test_a_counter_that_is_not_a_non_negative_integer_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"hits|object"):
        parse_counters(bad)


async def test_a_report_resent_after_a_lost_answer_is_counted_once() -> None:
    stats, written = StatsStore(), ReplicaSums()
    stats.record(*KEY, "pod-a", "i1", ZERO, counters(requests=10, hits=4))
    written = commit(stats, written)  # written, but the sidecar never saw the 204
    stats.record(*KEY, "pod-a", "i1", ZERO, counters(requests=12, hits=4))  # same `from`
    written = commit(stats, written)
    assert (written.counters["requests"], written.counters["hits"]) == (12, 4)


async def test_a_failed_write_counts_nothing_and_the_resend_counts_it_all() -> None:
    stats, written = StatsStore(), ReplicaSums()
    waiter = stats.record(*KEY, "pod-a", "i1", ZERO, counters(requests=5))
    stats.failed(stats.take()[KEY])
    assert waiter.result() is False
    waiter = stats.record(*KEY, "pod-a", "i1", ZERO, counters(requests=7))
    written = commit(stats, written)
    assert waiter.result() is True and written.counters["requests"] == 7


async def test_a_restarted_pod_counts_from_zero_under_a_new_instance() -> None:
    stats, written = StatsStore(), ReplicaSums()
    stats.record(*KEY, "pod-a", "before", ZERO, counters(requests=100, spentMicroUsd=5))
    written = commit(stats, written)
    stats.record(*KEY, "pod-a", "after", ZERO, counters(requests=3, spentMicroUsd=1))
    written = commit(stats, written)
    assert written.counters["requests"] == 103 and written.counters["spentMicroUsd"] == 6
    assert stats.pods(*KEY) == 1  # one pod, whatever its processes


async def test_a_cumulative_only_report_counts_from_the_first_one_heard() -> None:
    stats, written = StatsStore(), ReplicaSums()
    stats.record(*KEY, "old", "pod:old", None, counters(requests=50))
    stats.record(*KEY, "old", "pod:old", None, counters(requests=60))
    written = commit(stats, written)
    assert written.counters["requests"] == 10  # its past before this replica is unknown


async def test_many_reports_over_two_replicas_sum_exactly_to_what_was_sent() -> None:
    rng = random.Random(7)
    replicas = {"r0": (StatsStore(), ReplicaSums()), "r1": (StatsStore(), ReplicaSums())}
    sent = counters()
    reporters = [Reporter(f"pod-{i}") for i in range(50)]
    now = {r.instance: counters() for r in reporters}
    for _ in range(20):
        for reporter in reporters:
            cum = now[reporter.instance]
            inc = {"requests": rng.randrange(5), "spentMicroUsd": rng.randrange(10**6)}
            for name, n in inc.items():
                cum[name] += n
                sent[name] += n
            report = reporter.report(dict(cum))
            name = rng.choice(list(replicas))  # the Service picks a replica per connection
            stats, _ = replicas[name]
            stats.record(*KEY, *parse_report(json.loads(json.dumps(report))))
            reporter.acknowledged(report)
        for name, (stats, written) in replicas.items():
            if KEY in (batches := stats.take()):
                merged = written.merge(batches[KEY].sums)
                stats.committed(*KEY, batches[KEY], merged)
                replicas[name] = (stats, merged)
    status = {name: w.to_status(0, "2026-11-30T12:00:00Z") for name, (_, w) in replicas.items()}
    total = totals(status, NOON, live_seconds=45)
    assert total["requests"] == sent["requests"]
    assert total["spentUsd"] == usd(sent["spentMicroUsd"])
    assert sum(w.counters["spentMicroUsd"] for _, w in replicas.values()) == sent["spentMicroUsd"]


def test_spend_is_kept_per_period_and_a_new_period_starts_from_zero() -> None:
    sums = ReplicaSums()
    before = datetime.datetime(2026, 11, 30, 23, 59, tzinfo=datetime.UTC)
    sums.add(counters(spentMicroUsd=700), before)
    sums.add(counters(spentMicroUsd=300), before + datetime.timedelta(minutes=2))
    assert sums.periods["day"] == ("2026-12-01", {"spentMicroUsd": 300, "savedMicroUsd": 0})
    assert sums.periods["month"][0] == "2026-12"
    assert sums.counters["spentMicroUsd"] == 1000  # the totals keep everything
    # read back after a restart: the same sums
    again = ReplicaSums.from_status(sums.to_status(3, "2026-12-01T00:01:00Z"))
    assert again == sums
    assert period_start("month", before) == "2026-11-01T00:00:00Z"


def test_totals_keep_a_gone_replicas_sums_but_not_its_pods() -> None:
    live = {**counters(requests=10, hits=5), "pods": 4, "at": "2026-11-30T11:59:50Z"}
    gone = {**counters(requests=30, hits=5), "pods": 9, "at": "2026-11-30T10:00:00Z"}
    total = totals({"r0": live, "r1": gone}, NOON, live_seconds=45)
    assert (total["requests"], total["hits"], total["hitRate"]) == (40, 10, 0.25)
    assert total["injectedPods"] == 4


def test_budget_status_crosses_thresholds_and_shows_the_overshoot() -> None:
    budget = Budget.model_validate({"amountUsd": 10.0, "period": "day"})

    def status(spent_micro: int) -> dict[str, Any]:
        sums = ReplicaSums()
        sums.add(counters(spentMicroUsd=spent_micro, savedMicroUsd=1), NOON)
        return budget_status(budget, {"r0": sums.to_status(1, "x")}, NOON)

    assert status(7_999_999)["threshold"] == 0.0
    eighty = status(8_000_000)
    assert (eighty["threshold"], eighty["exhausted"], eighty["remainingUsd"]) == (0.8, False, 2.0)
    over = status(10_250_000)
    assert over["exhausted"] and over["threshold"] == 1.0 and over["remainingUsd"] == -0.25
    assert over["periodStart"] == "2026-11-30T00:00:00Z" and over["savedUsd"] == 0.000001
    # yesterday's spend does not count today
    tomorrow = NOON + datetime.timedelta(days=1)
    sums = ReplicaSums()
    sums.add(counters(spentMicroUsd=10**9), NOON)
    assert period_spend({"r0": sums.to_status(1, "x")}, "day", tomorrow)["spentMicroUsd"] == 0


async def test_a_stopping_sidecar_hands_over_its_last_counts(
    sidecar: SidecarFactory, upstream: Proc
) -> None:
    """A real sidecar reporting to the operator's real delivery app: what it counted after
    its last regular report still reaches the ledger when it is stopped (SIGTERM), so a pod
    restart loses nothing."""
    store, stats = PolicyStore(), StatsStore()
    await store.put(PolicyRecord("apps", "p", 1, CachePolicySpec()))
    runner, url = await serve_app(create_delivery_app(store, stats, OperatorMetrics()))
    written = ReplicaSums()

    async def publisher() -> None:  # what publish.py does after each successful write
        nonlocal written
        while True:
            if (batch := stats.take().get(KEY)) is not None:
                written = written.merge(batch.sums)
                stats.committed(*KEY, batch, written)
            await asyncio.sleep(0.05)

    writing = asyncio.create_task(publisher())
    try:
        proc = sidecar("--stats-url", f"{url}/v1/stats/apps/p", "--stats-interval", "3600",
                       env={"LLMCACHE_POD_NAME": "app-1"})  # fmt: skip
        body = {"model": "claude-haiku-4-5", "max_tokens": 400,
                "messages": [{"role": "user", "content": "Name a colour."}]}  # fmt: skip
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.post(f"{proc.url}/anthropic/v1/messages", json=body,
                                        headers=headers) as resp:  # fmt: skip
                    assert resp.status == 200
        assert written.counters["requests"] == 0  # the next regular report is an hour away
        assert await asyncio.to_thread(proc.stop) in (0, -15)
        assert (written.counters["requests"], written.counters["hits"]) == (3, 2)
        assert written.counters["spentMicroUsd"] > 0
    finally:
        writing.cancel()
        await runner.cleanup()
