"""The L2, flushes and semantic records on a real Redis Cluster (3 primaries, 3 replicas)
and a real Sentinel set (primary, replica, 3 Sentinels), all Debian's ``redis-server``; faults
under 32 concurrent clients of real sidecar processes: a primary killed and brought back, a
slot moved while it is read. Every answer is checked against the simulator's own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import numpy as np
import pytest
import redis
from llmcache.operator import redis_acl
from llmcache.sidecar.l2 import L2
from llmcache.sidecar.layers import CacheRequest, Entry, Selector
from llmcache.sidecar.metrics import Metrics
from llmcache.sidecar.semantic.index import Record
from llmcache.sidecar.semantic.store import SemanticStore

from llmcache import keyspace, redis_client
from tests.conftest import SidecarFactory
from tests.support import Proc, free_port, wait_for
from tests.test_sidecar import KEY_A, claude, http

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
pytestmark = pytest.mark.skipif(
    not (Path(REDIS_SERVER).exists() and Path(REDIS_CLI).exists()),
    reason="needs redis-server and redis-cli",
)

CLIENTS = 32
PROMPTS = [f"Topology question {i}: what does a cache keep?" for i in range(32)]
MODEL = "claude-sonnet-4-5"
RESUME_BOUND = 30.0  # seconds; the figures measured are printed and in docs/deploy.md


# -- real processes ----------------------------------------------------------------------------


class Node:
    """One ``redis-server`` on a free loopback port, no persistence, its own directory (a
    cluster node keeps its identity there, ``nodes.conf``, across a restart)."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.dir = workdir / str(self.port)
        self.dir.mkdir(parents=True)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, *self.args, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(self.alive, timeout=10, what=f"redis-server on {self.port}")
        except BaseException:
            self.kill()
            raise

    def alive(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def info(self, *command: str) -> Any:
        with self.client() as c:
            return c.execute_command(*command)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class Cluster:
    """3 primaries with a replica each, a failover after 1 s without a primary."""

    def __init__(self, workdir: Path) -> None:
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000")  # fmt: skip
        self.nodes: list[Node] = []
        try:
            for _ in range(6):
                # The bus port is set: port + 10000 (the default) may be taken or > 65535.
                self.nodes.append(Node(workdir, *args, "--cluster-port", str(free_port())))
            subprocess.run(
                [REDIS_CLI, "--cluster", "create", *[n.address for n in self.nodes],
                 "--cluster-replicas", "1", "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            self.wait_healthy()
        except BaseException:
            self.stop()  # no server outlives a start that failed half-way
            raise

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.address for n in self.nodes[:2])

    def healthy(self) -> bool:
        """Every node up, agreeing the cluster is ok, with 3 primaries covering all slots."""
        try:
            for node in self.nodes:
                info = node.info("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info or "cluster_known_nodes:6" not in info:
                    return False
                if "cluster_slots_ok:16384" not in info:
                    return False
            return len(self.primaries()) == 3
        except redis.RedisError:
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        wait_for(self.healthy, timeout=timeout, interval=0.1, what="cluster healthy")

    def topology(self) -> list[dict[str, Any]]:
        """CLUSTER NODES as seen by a live node: id, port, role, slots."""
        for node in self.nodes:
            try:
                text = node.info("CLUSTER", "NODES").decode()
            except redis.RedisError:
                continue
            rows = []
            for line in text.strip().splitlines():
                parts = line.split()
                rows.append({
                    "id": parts[0], "port": int(parts[1].split(":")[1].split("@")[0]),
                    "primary": "master" in parts[2] and "fail" not in parts[2],
                    "slots": parts[8:],
                })  # fmt: skip
            return rows
        raise AssertionError("no cluster node answers")

    def primaries(self) -> list[Node]:
        ports = {r["port"] for r in self.topology() if r["primary"] and r["slots"]}
        return [n for n in self.nodes if n.port in ports]

    def node_id(self, node: Node) -> str:
        return str(node.info("CLUSTER", "MYID").decode())

    def owner(self, slot: int) -> Node:
        for row in self.topology():
            for span in row["slots"] if row["primary"] else []:
                if span.startswith("["):
                    continue
                low, _, high = span.partition("-")
                if int(low) <= slot <= int(high or low):
                    return next(n for n in self.nodes if n.port == row["port"])
        raise AssertionError(f"slot {slot} has no owner")

    def move_slot(self, slot: int, target: Node) -> int:
        """The documented live resharding of one slot: IMPORTING/MIGRATING, MIGRATE its
        keys in batches, then the new owner told to every primary. Returns keys moved."""
        source = self.owner(slot)
        target_id, source_id = self.node_id(target), self.node_id(source)
        target.info("CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        source.info("CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        moved = 0
        while keys := source.info("CLUSTER", "GETKEYSINSLOT", str(slot), "10"):
            source.info("MIGRATE", "127.0.0.1", str(target.port), "", "0", "5000", "KEYS", *keys)
            moved += len(keys)
        for node in self.primaries():
            node.info("CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        return moved

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


class SentinelSet:
    """A primary, its replica and 3 Sentinels (quorum 2, down after 1 s)."""

    SERVICE = "llmcache"

    def __init__(self, workdir: Path) -> None:
        self.sentinels: list[Node] = []
        self.primary = Node(workdir)
        try:
            self._start(workdir)
        except BaseException:
            self.stop()  # no server outlives a start that failed half-way
            raise

    def _start(self, workdir: Path) -> None:
        self.replica = Node(workdir, "--replicaof", "127.0.0.1", str(self.primary.port))
        for _ in range(3):
            port = free_port()
            conf = workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
            )
            node = Node.__new__(Node)
            node.port, node.dir, node.args = port, workdir, (str(conf), "--sentinel")
            node.proc = subprocess.Popen(
                [REDIS_SERVER, str(conf), "--sentinel", "--port", str(port),
                 "--bind", "127.0.0.1", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.sentinels.append(node)
            wait_for(node.alive, timeout=10, what="sentinel")
        wait_for(self.settled, timeout=30, interval=0.1, what="sentinels settled")

    @property
    def url(self) -> str:
        nodes = ",".join(s.address for s in self.sentinels)
        return f"redis+sentinel://{nodes}/{self.SERVICE}/0"

    def settled(self) -> bool:
        """Every Sentinel knows the others and a replica of the current primary."""
        try:
            for s in self.sentinels:
                with s.client() as c:
                    master = c.sentinel_master(self.SERVICE)
                    replicas = c.sentinel_slaves(self.SERVICE)
                if master["num-other-sentinels"] != 2 or master["is_sdown"]:
                    return False
                if not any(not r["is_sdown"] for r in replicas):
                    return False
            return True
        except (redis.RedisError, KeyError):
            return False

    def current_primary(self) -> int:
        with self.sentinels[0].client() as c:
            _, port = c.sentinel_get_master_addr_by_name(self.SERVICE)
        return int(port)

    def stop(self) -> None:
        for node in [*self.sentinels, self.primary, getattr(self, "replica", None)]:
            if node is not None:
                node.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    s = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    yield s
    s.stop()


# -- load and its verdicts -----------------------------------------------------------------


@dataclass
class Load:
    """``CLIENTS`` threads asking ``PROMPTS`` round-robin through one sidecar; every answer
    compared with the simulator's, every outcome recorded with its time."""

    proc: Proc
    expected: dict[str, str]
    outcomes: list[tuple[float, str, str]] = field(default_factory=list)  # time, prompt, layer
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __enter__(self) -> Load:
        self._pool = concurrent.futures.ThreadPoolExecutor(CLIENTS)
        for worker in range(CLIENTS):
            self._pool.submit(self._run, worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._pool is not None
        self._pool.shutdown(wait=True)

    def _run(self, worker: int) -> None:
        client = claude(self.proc)
        i = worker
        while not self._stop.is_set():
            prompt = PROMPTS[i % len(PROMPTS)]
            i += CLIENTS + 1
            try:
                raw = client.messages.with_raw_response.create(
                    model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}]
                )
                text = raw.parse().content[0].text
            except Exception as exc:  # a client-visible error
                self.errors.append(f"{prompt}: {exc!r}")
                continue
            if text != self.expected[prompt]:
                self.wrong.append(prompt)
            self.outcomes.append(
                (time.monotonic(), prompt, raw.headers.get("x-llmcache-layer", ""))
            )
            self._stop.wait(0.01)  # a paced client: the machine is shared

    def l2_hits_since(self, since: float) -> dict[str, float]:
        """Each prompt's first L2 hit after ``since``."""
        first: dict[str, float] = {}
        for t, prompt, layer in list(self.outcomes):
            if t >= since and layer == "l2" and prompt not in first:
                first[prompt] = t
        return first

    def every_prompt_hits_since(self, since: float, timeout: float = RESUME_BOUND) -> float:
        """Seconds from ``since`` until every prompt has been an L2 hit again."""
        firsts = wait_for(
            lambda: (f := self.l2_hits_since(since)) and len(f) == len(PROMPTS) and f,
            timeout=timeout, interval=0.1, what="every prompt an L2 hit again",
        )  # fmt: skip
        return max(firsts.values()) - since

    def served_since(self, since: float) -> int:
        return sum(1 for t, _, _ in list(self.outcomes) if t >= since)


def expected_answers(upstream: Proc) -> dict[str, str]:
    """What the simulator itself answers to each prompt (it is deterministic)."""
    direct = anthropic.Anthropic(api_key=KEY_A, base_url=upstream.url, max_retries=0)
    answers = {}
    for prompt in PROMPTS:
        message = direct.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}]
        )
        answers[prompt] = message.content[0].text  # type: ignore[union-attr]
    return answers


@pytest.fixture(scope="module")
def expected(upstream: Proc) -> dict[str, str]:
    return expected_answers(upstream)


def l2_only(sidecar: SidecarFactory, url: str, prefix: str, timeout_ms: int = 250) -> Proc:
    """A sidecar without L1: every repeat is a Redis read, every fault is felt. The Redis
    deadline is above the default 50 ms: the tests share two cores with other work."""
    policy = {
        "exact": {"l1MaxEntries": 0},
        "redis": {"keyPrefix": prefix, "timeoutMs": timeout_ms},
    }
    return sidecar("--redis-url", url, "--policy-json", json.dumps(policy))


def warm(proc: Proc, expected: dict[str, str]) -> None:
    """Every prompt stored and then served from Redis."""
    client = claude(proc)

    def layer(prompt: str) -> str:
        raw = client.messages.with_raw_response.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}]
        )
        assert raw.parse().content[0].text == expected[prompt]
        return str(raw.headers.get("x-llmcache-layer", ""))

    def stored(prompt: str) -> None:
        wait_for(lambda: layer(prompt) == "l2", timeout=20, what=f"{prompt} in Redis")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(stored, PROMPTS))


