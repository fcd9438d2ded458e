"""The chart's Grafana dashboards and alert rules against a real Prometheus (Debian's
``prometheus``) scraping a real operator (on the real API server, pods injected by its
webhook, policies delivered by its long poll) and the injected sidecars after real
traffic: every dashboard query and variable returns data, every alert rule evaluates
cleanly and stays silent on this healthy install, and the dashboards are drawn from it.

Scrape targets carry the labels the chart's PodMonitor and ServiceMonitor give them.
``LLMCACHE_DASHBOARD_IMAGES=docs/img`` also writes the pictures there (the README's).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from llmcache.bench import dashboards as render

from tests.kube.kubeutil import ControlPlane, wait_for
from tests.kube.operator_env import (
    ANNOTATIONS,
    GROUP_VERSION,
    KIND,
    OperatorEnv,
    chart,
    injected_container,
    pod,
    policy,
    ready_at,
    run_sidecar_from,
    running_operator,
    wait_webhook_live,
)
from tests.promserver import RATE_INTERVAL, SCRAPE_INTERVAL, Prometheus, rendered_rules, target
from tests.support import Proc, RedisServer, free_port, llmcache
from tests.test_chart import NAMESPACE as RELEASE_NAMESPACE

pytestmark = pytest.mark.controlplane

NS = "apps"
IMAGES_ENV = "LLMCACHE_DASHBOARD_IMAGES"
SLOW = {"x-sim-ttft-ms": "600"}  # the simulator answers late: identical requests overlap
REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "charts" / "llmcache" / "dashboards").glob("*.json"))

# Prompts: a miss, then its repeat (L1 hit on the same pod, L2 hit on the other), a
# rewording the semantic layer serves, and one with another number it must refuse.
TOPICS = (
    "How do I rotate the API keys of our staging cluster without downtime, step by step",
    "List 3 ways to cut the token bill of a retrieval augmented chat assistant for tickets",
    "Explain how to convert a string to an integer in Python with error handling for input",
    "Which metrics should a cache for language model calls export to Prometheus and why",
    "Summarise the trade offs of a shared Redis cache against a per pod memory cache today",
    "Draft 2 polite reminders for an unpaid invoice of a small design studio in Lisbon now",
)


@dataclass
class Observed:
    prom: Prometheus
    start: float
    end: float
    pods: dict[str, str]
    """pod -> policy"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[Proc]:
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def embedder() -> Iterator[Proc]:
    """The shared embedding service the chart deploys (embedder.enabled), on loopback."""
    proc = llmcache("embedder", "--listen", "127.0.0.1:0")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def op(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorEnv]:
    with running_operator(
        controlplane, tmp_path_factory.mktemp("operator"), ["--stats-interval=1"]
    ) as env:
        env.kube.ensure_namespace(NS)
        yield env


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def policies(upstream: Proc, embedder: Proc, redis_url: str) -> dict[str, dict[str, Any]]:
    """docs: Redis and the semantic layer; trial: the semantic layer in shadow mode;
    offline: an embedder that cannot be reached (the semantic layer fails open)."""
    # A generous embedder deadline: the machine is shared.
    semantic = {
        "enabled": True,
        "threshold": 0.85,
        "embedder": {"url": embedder.url, "timeoutMs": 10_000},
    }
    base = {"upstreams": {"anthropic": upstream.url, "openai": upstream.url}}
    return {
        "docs": {
            **base,
            "redis": {"url": redis_url, "timeoutMs": 2000},  # a loaded machine is slow
            "exact": {"l1MaxEntries": 8},
            "cacheability": {"maxTemperature": 1.0},
            "semantic": semantic,
            "budget": {"amountUsd": 1000.0},  # llmcache_budget_remaining_usd; never burnt
        },
        "trial": {**base, "semantic": {**semantic, "shadow": True}},
        "offline": {
            **base,
            "semantic": {**semantic, "embedder": {"url": f"http://127.0.0.1:{free_port()}/"}},
        },
    }


