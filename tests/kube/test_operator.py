"""`llmcache operator` against the real kube-apiserver, as the chart's ServiceAccount (the
chart's own RBAC, rendered by Helm): validation by the API server, Ready status, a policy
edit reaching a running sidecar, statistics in status, flushes in a real Redis."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from llmcache.operator.cluster import Cluster
from llmcache.operator.store import PolicyStore
from llmcache.operator.watcher import PolicyWatcher

from llmcache import keyspace
from tests.kube.kubeutil import ApiError, ControlPlane, wait_for
from tests.kube.operator_env import (
    ANNOTATIONS,
    GROUP_VERSION,
    KIND,
    REPO,
    OperatorEnv,
    crd_document,
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
from tests.support import Proc, RedisServer, llmcache

pytestmark = pytest.mark.controlplane

NS = "op-tests"
STATS_INTERVAL = "1"


@pytest.fixture(scope="module")
def op(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorEnv]:
    # The chart's default install: replicas under kopf peering (this process is pod index 0).
    with running_operator(
        controlplane,
        tmp_path_factory.mktemp("operator"),
        [f"--stats-interval={STATS_INTERVAL}"],
        values=None,
    ) as env:
        env.kube.ensure_namespace(NS)
        yield env
        for item in env.kube.list(GROUP_VERSION, KIND, NS):
            delete_and_wait(env, NS, item["metadata"]["name"])


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def cel_message(field: str) -> str:
    schema = crd_document()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = schema["properties"]["spec"]["properties"][field]["x-kubernetes-validations"]
    return str(rules[0]["message"])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"exact": {"ttlSeconds": 0}}, "spec.exact.ttlSeconds: Invalid value: 0"),
        (
            {"sidecar": {"resources": {"limits": {"memory": "lots"}}}},
            'spec.sidecar.resources.limits.memory: Invalid value: "lots"',
        ),
        ({"sharing": {"scope": "everyone"}}, 'spec.sharing.scope: Unsupported value: "everyone"'),
        ({"semantic": {"enabled": True, "threshold": 0}}, cel_message("semantic")),
        ({"rag": {"enabled": True}}, cel_message("rag")),
    ],
    ids=["bound", "pattern", "enum", "cel-threshold", "cel-rag"],
)
def test_the_api_server_rejects_an_invalid_policy_with_a_readable_message(
    op: OperatorEnv, spec: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ApiError) as err:
        op.kube.apply(policy(NS, "invalid", spec))
    assert err.value.status == 422 and err.value.reason == "Invalid"
    assert expected in err.value.message, err.value.message
    assert op.policy(NS, "invalid") is None


def test_a_valid_policy_gets_ready_with_its_observed_generation(op: OperatorEnv) -> None:
    op.kube.apply(policy(NS, "valid", {"exact": {"ttlSeconds": 600}}))
    obj = wait_for(lambda: ready_at(op, NS, "valid", 1), timeout=30, what="Ready at generation 1")
    assert obj["status"]["mode"] == "exact(l1)"
    assert obj["metadata"]["finalizers"] == ["llmcache.dev/finalizer"]
    assert wait_for(lambda: delivered_generation(op, "valid") == 1, what="generation 1 delivered")

    op.kube.apply(policy(NS, "valid", {"exact": {"ttlSeconds": 60}, "semantic": {"enabled": True}}))
    obj = wait_for(lambda: ready_at(op, NS, "valid", 2), timeout=30, what="Ready at generation 2")
    assert obj["status"]["mode"] == "exact(l1)+semantic"
    wait_for(lambda: delivered_generation(op, "valid") == 2, what="generation 2 delivered")
    delivered = op.delivered(NS, "valid")
    assert delivered is not None and delivered["spec"]["exact"]["ttlSeconds"] == 60
    assert delivered["spec"]["semantic"]["enabled"] is True


def test_the_documented_example_policy_is_accepted_and_ready(op: OperatorEnv) -> None:
    example = yaml.safe_load((REPO / "examples" / "cachepolicy.yaml").read_text())
    example["metadata"]["namespace"] = NS
    op.kube.apply(example)
    name = example["metadata"]["name"]
    wait_for(lambda: ready_at(op, NS, name, 1), timeout=30, what="the example is Ready")
    # Its onDelete flush names a Secret that does not exist here: the deletion goes through
    # at once (no retries for what waiting cannot fix) and says why nothing was flushed.
    delete_and_wait(op, NS, name, timeout=8)
    failed = wait_for(lambda: events(op, name, "FlushFailed"), what="FlushFailed event")
    assert f"cannot read Secret {NS}/llmcache-redis (HTTP 404)" in failed[0]


def delivered_generation(op: OperatorEnv, name: str) -> int | None:
    doc = op.delivered(NS, name)
    return int(doc["generation"]) if doc else None


# --------------------------------------------------------------------------- live delivery


def verdict(url: str, model: str) -> str:
    """One Anthropic Messages call through the sidecar; its ``x-llmcache`` verdict."""
    body = {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Name the three primary colours."}],
    }
    request = urllib.request.Request(
        f"{url}/anthropic/v1/messages",
        data=json.dumps(body).encode(),
        headers={
            "x-api-key": "test-key",
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        },
        method="POST",
    )

    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
        return str(resp.headers["x-llmcache"])


@pytest.fixture
def upstream() -> Iterator[Proc]:
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    yield sim
    sim.stop()


def test_a_policy_edit_reaches_a_running_sidecar_and_its_stats_reach_status(
    op: OperatorEnv, upstream: Proc
) -> None:
    spec = {"upstreams": {"anthropic": upstream.url}}
    op.kube.apply(policy(NS, "live", spec))
    wait_for(lambda: ready_at(op, NS, "live", 1), timeout=30, what="policy live Ready")
    wait_for(lambda: op.delivered(NS, "live"), timeout=30, what="policy live delivered")
    wait_webhook_live(op, NS, "live")

    created = op.kube.create(pod(NS, "app-live", {**ANNOTATIONS, "llmcache.dev/policy": "live"}))
    container = injected_container(created)
    assert container is not None
    sidecar = run_sidecar_from(op, container, NS, "app-live", LLMCACHE_STATS_INTERVAL="0.5")
    try:
        url = sidecar.url
        assert verdict(url, "claude-haiku-4-5") == "miss"
        assert verdict(url, "claude-haiku-4-5") == "hit"

        op.kube.apply(
            policy(NS, "live", {**spec, "cacheability": {"excludeModels": ["claude-haiku-*"]}})
        )
        wait_for(
            lambda: verdict(url, "claude-haiku-4-5") == "bypass",
            timeout=30,
            interval=0.3,
            what="the edit reaches the running sidecar",
        )
        assert sidecar.popen.poll() is None  # the same process throughout
        wait_for(lambda: "policy generation 2 applied" in sidecar.output(), what="sidecar log")

        def reported() -> dict[str, Any] | None:
            status = (op.policy(NS, "live") or {}).get("status") or {}
            done = status.get("injectedPods") == 1 and status.get("requests", 0) >= 3
            return status if done else None

        status = wait_for(reported, timeout=30, what="sidecar stats in the policy's status")
        assert 0 < status["hitRate"] < 1
        assert status["hits"] >= 1
    finally:
        sidecar.stop()


def push_stats(
    base: str, name: str, pod_name: str, instance: str, since: Counts | None, to: Counts
) -> int:
    """What a sidecar sends every stats interval (``LLMCACHE_STATS_URL``): its counters at
    its last acknowledged report and now; the answer's status (204 once written)."""
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