def redis_faults(proc: Proc) -> float:
    text = http("GET", f"{proc.url}/metrics")[2].decode()
    found = re.findall(r"^llmcache_redis_faults_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return sum(float(v) for v in found)


def report(fault: str, load: Load, since: float, resume: float, faults: float) -> None:
    row = {
        "fault": fault, "clients": CLIENTS, "requests": load.served_since(since),
        "errors": len(load.errors), "wrong": len(load.wrong),
        "every_prompt_l2_hit_after_s": round(resume, 2), "redis_faults": faults,
    }  # fmt: skip
    print("FAULT-ROW", json.dumps(row))


# -- URLs ----------------------------------------------------------------------------------


def test_url_forms_choose_the_client() -> None:
    cluster = redis_client.parse("rediss+cluster://:pw@10.0.0.1:7000,redis-1?ssl_cert_reqs=none")
    assert (cluster.topology, cluster.nodes) == ("cluster", (("10.0.0.1", 7000), ("redis-1", 6379)))
    assert cluster.options == {"password": "pw", "ssl": True, "ssl_cert_reqs": "none"}
    sentinel = redis_client.parse(
        "redis+sentinel://u:p@s1:26379,s2:26380/cache/2?sentinel_password=x"
    )
    assert (sentinel.topology, sentinel.service) == ("sentinel", "cache")
    assert sentinel.options == {"username": "u", "password": "p", "db": 2}
    assert sentinel.sentinel_options == {"password": "x"}
    assert redis_client.parse("unix:///run/redis.sock?db=3").options["db"] == 3
    for bad in ("redis+sentinel://s1:26379", "redis+cluster://c1:6379/2", "redis+clusters://c1"):
        with pytest.raises(ValueError, match=re.escape("redis+sentinel://")):
            redis_client.parse(bad)
    assert "s3cret" not in redis_client.redact(
        "redis+sentinel://u:s3cret@s1/m?sentinel_password=s3cret"
    )


# -- Redis Cluster -------------------------------------------------------------------------


def test_a_second_sidecar_reads_through_the_cluster_and_a_tag_flush_reaches_every_slot(
    sidecar: SidecarFactory, cluster: Cluster, expected: dict[str, str]
) -> None:
    first = l2_only(sidecar, cluster.url, "share", timeout_ms=2000)
    second = l2_only(sidecar, cluster.url, "share", timeout_ms=2000)
    tags = {p: f"release-{i % 3}" for i, p in enumerate(PROMPTS[:12])}

    def tagged(prompt: str) -> str:
        raw = claude(first).messages.with_raw_response.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}],
            extra_headers={"x-llmcache-tags": tags[prompt]},
        )  # fmt: skip
        return str(raw.headers["x-llmcache"])

    def layer(proc: Proc, prompt: str) -> str:
        raw = claude(proc).messages.with_raw_response.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}]
        )
        assert raw.parse().content[0].text == expected[prompt]
        return str(raw.headers.get("x-llmcache-layer", "")) or raw.headers["x-llmcache"]

    def shared(prompt: str) -> None:  # written behind the answer: wait until it is in Redis
        wait_for(lambda: layer(second, prompt) == "l2", timeout=10)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        assert set(pool.map(tagged, tags)) == {"miss"}
        list(pool.map(shared, tags))
    slots = {redis_client.key_slot(k) for k in cluster_keys(cluster, "share:_:default:e:*")}
    assert len(slots) == 12 and len({cluster.owner(s).port for s in slots}) == 3  # spread

    body = json.dumps({"tagsAny": ["release-0", "release-1"]}).encode()
    status, _, answer = http("POST", f"{second.url}/admin/flush", body)
    assert status == 200 and json.loads(answer)["removed"] == 8
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        left = list(pool.map(lambda p: layer(first, p), tags))
    assert left.count("miss") == 8 and left.count("l2") == 4
    assert redis_faults(first) == redis_faults(second) == 0


