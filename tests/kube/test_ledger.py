"""The statistics ledger and budgets with the operator against the real API server: totals
exact across two replicas, a pod restart and a replica restart; a status that does not grow
with the pods; budget thresholds as a Condition, Events and a metric; ``cacheOnly`` stopping
a real sidecar's upstream calls (the overshoot measured); the printer column as kubectl
shows it (docs/operator.md#statistics, #budgets)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kube.kubeutil import ControlPlane, KubeClient, wait_for
from tests.kube.operator_env import (
    ANNOTATIONS,
    REPO,
    OperatorEnv,
    condition,
    delete_and_wait,
    injected_container,
    pod,
    policy,
    ready_at,
    run_sidecar_from,
    running_operator,
    standby_replica,
    wait_webhook_live,
)
from tests.support import Proc, llmcache

NS = "ledger-tests"
REPLICAS = ("llmcache-operator-0", "llmcache-operator-1")
Counts = dict[str, int]


@pytest.fixture(scope="module")
def op(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorEnv]:
    # The chart's default install: replicas under kopf peering (this process is pod index 0).
    with running_operator(
        controlplane, tmp_path_factory.mktemp("operator"), ["--stats-interval=1"], values=None
    ) as env:
        env.kube.ensure_namespace(NS)
        yield env
        for item in env.kube.list("llmcache.dev/v1alpha1", "CachePolicy", NS):
            delete_and_wait(env, NS, item["metadata"]["name"])


def report(base: str, name: str, pod_name: str, instance: str, since: Counts | None,
           to: Counts) -> int:  # fmt: skip
    """One sidecar report (what ``sidecar/reporter.py`` sends); the answer's status."""
    doc = {"pod": pod_name, "instance": instance, "from": since, "to": to}
    req = urllib.request.Request(
        f"{base}/v1/stats/{NS}/{name}", data=json.dumps(doc).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def knows(base: str, name: str) -> bool:
    """The replica at ``base`` has the policy in its store (its watch has listed)."""
    try:
        with urllib.request.urlopen(f"{base}/v1/policies/{NS}/{name}", timeout=10):
            return True
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise


def status_of(op: OperatorEnv, name: str) -> dict[str, Any]:
    return dict((op.policy(NS, name) or {}).get("status") or {})


def created(op: OperatorEnv, name: str, spec: dict[str, Any] | None = None) -> None:
    op.kube.apply(policy(NS, name, spec or {}))
    wait_for(lambda: ready_at(op, NS, name, 1), timeout=30, what=f"policy {name} Ready")
    wait_for(lambda: knows(op.delivery_url, name), timeout=30, what=f"{name} in the store")


def test_totals_are_exact_across_two_replicas_a_pod_restart_and_a_replica_restart(
    op: OperatorEnv, tmp_path: Path
) -> None:
    created(op, "exact")
    active = op.delivery_url
    a1 = {"requests": 10, "hits": 4, "spentMicroUsd": 1_234_567, "savedMicroUsd": 7}
    b1 = {"requests": 20, "hits": 8, "spentMicroUsd": 3}
    with standby_replica(op, tmp_path) as standby:
        wait_for(lambda: knows(standby.urls[0], "exact"), what="the standby knows the policy")
        assert report(active, "exact", "app-a", "a-1", None, a1) == 204
        assert report(standby.urls[0], "exact", "app-b", "b-1", None, b1) == 204
        # app-a restarts: a new process, its counters from zero
        a2 = {"requests": 3, "hits": 3, "spentMicroUsd": 100}
        assert report(active, "exact", "app-a", "a-2", None, a2) == 204
    # The standby replica restarts (same StatefulSet name): it reads its sums back.
    with standby_replica(op, tmp_path) as standby:
        wait_for(lambda: knows(standby.urls[0], "exact"), what="the standby knows the policy")
        b2 = {"requests": 26, "hits": 9, "spentMicroUsd": 5}
        assert report(standby.urls[0], "exact", "app-b", "b-1", b1, b2) == 204

        def exact() -> dict[str, Any] | None:
            status = status_of(op, "exact")
            return status if status.get("requests") == 10 + 3 + 26 else None

        status = wait_for(exact, timeout=30, what="totals over both replicas")
    assert status["hits"] == 4 + 3 + 9
    assert status["spentUsd"] == 1.234672  # 1_234_567 + 100 + 5 micro-USD, exactly
    assert status["savedUsd"] == 0.000007
    replicas = status["ledger"]["replicas"]
    assert set(replicas) == set(REPLICAS)
    assert replicas[REPLICAS[1]]["requests"] == 26  # 20 read back + 6 new, never 20 + 26


async def test_the_status_does_not_grow_with_the_pods(op: OperatorEnv) -> None:
    created(op, "fleet")

    async def fleet(pods: int, requests: int) -> int:
        """``pods`` sidecars report at once; the status size in bytes once counted."""
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> int:
                doc = {"pod": f"app-{i}", "instance": f"{pods}-{i}", "from": None,
                       "to": {"requests": requests, "hits": 1}}  # fmt: skip
                url = f"{op.delivery_url}/v1/stats/{NS}/fleet"
                async with session.post(url, json=doc) as resp:
                    return resp.status

            assert set(await asyncio.gather(*(one(i) for i in range(pods)))) == {204}

        total = (10 if pods > 10 else 0) + pods * requests

        def counted() -> int | None:
            status = status_of(op, "fleet")
            return len(json.dumps(status)) if status.get("requests") == total else None

        return await asyncio.to_thread(wait_for, counted, 30, 0.1, f"{pods} pods counted")

    small = await fleet(10, 1)
    large = await fleet(1000, 1)
    status = status_of(op, "fleet")
    assert status["requests"] == 10 + 1000
    assert "sidecars" not in status and len(status["ledger"]["replicas"]) == 1
    assert large - small < 32, (small, large)  # a few more digits, never a byte per pod


def events(op: OperatorEnv, name: str, reason: str) -> list[str]:
    return [
        e["message"]
        for e in op.kube.list("v1", "Event", NS)
        if e["involvedObject"]["name"] == name and e.get("reason") == reason
    ]


def budget_metric(op: OperatorEnv, name: str) -> float | None:
    with urllib.request.urlopen(f"{op.metrics_url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if found := re.match(r"^llmcache_budget_remaining_usd\{(.*)\} (\S+)$", line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
            if labels == {"policy_namespace": NS, "policy": name}:
                return float(found.group(2))
    return None


def test_budget_thresholds_raise_events_the_condition_and_the_metric(op: OperatorEnv) -> None:
    created(op, "spend", {"budget": {"amountUsd": 1.0, "period": "day",
                                     "thresholds": [0.5, 1.0]}})  # fmt: skip
    assert report(op.delivery_url, "spend", "app", "i", None, {"spentMicroUsd": 600_000}) == 204

    def budget(remaining: float) -> dict[str, Any] | None:
        doc = status_of(op, "spend").get("budget") or {}
        return doc if doc.get("remainingUsd") == remaining else None

    doc = wait_for(lambda: budget(0.4), timeout=30, what="60% of the budget in status")
    assert doc["threshold"] == 0.5 and doc["exhausted"] is False and doc["spentUsd"] == 0.6
    assert doc["periodStart"].endswith("T00:00:00Z")
    half = wait_for(lambda: events(op, "spend", "BudgetThreshold"), what="the 50% Event")
    assert "spent $0.60 of $1.00 (60%) this day" in half[0] and "crossed 50%" in half[0]
    cond = condition(op.policy(NS, "spend"), "BudgetExceeded") or {}
    assert (cond.get("status"), cond.get("reason")) == ("False", "ThresholdReached")
    assert budget_metric(op, "spend") == 0.4

    since = {"spentMicroUsd": 600_000}
    assert report(op.delivery_url, "spend", "app", "i", since, {"spentMicroUsd": 1_100_000}) == 204
    doc = wait_for(lambda: budget(-0.1), timeout=30, what="the budget overshot in status")
    assert doc["exhausted"] is True and doc["threshold"] == 1.0
    cond = condition(op.policy(NS, "spend"), "BudgetExceeded") or {}
    assert (cond.get("status"), cond.get("reason")) == ("True", "Exhausted")
    wait_for(lambda: len(events(op, "spend", "BudgetThreshold")) == 2, what="the 100% Event")
    assert any("crossed 100%" in m for m in events(op, "spend", "BudgetThreshold"))
    wait_for(lambda: budget_metric(op, "spend") == -0.1, what="the metric")
    # the exhausted state is delivered to sidecars (they act on it under cacheOnly only)
    wait_for(lambda: (op.delivered(NS, "spend") or {}).get("budgetExhausted"), what="delivery")


@pytest.fixture
def upstream() -> Iterator[Proc]:
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    yield sim
    sim.stop()


def ask(url: str, question: str) -> tuple[int, str, dict[str, Any]]:
    """One Anthropic Messages call through the sidecar: status, verdict, body."""
    body = {"model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": question}]}  # fmt: skip
    request = urllib.request.Request(
        f"{url}/anthropic/v1/messages", data=json.dumps(body).encode(), method="POST",
        headers={"x-api-key": "test-key", "anthropic-version": "2023-06-01",
                 "content-type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, str(resp.headers["x-llmcache"]), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, str(err.headers["x-llmcache"]), json.loads(err.read())


def test_cache_only_stops_a_real_sidecars_misses_and_keeps_its_hits(
    op: OperatorEnv, upstream: Proc
) -> None:
    """Spend reaches the operator through the sidecar's own reports (every 0.5 s here), the
    active replica finds the budget spent (every 1 s), the long poll tells the sidecar: the
    calls made meanwhile are the overshoot, measured here."""
    amount = 0.05
    # A price that makes each call cost about a cent (the simulator's token counts).
    spec = {
        "upstreams": {"anthropic": upstream.url},
        "prices": {"claude-haiku-4-5": {"input": 100.0, "output": 100.0}},
        "budget": {"amountUsd": amount, "period": "day", "onExhausted": "cacheOnly"},
    }
    created(op, "capped", spec)
    wait_for(lambda: op.delivered(NS, "capped"), timeout=30, what="policy capped delivered")
    wait_webhook_live(op, NS, "capped")
    made = op.kube.create(pod(NS, "app-capped", {**ANNOTATIONS, "llmcache.dev/policy": "capped"}))
    container = injected_container(made)
    assert container is not None
    sidecar = run_sidecar_from(op, container, NS, "app-capped", LLMCACHE_STATS_INTERVAL="0.5")
    try:
        status, verdict, _ = ask(sidecar.url, "question 0")
        assert (status, verdict) == (200, "miss")
        calls, refused, started = 1, None, time.monotonic()
        for i in range(1, 2000):
            status, verdict, body = ask(sidecar.url, f"question {i}")
            if status == 429:
                refused = body
                break
            assert (status, verdict) == (200, "miss")
            calls += 1
        elapsed = time.monotonic() - started
        assert refused is not None, "the budget never stopped the misses"
        assert refused["error"]["type"] == "rate_limit_error"
        assert "budget of 0.05 USD per day (UTC) is spent" in refused["error"]["message"]
        # a hit is still served
        status, verdict, _ = ask(sidecar.url, "question 0")
        assert (status, verdict) == (200, "hit")

        def final() -> dict[str, Any] | None:
            doc = status_of(op, "capped")
            return doc if doc.get("requests") == calls + 2 else None  # all reported

        doc = wait_for(final, timeout=30, what="every call in the ledger")
        spent = doc["budget"]["spentUsd"]
        per_call = spent / calls
        overshoot = spent - amount
        print(f"\nbudget overshoot: {calls} calls in {elapsed:.1f} s ({calls / elapsed:.0f}/s), "
              f"{spent:.6f} USD spent of {amount} USD: {overshoot:.6f} USD over "
              f"({overshoot / per_call:.1f} calls of {per_call:.6f} USD, "
            f"{overshoot / (spent / elapsed):.2f} s of spend); sidecar stats "
              "interval 0.5 s, operator 1 s")  # fmt: skip
        assert doc["budget"]["exhausted"] is True and spent >= amount
        assert doc["spentUsd"] == spent  # one period so far: the totals are its spend
    finally:
        sidecar.stop()


def table(kube: KubeClient, path: str) -> dict[str, Any]:
    """The API server's Table rendering (what kubectl prints with the printer columns)."""
    request = urllib.request.Request(
        kube.server + path,
        headers={**kube.headers, "Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"},
    )
    with urllib.request.urlopen(request, context=kube.ssl, timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def test_kubectl_get_cpol_shows_the_budget_left(op: OperatorEnv) -> None:
    wait_for(lambda: (status_of(op, "spend").get("budget") or {}).get("remainingUsd") == -0.1,
             timeout=30, what="the spend policy's budget")  # fmt: skip
    doc = table(op.kube, f"/apis/llmcache.dev/v1alpha1/namespaces/{NS}/cachepolicies")
    names = [c["name"].upper() for c in doc["columnDefinitions"]]
    assert "BUDGET-LEFT-USD" in names
    rows = [[str(cell) for cell in row["cells"]] for row in doc["rows"]]
    widths = [max(len(x) for x in col) for col in zip(names, *rows, strict=True)]
    lines = ["   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in [names, *rows]]  # fmt: skip
    print(f"\n$ kubectl get cpol -n {NS}\n" + "\n".join(lines))
    spend = next(r for r in rows if r[0] == "spend")
    assert spend[names.index("BUDGET-LEFT-USD")] == "-0.1"


def test_the_fleet_stats_bench_runs_small_and_its_totals_are_exact(tmp_path: Path) -> None:
    """``llmcache bench fleet-stats`` end to end at a tiny size (its own control plane and
    two operators); no timing assertion."""
    out = tmp_path / "fleet.json"
    bench = subprocess.run(
        [sys.executable, "-m", "llmcache", "bench", "fleet-stats", "--sidecars", "50",
         "--report-interval", "2", "--operator-interval", "1", "--duration", "4",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert bench.returncode == 0, (bench.stdout + bench.stderr)[-3000:]
    assert "exact" in bench.stdout
    result = json.loads(out.read_text())
    assert result["exact"] is True and result["reports"]["acknowledged"] >= 50
    assert result["ledger"] == result["expected"]
    assert result["statusBytes"] < 4096 and result["apiWritesPerMinuteTotal"] > 0