Counts = dict[str, int]


def test_stats_that_reach_a_standby_replica_are_counted_once_in_status(
    op: OperatorEnv, tmp_path: Path
) -> None:
    """The Service spreads sidecars over all replicas, and kopf runs handlers on the active
    one only: what a standby hears must reach status too, each replica writes only its own
    sums (never a per-pod entry), and a report is counted once wherever it went."""
    op.kube.apply(policy(NS, "ha", {}))
    wait_for(lambda: ready_at(op, NS, "ha", 1), timeout=30, what="policy ha Ready")
    with standby_replica(op, tmp_path) as standby:
        # kopf starts a replica paused and resumes it only if no live peer outranks it
        wait_for(lambda: "Keep-alive in" in standby.output(), what="the standby's peering")
        assert "cachepolicies.v1alpha1.llmcache.dev cluster-wide (paused)" in standby.output()
        standby_url = standby.urls[0]
        wait_for(lambda: delivered_by(standby_url, "ha"), what="the standby knows the policy")

        def totals(requests: int, hits: int, pods: int | None) -> dict[str, Any] | None:
            """``pods`` None: any number (a pod heard by both replicas within three
            intervals counts in each)."""
            status = (op.policy(NS, "ha") or {}).get("status") or {}
            seen = (status.get("requests"), status.get("hits"))
            counted = pods is None or status.get("injectedPods") == pods
            return status if seen == (requests, hits) and counted else None

        active = op.delivery_url
        a1, b1 = {"requests": 10, "hits": 4}, {"requests": 20, "hits": 8}
        assert push_stats(active, "ha", "app-a", "a", None, a1) == 204
        assert push_stats(standby_url, "ha", "app-b", "b", None, b1) == 204
        status = wait_for(lambda: totals(30, 12, 2), timeout=30,
                          what="stats heard by both replicas in status")  # fmt: skip
        assert status["hitRate"] == 0.4 and "sidecars" not in status
        assert set(status["ledger"]["replicas"]) == {"llmcache-operator-0", "llmcache-operator-1"}
        # app-b's answer was lost: it sends the same report again (to the same replica)...
        assert push_stats(standby_url, "ha", "app-b", "b", None, b1) == 204
        # ...and its next report lands on the active replica, from what was acknowledged
        b2 = {"requests": 25, "hits": 10}
        assert push_stats(active, "ha", "app-b", "b", b1, b2) == 204
        wait_for(lambda: totals(35, 14, None), timeout=30,
                 what="a resent report and a pod that moved counted once")  # fmt: skip
        assert "Resuming operations" not in standby.output()  # it stood by throughout
    # Pods that stop reporting leave injectedPods after three intervals; what they reported
    # stays counted (the totals never go down).
    wait_for(lambda: totals(35, 14, 0), timeout=30, what="silent pods no longer counted")