def cluster_keys(cluster: Cluster, pattern: str) -> list[bytes]:
    keys: list[bytes] = []
    for node in cluster.primaries():
        with node.client() as c:
            keys += list(c.scan_iter(match=pattern, count=1000))
    return keys


@pytest.mark.slow
def test_killing_a_primary_under_load_loses_nothing_and_hits_resume(
    sidecar: SidecarFactory, cluster: Cluster, expected: dict[str, str]
) -> None:
    proc = l2_only(sidecar, cluster.url, "failover")
    warm(proc, expected)
    victim = cluster.primaries()[0]
    with Load(proc, expected) as load:
        wait_for(lambda: load.served_since(0) > 100, timeout=20)
        killed = time.monotonic()
        victim.kill()
        resume = load.every_prompt_hits_since(killed)
        faults = redis_faults(proc)
        report("cluster: primary killed (its replica takes over)", load, killed, resume, faults)

        victim.start()  # rejoins as a replica of the promoted one
        back = time.monotonic()
        cluster.wait_healthy()
        resume_back = load.every_prompt_hits_since(back)
        report("cluster: killed primary back (as a replica)", load, back, resume_back,
               redis_faults(proc) - faults)  # fmt: skip
    assert load.errors == [] and load.wrong == []
    assert faults > 0  # the dead primary was felt, and counted