def start_pods(op: OperatorEnv, upstream: Proc, embedder: Proc, redis_url: str) -> dict[str, Proc]:
    """Policies applied, pods created through the webhook, their sidecars run as a kubelet
    would. trial-a's Redis is a closed port (its faults fail open)."""
    for name, spec in policies(upstream, embedder, redis_url).items():
        op.kube.apply(policy(NS, name, spec))
    for name in ("docs", "trial", "offline"):
        wait_for(lambda n=name: ready_at(op, NS, n, 1), timeout=90, what=f"policy {name} Ready")
    wait_webhook_live(op, NS, "docs")
    layout = {"docs-a": "docs", "docs-b": "docs", "trial-a": "trial", "offline-a": "offline"}
    sidecars = {}
    for pod_name, policy_name in layout.items():
        annotations = {**ANNOTATIONS, "llmcache.dev/policy": policy_name}
        created = op.kube.create(pod(NS, pod_name, annotations))
        container = injected_container(created)
        assert container is not None, pod_name
        overrides = {"LLMCACHE_STATS_INTERVAL": "0.5"}
        if pod_name == "trial-a":
            overrides["LLMCACHE_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
        sidecars[pod_name] = run_sidecar_from(op, container, NS, pod_name, **overrides)
    return sidecars


def clients(proc: Proc) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    return (
        anthropic.Anthropic(
            api_key="sk-ant-dashboards-0123456789", base_url=f"{proc.url}/anthropic", max_retries=0
        ),
        openai.OpenAI(
            api_key="sk-dashboards-0123456789", base_url=f"{proc.url}/openai/v1", max_retries=0
        ),
    )


def ask(client: anthropic.Anthropic, text: str, **extra: Any) -> str:
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=400,  # whole answers: a truncated one is not stored
        messages=[{"role": "user", "content": text}],
        **extra,
    )
    raw.parse()
    return str(raw.headers.get("x-llmcache-layer") or raw.headers.get("x-llmcache"))


def drive(sidecars: dict[str, Proc], rounds: range) -> list[str]:
    """Traffic with every outcome the dashboards chart; returns the verdicts seen."""
    (a, a_openai), (b, _) = clients(sidecars["docs-a"]), clients(sidecars["docs-b"])
    trial, _ = clients(sidecars["trial-a"])
    offline, _ = clients(sidecars["offline-a"])
    seen = []
    with ThreadPoolExecutor(4) as pool:
        for r in rounds:
            topic = TOPICS[r % len(TOPICS)] + f" (round {r})"
            seen.append(ask(a, topic + "?"))  # miss
            seen.append(ask(a, topic + "?"))  # L1
            if r:  # L2: docs-a stored the last round's prompt in Redis
                seen.append(ask(b, TOPICS[(r - 1) % len(TOPICS)] + f" (round {r - 1})?"))
            seen.append(ask(a, topic + "!"))  # semantic: same words
            seen.append(ask(a, topic.replace(" ", " 7 ", 1) + "?"))  # a number: guard veto
            raw = a_openai.chat.completions.with_raw_response.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": topic}],
                temperature=1.5,  # bypass: above the policy's maxTemperature
            )
            raw.parse()
            seen.append(str(raw.headers.get("x-llmcache")))
            seen.append(ask(a, topic, extra_headers={"cache-control": "no-store"}))
            seen.append(ask(trial, topic + "?"))
            seen.append(ask(trial, topic + "!"))  # shadow: would hit
            seen.append(ask(offline, topic))
            chat = a_openai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": topic}]
            )
            assert chat.choices
            if r % 3 == 0:  # identical requests while the first is upstream: coalesced
                same = f"Tell a short story about a lighthouse keeper, part {r}"
                seen += pool.map(lambda text: ask(b, text, extra_headers=SLOW), [same] * 3)
            with a.messages.stream(
                model="claude-sonnet-4-5",
                max_tokens=400,
                messages=[{"role": "user", "content": topic + "?"}],
            ) as stream:
                stream.get_final_message()
    return seen


def flush(op: OperatorEnv) -> None:
    """``kubectl annotate cachepolicy docs llmcache.dev/flush=1``."""
    op.kube.merge_patch(
        GROUP_VERSION, KIND, "docs", {"metadata": {"annotations": {"llmcache.dev/flush": "1"}}}, NS
    )
    wait_for(
        lambda: ((op.policy(NS, "docs") or {}).get("status") or {}).get("lastFlush"),
        timeout=30,
        what="flush done",
    )