def delivered_by(base: str, name: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/v1/policies/{NS}/{name}", timeout=10):
            return True
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise


# --------------------------------------------------------------------------- flush


def populate(client: redis.Redis, prefix: str, entries: dict[str, tuple[str, list[str]]]) -> None:
    """Entries as the sidecar writes them: ``P:e:<digest>`` plus model and tag index sets."""
    for digest, (model, tags) in entries.items():
        key = keyspace.entry_key(prefix, digest)
        client.set(key, b"cached answer")
        client.sadd(keyspace.model_key(prefix, model), key)
        for tag in tags:
            client.sadd(keyspace.tag_key(prefix, tag), key)


def entry_count(client: redis.Redis, prefix: str) -> int:
    return sum(1 for _ in client.scan_iter(match=f"{prefix}:e:*"))


def redis_secret(op: OperatorEnv, url: str) -> None:
    op.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "cache-redis", "namespace": NS},
            "data": {"url": base64.b64encode(url.encode()).decode()},
        }
    )


def last_flush(op: OperatorEnv, name: str, request: str) -> dict[str, Any] | None:
    record = ((op.policy(NS, name) or {}).get("status") or {}).get("lastFlush") or {}
    return record if record.get("id") == request else None


def events(op: OperatorEnv, name: str, reason: str) -> list[str]:
    """Messages of the Events with ``reason`` on the policy ``name`` (`kubectl describe`)."""
    return [
        e["message"]
        for e in op.kube.list("v1", "Event", NS)
        if e["involvedObject"]["name"] == name and e.get("reason") == reason
    ]


