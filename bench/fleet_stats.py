"""``llmcache bench fleet-stats``: many simulated sidecars report statistics to two real
operator replicas (kopf peering) against a real etcd + kube-apiserver.

Measures what the statistics ledger costs the API server and the CachePolicy object at
fleet scale: the status size (bytes), the API writes per minute (the API server's own
``apiserver_request_total`` for the cachepolicies resource), and whether the totals equal,
exactly, the sum of what the simulated sidecars had acknowledged. Each simulated sidecar
is what ``sidecar/reporter.py`` sends: its cumulative counters since start, from what was
last acknowledged, on one kept-alive connection to one replica (as behind a Service).

Needs the repository checkout (it reuses the test harness's control plane,
tests/kube/kubeutil.py) and the binaries that tests/controlplane/build.sh builds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "fleet-stats.json"
NS, NAME = "fleet", "fleet"
GROUP_VERSION, KIND = "llmcache.dev/v1alpha1", "CachePolicy"
WRITES = re.compile(
    r'^apiserver_request_total\{(?P<labels>[^}]*resource="cachepolicies"[^}]*)\} (?P<n>\S+)$',
    re.MULTILINE,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sidecars", type=int, default=10_000, help="simulated sidecars")
    parser.add_argument(
        "--report-interval", type=float, default=30.0,
        help="seconds between one sidecar's reports (the sidecar default is 15)",
    )  # fmt: skip
    parser.add_argument(
        "--operator-interval", type=float, default=15.0,
        help="the operators' --stats-interval (their default)",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=120.0, help="seconds measured")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the JSON goes")


@dataclass
class Sidecar:
    pod: str
    instance: str
    replica: int
    counters: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "hits": 0, "spentMicroUsd": 0,
                                 "savedMicroUsd": 0, "tokensSaved": 0}
    )  # fmt: skip
    acked: dict[str, int] | None = None

    def work(self, rng: random.Random) -> None:
        """Traffic since the last report."""
        requests = rng.randrange(0, 20)
        hits = rng.randrange(0, requests + 1)
        self.counters["requests"] += requests
        self.counters["hits"] += hits
        self.counters["spentMicroUsd"] += (requests - hits) * rng.randrange(100, 5_000)
        self.counters["savedMicroUsd"] += hits * rng.randrange(100, 5_000)
        self.counters["tokensSaved"] += hits * rng.randrange(10, 500)


@dataclass
class Tally:
    sent: int = 0
    acked: int = 0
    refused: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)


async def report(
    session: aiohttp.ClientSession, url: str, car: Sidecar, tally: Tally, limit: float
) -> None:
    to = dict(car.counters)
    doc = {"pod": car.pod, "instance": car.instance, "from": car.acked, "to": to}
    tally.sent += 1
    t0 = time.monotonic()
    try:
        async with session.post(url, json=doc, timeout=aiohttp.ClientTimeout(total=limit)) as r:
            if r.status == 204:
                car.acked = to
                tally.acked += 1
                tally.latencies.append(time.monotonic() - t0)
            else:
                tally.refused += 1
    except (aiohttp.ClientError, TimeoutError):
        tally.failed += 1


async def simulate(
    urls: list[str], cars: list[Sidecar], interval: float, duration: float, limit: float
) -> Tally:
    """Every sidecar reports every ``interval`` (phases spread over it) for ``duration``,
    then once more; returns when every report is answered."""
    tally, rng = Tally(), random.Random(1)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def run(car: Sidecar, phase: float) -> None:
            url = f"{urls[car.replica]}/v1/stats/{NS}/{NAME}"
            await asyncio.sleep(phase)
            end = time.monotonic() + duration - phase
            while time.monotonic() < end:
                car.work(rng)
                await report(session, url, car, tally, limit)
                await asyncio.sleep(interval)
            while car.acked != car.counters:  # the last report, until acknowledged
                await report(session, url, car, tally, limit)

        await asyncio.gather(*(run(c, interval * i / len(cars)) for i, c in enumerate(cars)))
    return tally


def writes(kube: Any) -> dict[str, float]:
    """The API server's count of requests to cachepolicies, by verb and subresource."""
    text = kube.request("GET", "/metrics")
    out: dict[str, float] = {}
    for match in WRITES.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") in ("PATCH", "PUT", "POST", "DELETE"):
            key = f"{labels['verb']} {labels.get('subresource') or 'object'}"
            out[key] = out.get(key, 0.0) + float(match["n"])
    return out


