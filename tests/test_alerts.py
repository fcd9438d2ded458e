"""The chart's alert rules under Debian's ``promtool`` and a real Prometheus: the rules load,
each alert has unit tests (tests/prometheus/alerts.test.yaml) that make it fire and keep it
silent, and a rejected policy file pages from a real sidecar's real scrape."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SidecarFactory
from tests.promserver import Prometheus, binary, rendered_rules, target
from tests.support import wait_for

UNIT_TESTS = Path(__file__).resolve().parent / "prometheus" / "alerts.test.yaml"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return rendered_rules(tmp_path / "llmcache-rules.yaml")


def promtool(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def alert_names(rules: Path) -> set[str]:
    doc = yaml.safe_load(rules.read_text())
    return {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_accepts_the_rendered_rules(rules: Path) -> None:
    out = promtool("check", "rules", str(rules), cwd=rules.parent)
    assert f"SUCCESS: {len(alert_names(rules))} rules found" in out


def test_every_alert_has_unit_tests_that_fire_it_and_keep_it_silent(rules: Path) -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    fired = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert fired == alert_names(rules), "an alert without a test that makes it fire"
    assert silent == alert_names(rules), "an alert without a test that keeps it silent"


def test_promtool_unit_tests_pass(rules: Path) -> None:
    shutil.copy(UNIT_TESTS, rules.parent / UNIT_TESTS.name)
    out = promtool("test", "rules", UNIT_TESTS.name, cwd=rules.parent)
    assert "SUCCESS" in out and "FAILED" not in out


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    servers: list[Prometheus] = []

    def start(jobs: list[dict[str, Any]], rule_files: list[Path]) -> Prometheus:
        workdir = tmp_path / f"prometheus-{len(servers)}"
        workdir.mkdir()
        servers.append(Prometheus(workdir, jobs, rule_files))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def firing(prom: Prometheus, name: str) -> list[dict[str, Any]]:
    return [a for a in prom.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_a_sidecars_first_rejected_policy_pages_in_a_real_prometheus(
    sidecar: SidecarFactory, prometheus_for: Any, rules: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"exact": {"ttlSeconds": 600}}))
    proc = sidecar("--policy", str(policy))
    labels = {"namespace": "apps", "policy": "docs", "pod": "docs-7f9c-x2"}
    prom = prometheus_for([target("sidecars", f"{proc.url}/metrics", **labels)], [rules])
    prom.wait_targets_up(1)
    prom.wait_scraped()  # the result="invalid" series at 0 is in before the rejection
    assert not firing(prom, "LLMCachePolicyRejected")

    policy.write_text(json.dumps({"exact": {"ttlSeconds": -5}}))  # rejected, previous kept
    alerts = wait_for(
        lambda: firing(prom, "LLMCachePolicyRejected"),
        timeout=20,
        interval=0.2,
        what="LLMCachePolicyRejected firing",
    )
    assert [a["labels"] for a in alerts] == [
        {"alertname": "LLMCachePolicyRejected", "severity": "info", **labels}
    ]
    assert alerts[0]["annotations"]["summary"] == (
        "Sidecar apps/docs-7f9c-x2 rejected a policy update"
    )
    # Every rule evaluates without error against real series (label matching, types).
    assert all(r["health"] == "ok" for r in prom.rules()), prom.rules()
    assert {a["labels"]["alertname"] for a in prom.alerts()} <= {
        "LLMCachePolicyRejected",
        "LLMCacheOperatorDown",  # this Prometheus scrapes no operator
    }