def flushed_events(op: OperatorEnv, name: str) -> list[str]:
    return events(op, name, "Flushed")


def test_a_flush_annotation_empties_the_policy_in_redis_and_reports_the_count(
    op: OperatorEnv, redis_server: RedisServer
) -> None:
    redis_secret(op, redis_server.url)
    spec = {"redis": {"urlSecretRef": {"name": "cache-redis", "key": "url"}}}
    op.kube.apply(policy(NS, "flushable", spec))
    wait_for(lambda: ready_at(op, NS, "flushable", 1), timeout=30, what="policy Ready")
    client = redis_server.client()
    mine = keyspace.policy_prefix("llmcache", NS, "flushable")
    other = keyspace.policy_prefix("llmcache", NS, "someone-else")
    populate(client, mine, {"a1": ("m1", ["faq"]), "a2": ("m1", ["faq", "eu"]), "a3": ("m2", [])})
    populate(client, other, {"b1": ("m1", ["faq"])})

    # By tag first, as `kubectl annotate cachepolicy flushable \
    #     llmcache.dev/flush=1 llmcache.dev/flush-tags=eu` does:
    op.kube.merge_patch(
        GROUP_VERSION,
        KIND,
        "flushable",
        {"metadata": {"annotations": {"llmcache.dev/flush": "1", "llmcache.dev/flush-tags": "eu"}}},
        NS,
    )
    record = wait_for(lambda: last_flush(op, "flushable", "1"), timeout=30, what="flush 1 done")
    assert record["removed"] == 1 and record["tags"] == ["eu"]
    assert entry_count(client, mine) == 2

    # Then everything: `kubectl annotate --overwrite cachepolicy flushable \
    #     llmcache.dev/flush=2 llmcache.dev/flush-tags-`
    op.kube.merge_patch(
        GROUP_VERSION,
        KIND,
        "flushable",
        {"metadata": {"annotations": {"llmcache.dev/flush": "2", "llmcache.dev/flush-tags": None}}},
        NS,
    )
    record = wait_for(lambda: last_flush(op, "flushable", "2"), timeout=30, what="flush 2 done")
    assert record["removed"] == 2 and record["tags"] == []
    assert list(client.scan_iter(match=f"{mine}:*")) == []
    assert entry_count(client, other) == 1  # another policy's entries are untouched

    def two_flushed_events() -> list[str] | None:
        messages = flushed_events(op, "flushable")
        return messages if len(messages) >= 2 else None

    messages = wait_for(two_flushed_events, timeout=30, what="Flushed events")
    assert any("flush 2: removed 2 entries (all entries)" in m for m in messages), messages