@pytest.fixture(scope="module")
def observed(
    op: OperatorEnv,
    upstream: Proc,
    embedder: Proc,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Observed]:
    workdir = tmp_path_factory.mktemp("prometheus")
    service = next(  # the Service the chart's ServiceMonitor scrapes (port "metrics")
        o["metadata"]["name"]
        for o in chart()
        if o["kind"] == "Service" and any(p.get("name") == "metrics" for p in o["spec"]["ports"])
    )
    operator_job = target(
        service,  # the ServiceMonitor's job: the Service's name
        f"{op.metrics_url}/metrics",
        namespace=RELEASE_NAMESPACE,
        service=service,
        pod=f"{service}-0",
        endpoint="metrics",
    )
    # Sidecars are discovered as they start (file_sd standing in for the PodMonitor's
    # pod discovery), so the pods' admissions and first deliveries are on the graphs.
    discovered = workdir / "sidecars.json"
    discovered.write_text("[]")
    sidecars_job = {
        "job_name": f"{RELEASE_NAMESPACE}/llmcache-sidecars",  # the PodMonitor's job
        "scrape_interval": SCRAPE_INTERVAL,
        "file_sd_configs": [{"files": [str(discovered)]}],
    }
    rules = rendered_rules(workdir / "llmcache-rules.yaml")
    prom = Prometheus(workdir, [operator_job, sidecars_job], [rules])
    sidecars: dict[str, Proc] = {}
    try:
        prom.wait_targets_up(1)
        # From a scrape that found the operator up, and a second later (subquery steps are
        # whole seconds): earlier steps may still see the refused scrapes of its start-up,
        # where LLMCacheOperatorDown's expression is rightly true.
        start = prom.wait_scraped() + 1.0
        sidecars.update(start_pods(op, upstream, embedder, redis_server.url))
        pods = {name: name.rsplit("-", 1)[0] for name in sidecars}
        found = [
            {
                "targets": [urllib.parse.urlsplit(proc.urls[1]).netloc],
                "labels": {
                    "namespace": NS,
                    "pod": name,
                    "policy": pods[name],
                    "container": "llmcache",
                    "endpoint": "llmcache-admin",
                },
            }
            for name, proc in sidecars.items()
        ]
        (workdir / "sidecars.tmp").write_text(json.dumps(found))
        (workdir / "sidecars.tmp").rename(discovered)
        prom.wait_targets_up(1 + len(sidecars))
        # Longer traffic when the pictures are for the docs: their graphs need a history.
        rounds = 60 if os.environ.get(IMAGES_ENV) else 6
        seen = drive(sidecars, range(rounds // 2))
        flush(op)  # midway, so the graphs show it
        seen += drive(sidecars, range(rounds // 2, rounds))
        assert {"l1", "semantic", "coalesced", "miss", "bypass"} <= set(seen), seen
        # trial-a's Redis faults reach the operator in its stats: policy trial Degraded.
        wait_for(
            lambda: prom.query('llmcache_operator_policies{condition="Degraded"} > 0'),
            timeout=30,
            what="policy trial Degraded, scraped",
        )
        # The sidecars hear of the flush from Redis, after the operator's status says done.
        wait_for(
            lambda: prom.query('sum(llmcache_invalidated_entries_total{policy="docs"}) > 0'),
            timeout=20,
            what="the docs sidecars' invalidation scraped",
        )
        end = prom.wait_scraped()
        yield Observed(prom, start, end, pods)
    finally:
        prom.stop()
        for proc in sidecars.values():
            proc.stop()


def label_values(prom: Prometheus, query: str, at: float) -> list[str]:
    """Grafana's ``label_values(selector, label)``."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
    assert match, query
    selector, label = match.groups()
    return sorted({s["metric"][label] for s in prom.query(selector, at) if label in s["metric"]})


def variables(board: dict[str, Any], obs: Observed) -> dict[str, str]:
    """Each template variable's value as Grafana substitutes it: the first value of a
    single-value query, "All" of a multi-value one as ``(a|b|...)``."""
    values: dict[str, str] = {}
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = render.substitute(var["query"]["query"], values)
            options = label_values(obs.prom, query, obs.end)
            assert options, f"variable {var['name']}: {query} lists nothing"
        elif var["type"] == "custom":
            options = [o.strip() for o in var["query"].split(",")]
        else:
            continue
        multi = var.get("multi") or var.get("includeAll")
        values[var["name"]] = f"({'|'.join(options)})" if multi else options[0]
    return values


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_data(path: Path, observed: Observed) -> None:
    board = json.loads(path.read_text())
    window = render.Window(observed.start, observed.end, 2.0, RATE_INTERVAL)
    values = {**variables(board, observed), **window.builtins}
    if path.stem == "policy":
        assert values["pod"] == f"({'|'.join(sorted(observed.pods))})"
    empty = []
    for panel in render.panels(board):
        for t in panel.get("targets", []):
            expr = render.substitute(t["expr"], values)
            result = observed.prom.query(expr, observed.end)
            if not result:
                empty.append(f"{panel['title']!r} {t['refId']}: {expr}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_a_policy_that_never_hits_shows_a_hit_rate_of_0_not_no_data(observed: Observed) -> None:
    """Pods that never hit export no result="hit" series: the hit-rate panels count that
    as 0 % instead of dropping the pod (policy trial runs its semantic layer in shadow)."""
    board = json.loads((REPO / "charts/llmcache/dashboards/policy.json").read_text())
    window = render.Window(observed.start, observed.end, 2.0, RATE_INTERVAL)
    values = {"namespace": NS, "policy": "(trial)", "pod": "(trial-a)", **window.builtins}
    checked = 0
    for panel in render.panels(board):
        if panel["title"] in ("Hit rate", "Hit rate by pod"):
            expr = render.substitute(panel["targets"][0]["expr"], values)
            result = observed.prom.query(expr, observed.end)
            assert [float(r["value"][1]) for r in result] == [0.0], (panel["title"], result)
            checked += 1
    assert checked == 2


def test_the_flush_shows_on_the_invalidation_panel(observed: Observed) -> None:
    """The sidecars export their invalidation counters at 0 from the start: a pod's first
    flush is an increase, not a series born at its final value (a rate of 0)."""
    board = json.loads((REPO / "charts/llmcache/dashboards/policy.json").read_text())
    panel = next(p for p in render.panels(board) if p["title"].startswith("Invalidated"))
    window = render.Window(observed.start, observed.end, 2.0, RATE_INTERVAL)
    values = {"namespace": NS, "policy": "(docs)", "pod": "(docs-a|docs-b)", **window.builtins}
    expr = render.substitute(panel["targets"][0]["expr"], values)
    span = f"{observed.end - observed.start:.0f}s"
    peak = observed.prom.query(f"max_over_time(({expr})[{span}:1s])", observed.end)
    assert [r["metric"]["reason"] for r in peak if float(r["value"][1]) > 0] == ["announced"]


def selectors(expr: str) -> list[str]:
    return re.findall(r"\b(?:llmcache_\w+|up)\{[^}]*\}|\bllmcache_\w+\b(?![{(])", expr)


def test_alert_rules_evaluate_on_real_series_and_none_fires_on_this_install(
    observed: Observed,
) -> None:
    rules = {r["name"]: r for r in observed.prom.rules()}
    assert len(rules) == 8
    assert all(r["health"] == "ok" and not r.get("lastError") for r in rules.values()), rules
    # trial-a's Redis is a closed port: the operator marks policy trial Degraded while its
    # sidecar reports new faults, and the alert would wait 15 minutes before firing.
    alerts = observed.prom.alerts()
    assert {(a["labels"]["alertname"], a["state"]) for a in alerts} <= {
        ("LLMCachePolicyDegraded", "pending")
    }, alerts
    window = f"{observed.end - observed.start:.0f}s"
    for name, rule in rules.items():
        during = observed.prom.query(f"({rule['query']})[{window}:1s]", observed.end)
        if name == "LLMCachePolicyDegraded":
            assert during, "the Degraded policy never showed in the alert's expression"
        else:
            # Silent by design here: a steady hit rate, fault rates under the thresholds over
            # the rules' windows, no rejected policy, no webhook error, the operator up, a
            # budget far from spent.
            assert not during, (name, during)
        for selector in selectors(rule["query"]):
            found = observed.prom.query(selector, observed.end)
            assert found, f"{name}: {selector} selects no series of this install"


def test_dashboard_pictures_are_drawn_from_the_real_prometheus(
    observed: Observed, tmp_path: Path
) -> None:
    out = Path(os.environ.get(IMAGES_ENV) or tmp_path)
    window = render.Window(observed.start, observed.end, 1.0, RATE_INTERVAL)
    query = render.prometheus_range(observed.prom.url)
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        image = (out if out.is_absolute() else REPO / out) / f"{path.stem}.png"
        empty = render.draw(board, variables(board, observed), window, query, image)
        assert empty == [], f"{path.name}: panels drawn without data"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