@pytest.mark.slow
def test_moving_slots_under_load_loses_nothing(
    sidecar: SidecarFactory, cluster: Cluster, expected: dict[str, str]
) -> None:
    cluster.wait_healthy()
    proc = l2_only(sidecar, cluster.url, "reshard")
    warm(proc, expected)
    keys = cluster_keys(cluster, "reshard:_:default:e:*")
    slots = sorted({redis_client.key_slot(k) for k in keys})[:8]  # slots holding entries
    with Load(proc, expected) as load:
        wait_for(lambda: load.served_since(0) > 100, timeout=20)
        start = time.monotonic()
        moved = 0
        for slot in slots:
            others = [n for n in cluster.primaries() if n.port != cluster.owner(slot).port]
            moved += cluster.move_slot(slot, others[slot % len(others)])
        resume = load.every_prompt_hits_since(start)
        report(f"cluster: {len(slots)} slots ({moved} keys) moved", load, start, resume,
               redis_faults(proc))  # fmt: skip
    assert moved >= len(slots)
    assert load.errors == [] and load.wrong == []


def test_semantic_records_load_at_start_from_a_cluster(cluster: Cluster) -> None:
    async def scenario() -> tuple[int, list[str]]:
        loaded: list[str] = []
        writer = SemanticStore("sem", "s", Metrics(), 4, lambda *_: True, cluster.url, 2000)
        for i in range(40):
            record = Record(f"id{i}", "p", f"text {i}", MODEL, time.time() + 600)
            writer.save(record, np.ones(4, dtype=np.float32) * i, Entry({"id": i}, MODEL))
        await writer.close()  # waits for its writes
        reader = SemanticStore(
            "sem", "s", Metrics(), 4, lambda r, *_: not loaded.append(r.id), cluster.url, 2000
        )
        reader.start()
        await asyncio.wait_for(reader.loaded.wait(), 20)
        entry = await reader.entry("id7")
        await reader.close()
        return len(loaded), [str(entry.response["id"]) if entry else ""]

    count, entry = asyncio.run(scenario())
    assert count == 40 and entry == ["7"]
    slots = {redis_client.key_slot(k) for k in cluster_keys(cluster, "sem:s:v:*")}
    assert len({cluster.owner(s).port for s in slots}) == 3  # records on every primary