def old_layout_bytes(pods: int) -> int:
    """What ``status.sidecars`` held per pod before the ledger (its schema), for scale."""
    entry = {"requests": 123456, "hits": 65432, "savedUsd": 12.345678, "spentUsd": 23.456789,
             "tokensSaved": 9876543, "redisFaults": 0, "at": "2026-11-30T12:00:00Z"}  # fmt: skip
    return pods * len(json.dumps({"app-7d9f8b6c5d-x2x4z": entry})[1:-1])


def run(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPO))
    try:
        from tests.kube.kubeutil import ControlPlane, binaries_dir, run_operator, wait_for
    except ImportError as exc:
        print(f"llmcache bench fleet-stats needs the repository checkout: {exc}")
        return 2
    # Stopped with SIGTERM: still stop etcd, the API server and the operators (finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="fleet-stats-"))
    plane = ControlPlane.start(binaries_dir(), work / "controlplane")
    operators: list[Any] = []
    try:
        kube = plane.client()
        for path in sorted((REPO / "charts" / "llmcache" / "crds").glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    kube.apply(doc, field_manager="bench")
                    kube.wait_established(doc["metadata"]["name"])
        kube.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                    "metadata": {"name": "llmcache"}}, field_manager="bench")  # fmt: skip
        kube.ensure_namespace(NS)
        kube.apply({"apiVersion": GROUP_VERSION, "kind": KIND,
                    "metadata": {"name": NAME, "namespace": NS},
                    "spec": {"budget": {"amountUsd": 1e6, "period": "month"}}})  # fmt: skip
        for i in range(2):
            operators.append(
                run_operator(
                    plane.admin_kubeconfig,
                    "--peering",
                    "llmcache",
                    f"--priority={-i}",
                    "--policy-listen",
                    "127.0.0.1:0",
                    "--metrics-listen",
                    "",
                    "--webhook-listen",
                    "",
                    f"--stats-interval={args.operator_interval}",
                    f"--replica-id=llmcache-operator-{i}",
                    timeout=120,
                )
            )
        urls = [op.urls[0] for op in operators]

        def delivered() -> bool:
            try:
                for url in urls:
                    urllib.request.urlopen(f"{url}/v1/policies/{NS}/{NAME}", timeout=5).close()
            except OSError:
                return False
            return True

        wait_for(delivered, timeout=120, what="both replicas know the policy")
        cars = [Sidecar(f"app-{i}", os.urandom(8).hex(), i % 2) for i in range(args.sidecars)]
        load_before = os.getloadavg()
        writes_before, t0 = writes(kube), time.monotonic()
        limit = 2 * args.operator_interval + 10
        peak = {"statusBytes": 0, "injectedPods": 0}

        async def measured() -> Tally:
            """The simulation, with the status sampled every 5 s for its peaks."""
            run = asyncio.ensure_future(
                simulate(urls, cars, args.report_interval, args.duration, limit)
            )
            while not run.done():
                obj = await asyncio.to_thread(kube.get, GROUP_VERSION, KIND, NAME, NS)
                status = (obj or {}).get("status") or {}
                size = len(json.dumps(status, separators=(",", ":")))
                peak["statusBytes"] = max(peak["statusBytes"], size)
                pods = int(status.get("injectedPods", 0))
                peak["injectedPods"] = max(peak["injectedPods"], pods)
                await asyncio.wait([run], timeout=5)
            return run.result()

        tally = asyncio.run(measured())
        elapsed = time.monotonic() - t0
        writes_after, load_after = writes(kube), os.getloadavg()
        expected = {k: sum((c.acked or {}).get(k, 0) for c in cars) for k in cars[0].counters}

        def settled() -> dict[str, Any] | None:
            obj = kube.get(GROUP_VERSION, KIND, NAME, NS) or {}
            status = obj.get("status") or {}
            return obj if status.get("requests") == expected["requests"] else None

        try:
            obj = wait_for(settled, timeout=4 * args.operator_interval + 30, what="totals")
        except AssertionError:
            obj = kube.get(GROUP_VERSION, KIND, NAME, NS) or {}
        status = obj.get("status") or {}
        replicas = (status.get("ledger") or {}).get("replicas") or {}
        ledger = {k: sum(int(r.get(k, 0)) for r in replicas.values()) for k in expected}
        minutes = elapsed / 60
        delta = {k: writes_after.get(k, 0) - writes_before.get(k, 0) for k in writes_after}
        result = {
            "sidecars": args.sidecars,
            "reportIntervalSeconds": args.report_interval,
            "operatorIntervalSeconds": args.operator_interval,
            "durationSeconds": round(elapsed, 1),
            "reports": {
                "sent": tally.sent,
                "acknowledged": tally.acked,
                "refused": tally.refused,
                "failed": tally.failed,
            },
            "reportsPerSecond": round(tally.sent / elapsed, 1),
            "ackLatencySeconds": _percentiles(tally.latencies),
            "statusBytes": len(json.dumps(status, separators=(",", ":"))),
            "objectBytes": len(json.dumps(obj, separators=(",", ":"))),
            "peakStatusBytes": peak["statusBytes"],
            "peakInjectedPods": peak["injectedPods"],
            "oldLayoutStatusBytesEstimate": old_layout_bytes(args.sidecars),
            "apiWritesPerMinute": {k: round(v / minutes, 1) for k, v in sorted(delta.items())},
            "apiWritesPerMinuteTotal": round(sum(delta.values()) / minutes, 1),
            "expected": expected,
            "ledger": ledger,
            "statusTotals": {
                k: status.get(k)
                for k in ("requests", "hits", "spentUsd", "savedUsd", "tokensSaved", "injectedPods")
            },
            "exact": ledger == expected and status.get("requests") == expected["requests"],
            "loadAverage": {
                "before": [round(x, 2) for x in load_before],
                "after": [round(x, 2) for x in load_after],
            },
            "cpus": os.cpu_count(),
        }
    finally:
        for op in operators:
            op.stop()
        plane.stop()
        shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return 0 if result["exact"] else 1


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    pick = {"p50": 0.5, "p99": 0.99, "max": 1.0}
    return {
        k: round(values[min(len(values) - 1, int(q * len(values)))], 3) for k, q in pick.items()
    }


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("simulated sidecars", f"{r['sidecars']}"),
        ("report interval / operator interval", f"{r['reportIntervalSeconds']:g} s / "
                                                f"{r['operatorIntervalSeconds']:g} s"),
        ("measured", f"{r['durationSeconds']} s, {r['reportsPerSecond']} reports/s"),
        ("reports sent / acknowledged / 503 / failed",
         "{sent} / {acknowledged} / {refused} / {failed}".format(**r["reports"])),
        ("ack latency p50 / p99 / max",
         " / ".join(f"{v} s" for v in r["ackLatencySeconds"].values())),
        ("status bytes at the end, peak (whole object)",
         f"{r['statusBytes']}, {r['peakStatusBytes']} ({r['objectBytes']})"),
        ("injectedPods, peak (heard within 3 operator intervals)", f"{r['peakInjectedPods']}"),
        ("old per-pod layout, estimated", f"{r['oldLayoutStatusBytesEstimate']}"),
        ("API writes/min, cachepolicies", f"{r['apiWritesPerMinuteTotal']} "
                                          f"{r['apiWritesPerMinute']}"),
        ("requests: sent = ledger = status", f"{r['expected']['requests']} = "
                                             f"{r['ledger']['requests']} = "
                                             f"{r['statusTotals']['requests']}"),
        ("spent micro-USD: sent = ledger", f"{r['expected']['spentMicroUsd']} = "
                                           f"{r['ledger']['spentMicroUsd']}"),
        ("exact", f"{r['exact']}"),
        ("load average before / after", f"{r['loadAverage']['before']} / "
                                        f"{r['loadAverage']['after']} ({r['cpus']} CPUs)"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
