"""Grafana dashboards and Prometheus alert rules shipped by the chart: valid Grafana JSON, and
every metric their PromQL names is one a running sidecar or the operator really exports
(scraped over HTTP after real traffic, not read from a list)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SidecarFactory

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "charts" / "llmcache" / "dashboards").glob("*.json"))
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__all"}
# PromQL words that look like metric names but are not (functions are found by their "(").
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Series Prometheus itself makes for every scrape target.
PROMETHEUS_SERIES = {"up"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels of collapsed rows


def query_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (p for p in all_panels(dashboard) if p["type"] != "row")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label names, functions and keywords aside)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("(") or word.lower() in PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, layer) (rate(llmcache_lookup_duration_seconds_bucket"
        '{namespace=~"$namespace",result="hit"}[$__rate_interval]))) / scalar(sum(up{job="x"})) '
        "and on (pod) llmcache_l1_entries > 0.5 * 3600 unless absent(llmcache_l1_bytes offset 5m)"
    )
    assert metric_names(expr) == {
        "llmcache_lookup_duration_seconds_bucket", "up", "llmcache_l1_entries", "llmcache_l1_bytes"
    }  # fmt: skip


# ---- Grafana JSON --------------------------------------------------------------------


def test_there_are_an_overview_and_a_policy_dashboard() -> None:
    titles = {load(p)["title"] for p in DASHBOARDS}
    assert titles == {"LLM cache / Overview", "LLM cache / Policy"}
    assert len({load(p)["uid"] for p in DASHBOARDS}) == len(DASHBOARDS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_valid_grafana_json(path: Path) -> None:
    board = load(path)
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["uid"] and len(board["uid"]) <= 40 and board["title"]
    ids = [p["id"] for p in all_panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(query_panels(board))
    assert len(panels) >= 10
    for panel in panels:
        where = f"{path.name} panel {panel['id']} {panel['title']!r}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), where
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, where
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
            assert target["expr"].strip(), where
            assert metric_names(target["expr"]), where
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables.keys() | GRAFANA_BUILTINS, (where, used)
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert metric_names(
                re.sub(r"label_values\((.*),\s*\w+\)", r"\1", var["query"]["query"])
            )


def test_overview_covers_what_an_operator_of_the_cache_asks() -> None:
    board = load(ROOT / "charts" / "llmcache" / "dashboards" / "overview.json")
    exprs = " ".join(t["expr"] for p in query_panels(board) for t in p["targets"])
    for needed in (
        'result="hit"',  # hit rate
        "sum by (layer)",  # per-layer hit rate
        "sum by (result)",  # requests by result
        "llmcache_request_duration_seconds_bucket",  # hit latency
        "llmcache_upstream_duration_seconds_bucket",  # upstream latency
        "llmcache_saved_usd_total",
        "llmcache_tokens_saved_total",
        "llmcache_redis_faults_total",
        "llmcache_semantic_similarity_bucket",
        "llmcache_embedding_batch_size_bucket",
    ):
        assert needed in exprs, needed
    policy = load(ROOT / "charts" / "llmcache" / "dashboards" / "policy.json")
    assert {"namespace", "policy", "pod"} <= {v["name"] for v in policy["templating"]["list"]}
    for panel in query_panels(policy):
        for target in panel["targets"]:
            if "llmcache_" in target["expr"]:
                assert 'namespace="$namespace"' in target["expr"], panel["title"]


# ---- metric names: scraped from the real processes -----------------------------------


def exposed_names(exposition: str) -> set[str]:
    """Every series name a scrape can return, including metrics with no sample yet."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        if family.type in ("gauge", "unknown", "untyped"):
            names.add(family.name)  # a counter's family name alone is no series
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
        }.get(family.type, ())
        names.update(family.name + s for s in suffixes)
        names.update(sample.name for sample in family.samples)
    return names


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
    return body.decode()


@pytest.fixture(scope="module")
def sidecar_names(request: pytest.FixtureRequest) -> set[str]:
    start: SidecarFactory = request.getfixturevalue("sidecar_module")
    upstream = request.getfixturevalue("upstream")
    # Semantic layer on (embeddings from the simulator), so its metrics are registered too.
    policy = {"semantic": {"enabled": True, "embedder": {"url": upstream.url}}}
    proc = start("--policy-json", json.dumps(policy))
    client = anthropic.Anthropic(
        api_key="sk-ant-test-dashboards-0123456789",
        base_url=f"{proc.url}/anthropic",
        max_retries=0,
    )
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Which metrics does a cache export?"}],
    }
    for _ in range(3):  # a miss, then hits
        client.messages.create(**params)
    similar = {
        **params,
        "messages": [{"role": "user", "content": "Which metrics does a cache export"}],
    }
    client.messages.create(**similar)  # a semantic lookup (hit or not)
    with client.messages.stream(**params) as stream:  # a hit replayed as SSE
        stream.get_final_message()
    scrape = get(f"{proc.url}/metrics")
    hits = [
        s
        for f in text_string_to_metric_families(scrape)
        for s in f.samples
        if s.name == "llmcache_requests_total" and s.labels.get("result") == "hit"
    ]
    assert sum(s.value for s in hits) >= 3, "the traffic did not produce hits"
    return exposed_names(scrape)


@pytest.fixture(scope="module")
def sidecar_module(
    upstream: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidecarFactory]:
    """Module-scoped sidecars (the conftest's factory is per test)."""
    from tests.support import Proc, llmcache

    procs: list[Proc] = []

    def start(*args: str) -> Proc:
        proc = llmcache(
            "sidecar",
            "--listen", "127.0.0.1:0",
            "--anthropic-upstream", upstream.url,
            "--openai-upstream", upstream.url,
            *args,
        )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture(scope="module")
def operator_names() -> set[str]:
    """Scrape the operator's real metrics app over HTTP."""
    from aiohttp import web
    from llmcache.operator.metrics import OperatorMetrics, create_metrics_app

    async def scrape() -> str:
        runner = web.AppRunner(create_metrics_app(OperatorMetrics()))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            return await asyncio.to_thread(get, f"http://127.0.0.1:{port}/metrics")
        finally:
            await runner.cleanup()

    return exposed_names(asyncio.run(scrape()))


def rendered_rules() -> list[dict[str, Any]]:
    from tests.test_chart import ALL_ON, one, render

    rule = one(render(ALL_ON), "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def used_names() -> dict[str, set[str]]:
    """Metric name -> where it is used (dashboard panels and alert rules)."""
    uses: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        board = load(path)
        for panel in query_panels(board):
            for target in panel["targets"]:
                for name in metric_names(target["expr"]):
                    uses.setdefault(name, set()).add(f"{path.stem}: {panel['title']}")
    for rule in rendered_rules():
        for name in metric_names(rule["expr"]):
            uses.setdefault(name, set()).add(f"alert {rule['alert']}")
    return uses


def test_every_metric_in_dashboards_and_alerts_is_exported(
    sidecar_names: set[str], operator_names: set[str]
) -> None:
    uses = used_names()
    assert len(uses) >= 20
    exported = sidecar_names | operator_names | PROMETHEUS_SERIES
    missing = {name: sorted(where) for name, where in uses.items() if name not in exported}
    assert not missing, "PromQL names metrics nobody exports:\n" + json.dumps(missing, indent=1)


def test_the_scrape_comparison_can_fail(sidecar_names: set[str]) -> None:
    """A misspelt metric in a panel would be caught: the scrape is not a catch-all."""
    assert "llmcache_requests_total" in sidecar_names
    assert "llmcache_request_total" not in sidecar_names
    assert "llmcache_requests" not in sidecar_names  # a counter's family name is no series