def test_a_policy_user_on_a_cluster_can_do_what_a_sidecar_does(cluster: Cluster) -> None:
    """ACLs are per node: the operator tells every node; the cluster client's own commands
    (CLUSTER SLOTS, COMMAND) are in the user's list."""
    prefix, user, secret = "acl:ns:p", "llmcache.ns.p", "s3cret-cluster"

    async def scenario() -> tuple[Any, float, int]:
        admin = redis_client.connect(cluster.url)
        await redis_acl.ensure_user(admin, user, prefix, [secret])
        await admin.aclose()
        url = f"redis+cluster://{user}:{secret}@" + ",".join(n.address for n in cluster.nodes)
        metrics = Metrics()
        l2 = L2(url, prefix, metrics, timeout_ms=2000)
        digests = [f"{i:064x}" for i in range(20)]
        for i, digest in enumerate(digests):
            await l2.put(_request(digest), Entry({"n": i}, MODEL, tags=("t",)))
        l2._flush_writes()
        await asyncio.gather(*list(l2._tasks))
        hit = await l2.lookup(digests[3], 600)
        removed = await l2.invalidate(Selector(tags_any=("t",)))
        await l2.close()
        faults = sum(
            s.value for m in metrics.registry.collect() if m.name == "llmcache_redis_faults"
            for s in m.samples if s.name.endswith("_total")
        )  # fmt: skip
        return hit, faults, removed

    hit, faults, removed = asyncio.run(scenario())
    assert hit is not None and hit.entry.response == {"n": 3}
    assert faults == 0 and removed == 20


def _request(digest: str) -> CacheRequest:
    return CacheRequest("anthropic.messages", {}, MODEL, False, "tenant", digest, 600)


# -- Sentinel ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_sentinel_failover_under_load_loses_nothing_and_hits_resume(
    sidecar: SidecarFactory, sentinels: SentinelSet, expected: dict[str, str]
) -> None:
    proc = l2_only(sidecar, sentinels.url, "sentinel")
    warm(proc, expected)
    old = sentinels.primary
    assert sentinels.current_primary() == old.port
    with Load(proc, expected) as load:
        wait_for(lambda: load.served_since(0) > 100, timeout=20)
        killed = time.monotonic()
        old.kill()
        wait_for(lambda: sentinels.current_primary() == sentinels.replica.port, timeout=30)
        promoted = time.monotonic() - killed
        resume = load.every_prompt_hits_since(killed)
        faults = redis_faults(proc)
        report(f"sentinel: primary killed (promoted after {promoted:.1f} s)", load, killed,
               resume, faults)  # fmt: skip

        old.start()  # comes back as a primary of nothing; the Sentinels make it a replica
        back = time.monotonic()
        wait_for(lambda: old.info("ROLE")[0] == b"slave", timeout=30, interval=0.1)
        resume_back = load.every_prompt_hits_since(back)
        report("sentinel: old primary back (as a replica)", load, back, resume_back,
               redis_faults(proc) - faults)  # fmt: skip
    assert load.errors == [] and load.wrong == []
    assert faults > 0


def test_a_full_flush_empties_the_policy_on_every_primary(cluster: Cluster) -> None:
    """An empty selector (the operator's full flush) scans every primary, not one node."""
    prefix = "full:ns:p"
    with redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port) as c:
        for i in range(60):
            c.set(f"{prefix}:e:{i:064x}", b"x")
        c.set("other:ns:p:e:1", b"kept")

    async def flush() -> int:
        client = redis_client.connect(cluster.url)
        try:
            return await keyspace.flush(client, prefix)
        finally:
            await client.aclose()

    assert asyncio.run(flush()) == 60
    assert cluster_keys(cluster, f"{prefix}:*") == []
    assert cluster_keys(cluster, "other:*") == [b"other:ns:p:e:1"]