def test_a_policy_created_with_a_flush_request_flushes_once(
    op: OperatorEnv, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    prefix = keyspace.policy_prefix("llmcache", NS, "born-flushing")
    populate(client, prefix, {"d1": ("m1", []), "d2": ("m1", []), "d3": ("m2", [])})
    spec = {"redis": {"url": redis_server.url}}
    annotations = {"llmcache.dev/flush": "at-create", "llmcache.dev/flush-model": "m1"}
    op.kube.apply(policy(NS, "born-flushing", spec, annotations=annotations))
    record = wait_for(lambda: last_flush(op, "born-flushing", "at-create"), what="flush done")
    assert record["removed"] == 2 and record["model"] == "m1"
    assert entry_count(client, prefix) == 1

    # A later spec edit re-runs reconcile, not the (already answered) flush request.
    op.kube.apply(
        policy(NS, "born-flushing", {**spec, "exact": {"ttlSeconds": 60}}, annotations=annotations)
    )
    wait_for(lambda: ready_at(op, NS, "born-flushing", 2), what="Ready at generation 2")
    assert last_flush(op, "born-flushing", "at-create") == record


def test_a_flush_that_cannot_run_says_why_and_is_not_retried(op: OperatorEnv) -> None:
    spec = {"redis": {"urlSecretRef": {"name": "no-such-secret", "key": "url"}}}
    op.kube.apply(policy(NS, "unflushable", spec, annotations={"llmcache.dev/flush": "x1"}))
    record = wait_for(lambda: last_flush(op, "unflushable", "x1"), what="flush answered")
    assert record["removed"] == 0
    assert record["error"] == f"cannot read Secret {NS}/no-such-secret (HTTP 404)"
    assert wait_for(lambda: events(op, "unflushable", "FlushFailed"), what="FlushFailed event")
    delete_and_wait(op, NS, "unflushable")


@pytest.mark.parametrize("on_delete", ["flush", "keep"])
def test_deleting_a_policy_honours_on_delete(
    op: OperatorEnv, redis_server: RedisServer, on_delete: str
) -> None:
    name = f"deleted-{on_delete}"
    op.kube.apply(policy(NS, name, {"redis": {"url": redis_server.url}, "onDelete": on_delete}))
    wait_for(lambda: ready_at(op, NS, name, 1), timeout=30, what="policy Ready")
    client = redis_server.client()
    prefix = keyspace.policy_prefix("llmcache", NS, name)
    populate(client, prefix, {"c1": ("m1", []), "c2": ("m2", ["t"])})

    delete_and_wait(op, NS, name)
    assert entry_count(client, prefix) == (0 if on_delete == "flush" else 2)
    assert op.delivered(NS, name) is None


# --------------------------------------------------------------------------- RBAC


def test_the_operator_identity_is_not_an_admin(op: OperatorEnv) -> None:
    """Everything above ran under the chart's RBAC, which reaches no pods, lists no Secrets and
    cannot touch webhook configurations."""
    for verb, path in [
        ("GET", f"/api/v1/namespaces/{NS}/pods"),
        ("GET", f"/api/v1/namespaces/{NS}/secrets"),
        ("DELETE", f"/apis/{GROUP_VERSION}/namespaces/{NS}/cachepolicies/valid"),
        # The chart renders the webhook configuration; the operator cannot change it.
        (
            "GET",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/llmcache-injector",
        ),
    ]:
        with pytest.raises(ApiError) as err:
            op.as_operator.request(verb, path)
        assert err.value.status == 403, (verb, path)


# --------------------------------------------------------------------------- watch


async def until(predicate: Callable[[], Any], within: float = 30.0) -> Any:
    """Poll without blocking the loop the in-process watcher runs on."""
    async with asyncio.timeout(within):
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.05)


async def test_the_delivery_watch_resumes_where_the_server_ended_it(
    op: OperatorEnv,
) -> None:
    """The server ends every watch after its timeout; the delivery store's watcher (here
    in-process, same code and identity as the operator's) watches again from the last
    resourceVersion it saw, without a new list, and misses no change."""
    cluster, store = await Cluster.connect(kubeconfig=str(op.sa_kubeconfig)), PolicyStore()
    watcher = PolicyWatcher(cluster, store, NS, watch_seconds=1)
    task = asyncio.create_task(watcher.run())
    try:
        await until(watcher.synced.is_set)
        await asyncio.to_thread(op.kube.apply, policy(NS, "rewatched"))
        await until(lambda: store.get(NS, "rewatched"))
        seen = watcher.watches
        await until(lambda: watcher.watches >= seen + 2)  # ended by the server, watched again
        await asyncio.to_thread(
            op.kube.apply, policy(NS, "rewatched", {"exact": {"ttlSeconds": 60}})
        )
        await until(lambda: getattr(store.get(NS, "rewatched"), "generation", 0) == 2)
        await asyncio.to_thread(delete_and_wait, op, NS, "rewatched")
        await until(lambda: store.get(NS, "rewatched") is None)
        assert watcher.lists == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cluster.close()
