"""A real Prometheus (Debian's ``prometheus`` package) as a child process: its own config,
data directory and loopback port, scraping the test's sidecars and operator every second
and evaluating the chart's alert rules every second."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support import free_port, wait_for

SCRAPE_INTERVAL = "1s"
# Grafana's $__rate_interval is max(4 x scrape interval, $__interval + scrape interval).
RATE_INTERVAL = "10s"
SETUP_HINT = "apt-get install -y --no-install-recommends prometheus (make system-deps)"

Obj = dict[str, Any]


def binary(name: str) -> str:
    found = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(found).exists():
        raise RuntimeError(f"{name} is not installed: {SETUP_HINT}")
    return found


def target(job: str, url: str, **labels: str) -> Obj:
    """A scrape job for one ``/metrics`` URL, with the target labels the chart's PodMonitor
    or ServiceMonitor would add (namespace, pod, policy...)."""
    parts = urllib.parse.urlsplit(url)
    return {
        "job_name": job,
        "scrape_interval": SCRAPE_INTERVAL,
        "metrics_path": parts.path or "/metrics",
        "static_configs": [{"targets": [parts.netloc], "labels": labels}],
    }


class Prometheus:
    def __init__(
        self, workdir: Path, jobs: list[Obj], rule_files: list[Path] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files or []],
            "scrape_configs": jobs,
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(self._ready, timeout=30, interval=0.1, what="prometheus ready")
        except AssertionError as exc:
            self.stop()
            log = self.log.read_text()[-3000:]
            raise AssertionError(f"prometheus did not start:\n{log}") from exc

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[Obj]:
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self.api("query", **params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[Obj] = data["result"]  # vector, or matrix for a range selector
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Obj]:
        data = self.api(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}s"
        )
        result: list[Obj] = data["result"]
        return result

    def wait_targets_up(self, count: int, timeout: float = 30) -> None:
        def up() -> bool:
            active = self.api("targets")["activeTargets"]
            return len(active) == count and all(t["health"] == "up" for t in active)

        wait_for(up, timeout=timeout, interval=0.2, what=f"{count} scrape targets up")

    def wait_scraped(self, timeout: float = 10) -> float:
        """Wait until every target has been scraped after now (so the last traffic is in),
        and return that time."""
        now = time.time()

        def fresh() -> bool:
            active = self.api("targets")["activeTargets"]
            return all(_timestamp(t["lastScrape"]) > now + 0.05 for t in active)

        wait_for(fresh, timeout=timeout, interval=0.2, what="a scrape of every target")
        return time.time()

    def alerts(self) -> list[Obj]:
        found: list[Obj] = self.api("alerts")["alerts"]
        return found

    def rules(self) -> list[Obj]:
        return [r for g in self.api("rules")["groups"] for r in g["rules"]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _timestamp(text: str) -> float:
    """Prometheus's RFC 3339 time with nanoseconds, as epoch seconds."""
    from datetime import datetime

    head, _, frac = text.partition(".")
    zone = frac.lstrip("0123456789") if frac else text[19:]
    digits = frac[: len(frac) - len(zone)] if frac else ""
    stamp = datetime.fromisoformat(head[:19] + (zone.replace("Z", "+00:00") or "+00:00"))
    return stamp.timestamp() + (float(f"0.{digits}") if digits else 0.0)


def rendered_rules(path: Path) -> Path:
    """The chart's PrometheusRule (default values) as a plain Prometheus rule file."""
    from tests.test_chart import ALL_ON, one, render

    rule = one(render(ALL_ON), "PrometheusRule")
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path
