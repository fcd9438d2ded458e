"""The operator's policy delivery (long poll) and stats intake over real HTTP, and the
pod mutation as a pure function. No cluster: the kube tests cover the API server's side."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from llmcache.operator.delivery import create_delivery_app
from llmcache.operator.injection import InjectionSettings, inject
from llmcache.operator.ledger import ReplicaSums
from llmcache.operator.metrics import OperatorMetrics
from llmcache.operator.store import Batch, PolicyRecord, PolicyStore, StatsStore
from llmcache.operator.webhook import mutate_pod, webhook_configuration

from llmcache.policy import CachePolicySpec
from tests.support import Proc, free_port, llmcache


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[Any, Any], PolicyStore, StatsStore]]:
    store, stats = PolicyStore(), StatsStore()
    await store.put(PolicyRecord("apps", "default", 1, CachePolicySpec()))
    client = TestClient(TestServer(create_delivery_app(store, stats, OperatorMetrics())))
    await client.start_server()
    try:
        yield client, store, stats
    finally:
        await client.close()


async def test_first_poll_answers_at_once_with_generation_and_normalised_spec(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore],
) -> None:
    client, _, _ = served
    resp = await client.get("/v1/policies/apps/default", params={"wait": "30"})
    assert resp.status == 200
    assert resp.headers["ETag"] == '"1"'
    doc = await resp.json()
    assert doc["generation"] == 1
    assert doc["spec"]["exact"]["ttlSeconds"] == 86_400  # defaults filled in, camelCase


async def test_long_poll_returns_the_edit_as_soon_as_it_happens(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore],
) -> None:
    client, store, _ = served
    poll = asyncio.create_task(
        client.get(
            "/v1/policies/apps/default", params={"wait": "60"}, headers={"If-None-Match": '"1"'}
        )
    )
    await asyncio.sleep(0)  # let the request reach the server before the edit
    assert not poll.done()
    edited = CachePolicySpec.model_validate({"exact": {"ttlSeconds": 60}})
    await store.put(PolicyRecord("apps", "default", 2, edited))
    resp = await asyncio.wait_for(poll, 10)
    assert resp.status == 200 and resp.headers["ETag"] == '"2"'
    assert (await resp.json())["spec"]["exact"]["ttlSeconds"] == 60


async def test_unchanged_policy_answers_304_after_wait(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore],
) -> None:
    client, _, _ = served
    resp = await client.get(
        "/v1/policies/apps/default", params={"wait": "0.2"}, headers={"If-None-Match": '"1"'}
    )
    assert resp.status == 304


async def test_missing_or_deleted_policy_is_404(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore],
) -> None:
    client, store, _ = served
    assert (await client.get("/v1/policies/apps/nope")).status == 404
    poll = asyncio.create_task(
        client.get(
            "/v1/policies/apps/default", params={"wait": "60"}, headers={"If-None-Match": '"1"'}
        )
    )
    await asyncio.sleep(0)
    await store.remove("apps", "default")
    assert (await asyncio.wait_for(poll, 10)).status == 404


async def test_a_stats_report_is_acknowledged_only_once_its_write_succeeded(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore],
) -> None:
    client, _, stats = served
    to = {"requests": 10, "hits": 4, "savedMicroUsd": 500_000, "tokensSaved": 100}
    report = {"pod": "a", "instance": "i1", "from": None, "to": to}
    posted = asyncio.create_task(client.post("/v1/stats/apps/default", json=report))
    batch = await until_taken(stats, ("apps", "default"))
    assert batch.sums.counters["hits"] == 4 and not posted.done()  # waits for the write
    stats.failed(batch)  # the write failed: 503, nothing counted, the sidecar sends again
    assert (await posted).status == 503
    posted = asyncio.create_task(client.post("/v1/stats/apps/default", json=report))
    batch = await until_taken(stats, ("apps", "default"))
    assert batch.sums.counters["hits"] == 4
    written = ReplicaSums().merge(batch.sums)
    stats.committed("apps", "default", batch, written)
    assert (await posted).status == 204
    # the answer was lost and the sidecar sends its report again, with 1 more hit
    again = {**report, "to": {**to, "hits": 5}}
    posted = asyncio.create_task(client.post("/v1/stats/apps/default", json=again))
    batch = await until_taken(stats, ("apps", "default"))
    assert batch.sums.counters["hits"] == 1 and batch.sums.counters["requests"] == 0
    stats.committed("apps", "default", batch, written.merge(batch.sums))
    assert (await posted).status == 204
    assert stats.pods("apps", "default") == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"pod": "a", "instance": "i", "to": {"hits": -1}}',
        b'{"pod": "a", "instance": "i", "to": {"hits": 1.5}}',
        b'{"pod": "a", "to": {"hits": 1}}',
        b'{"instance": "i", "to": {}}',
    ],
    ids=["not-json", "negative", "float", "no-instance", "no-pod"],
)
async def test_a_bad_stats_report_is_refused_with_a_reason_and_counts_nothing(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore], body: bytes
) -> None:
    client, _, stats = served
    resp = await client.post("/v1/stats/apps/default", data=body)
    assert resp.status == 400 and (await resp.text()).strip()
    assert stats.take() == {}


async def test_stats_for_an_unknown_policy_are_404(
    served: tuple[TestClient[Any, Any], PolicyStore, StatsStore],
) -> None:
    client, _, _ = served
    report = {"pod": "a", "instance": "i", "from": None, "to": {}}
    assert (await client.post("/v1/stats/apps/nope", json=report)).status == 404


async def until_taken(stats: StatsStore, key: tuple[str, str]) -> Batch:
    async def taken() -> Batch | None:
        return stats.take().get(key)

    batch: Batch = await until(taken)
    return batch


# ---- injection ----------------------------------------------------------------------------

SETTINGS = InjectionSettings(
    sidecar_image="example.org/llmcache:1", operator_url="http://op.llmcache-system.svc:8081"
)


def pod(annotations: dict[str, str] | None = None, env: list[dict[str, Any]] | None = None) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "apps", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "app:1", "env": env or []}]},
    }


def test_injects_a_native_sidecar_with_the_contract_env() -> None:
    spec = CachePolicySpec.model_validate({"redis": {"url": "redis://r:6379/0"}})
    p = pod()
    inject(p, "apps", "default", 3, spec, SETTINGS)
    sidecar = p["spec"]["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always" and sidecar["args"] == ["sidecar"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in sidecar["env"]}
    assert env["LLMCACHE_LISTEN"] == "127.0.0.1:8787"
    assert env["LLMCACHE_ADMIN_LISTEN"] == "0.0.0.0:8788"
    assert (
        env["LLMCACHE_POLICY_URL"] == "http://op.llmcache-system.svc:8081/v1/policies/apps/default"
    )
    assert env["LLMCACHE_STATS_URL"] == "http://op.llmcache-system.svc:8081/v1/stats/apps/default"
    assert env["LLMCACHE_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["LLMCACHE_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["LLMCACHE_REDIS_URL"] == "redis://r:6379/0"
    assert CachePolicySpec.model_validate_json(env["LLMCACHE_POLICY_JSON"]) == spec
    sc = sidecar["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["resources"]["limits"]["memory"] == "512Mi"
    app_env = {e["name"]: e["value"] for e in p["spec"]["containers"][0]["env"]}
    assert app_env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8787/anthropic"
    assert app_env["OPENAI_BASE_URL"] == "http://127.0.0.1:8787/openai/v1"
    assert p["metadata"]["labels"] == {
        "llmcache.dev/injected": "true",
        "llmcache.dev/policy": "default",
    }


def test_secret_redis_url_stays_a_reference_and_app_env_is_not_overridden() -> None:
    spec = CachePolicySpec.model_validate({"redis": {"urlSecretRef": {"name": "r", "key": "url"}}})
    p = pod(env=[{"name": "OPENAI_BASE_URL", "value": "https://mine"}])
    inject(p, "apps", "default", 1, spec, SETTINGS)
    env = {e["name"]: e for e in p["spec"]["initContainers"][0]["env"]}
    assert env["LLMCACHE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "r", "key": "url"}
    app_env = [e for e in p["spec"]["containers"][0]["env"] if e["name"] == "OPENAI_BASE_URL"]
    assert app_env == [{"name": "OPENAI_BASE_URL", "value": "https://mine"}]


def test_embedder_key_comes_from_its_secret_never_the_spec() -> None:
    spec = CachePolicySpec.model_validate(
        {
            "semantic": {
                "enabled": True,
                "embedder": {
                    "url": "http://embedder:8080",
                    "apiKeySecretRef": {"name": "voyage", "key": "token"},
                },
            }
        }
    )
    p = pod()
    inject(p, "apps", "default", 1, spec, SETTINGS)
    env = {e["name"]: e for e in p["spec"]["initContainers"][0]["env"]}
    ref = env["LLMCACHE_EMBEDDER_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "voyage", "key": "token"}
    unconfigured = pod()
    inject(unconfigured, "apps", "default", 1, CachePolicySpec(), SETTINGS)
    names = {e["name"] for e in unconfigured["spec"]["initContainers"][0]["env"]}
    assert "LLMCACHE_EMBEDDER_API_KEY" not in names


def test_injection_is_idempotent() -> None:
    p = pod()
    inject(p, "apps", "default", 1, CachePolicySpec(), SETTINGS)
    once = copy.deepcopy(p)
    inject(p, "apps", "default", 1, CachePolicySpec(), SETTINGS)
    assert p == once


async def test_mutation_decides_from_annotation_and_policy() -> None:
    store = PolicyStore()
    await store.put(PolicyRecord("apps", "fast", 2, CachePolicySpec()))
    warnings: list[str] = []
    assert mutate_pod(pod(), "apps", store, SETTINGS, warnings) == ("skipped", None)
    result, mutated = mutate_pod(
        pod({"llmcache.dev/inject": "true"}), "apps", store, SETTINGS, warnings
    )
    assert result == "injected" and mutated is not None
    assert mutated["metadata"]["labels"]["llmcache.dev/policy"] == "fast"  # the only one
    assert mutate_pod(mutated, "apps", store, SETTINGS, warnings)[0] == "skipped"  # once
    await store.put(PolicyRecord("apps", "other", 1, CachePolicySpec()))
    result, _ = mutate_pod(pod({"llmcache.dev/inject": "true"}), "apps", store, SETTINGS, warnings)
    assert result == "skipped" and "not found" in warnings[-1]  # two and none named default
    asked = pod({"llmcache.dev/inject": "true", "llmcache.dev/policy": "other"})
    result, mutated = mutate_pod(asked, "apps", store, SETTINGS, warnings)
    assert mutated is not None and mutated["metadata"]["labels"]["llmcache.dev/policy"] == "other"


def test_webhook_configuration_never_blocks_pods() -> None:
    body = webhook_configuration("llmcache-injector", {"url": "https://127.0.0.1:9443/inject"})
    hook = body["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] <= 5
    assert hook["sideEffects"] == "None"
    assert hook["rules"][0]["operations"] == ["CREATE"]
    expr = hook["namespaceSelector"]["matchExpressions"][0]
    assert expr == {"key": "llmcache.dev/injection", "operator": "NotIn", "values": ["disabled"]}
    opt_in = webhook_configuration("x", {"url": "u"}, opt_in=True)["webhooks"][0]
    assert opt_in["namespaceSelector"]["matchExpressions"][0]["operator"] == "In"
    json.dumps(body)  # serialisable as is


# ---- a real sidecar process, started from the injected container --------------------------


def sidecar_from_container(
    container: dict[str, Any], namespace: str, pod_name: str, **overrides: str
) -> Proc:
    """Run the injected container's command (``llmcache`` + its args, the image's entrypoint
    replaced by ``python -m llmcache``) with its env, the downward-API values filled in, and
    the listen addresses moved to free loopback ports."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            env[item["name"]] = {"metadata.namespace": namespace, "metadata.name": pod_name}[path]
    env.update(
        LLMCACHE_LISTEN=f"127.0.0.1:{free_port()}",
        LLMCACHE_ADMIN_LISTEN=f"127.0.0.1:{free_port()}",
        LLMCACHE_STATS_INTERVAL="0.5",
        **overrides,
    )
    return llmcache(*container["args"], env=env, count=2)


async def ask(session: aiohttp.ClientSession, sidecar: str, model: str) -> str:
    body = {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Name the three primary colours."}],
    }
    headers = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
    async with session.post(f"{sidecar}/anthropic/v1/messages", json=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        return r.headers["x-llmcache"]


async def until(predicate: Any, within: float = 15.0) -> Any:
    """Await ``predicate()`` until truthy, without blocking the loop serving the operator."""
    async with asyncio.timeout(within):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.1)


async def test_policy_edit_reaches_a_running_sidecar_without_restart() -> None:
    store, stats = PolicyStore(), StatsStore()
    runner = web.AppRunner(create_delivery_app(store, stats, OperatorMetrics()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sim = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    sidecar: Proc | None = None
    try:
        spec = CachePolicySpec.model_validate({"upstreams": {"anthropic": sim.url}})
        await store.put(PolicyRecord("apps", "default", 1, spec))
        p = pod({"llmcache.dev/inject": "true"})
        settings = InjectionSettings(sidecar_image="x", operator_url=f"http://127.0.0.1:{port}")
        _, mutated = mutate_pod(p, "apps", store, settings, [])
        assert mutated is not None
        sidecar = sidecar_from_container(mutated["spec"]["initContainers"][0], "apps", "app-1")
        url = sidecar.url
        async with aiohttp.ClientSession() as session:
            assert await ask(session, url, "claude-haiku-4-5") == "miss"
            assert await ask(session, url, "claude-haiku-4-5") == "hit"
            edited = spec.model_validate(
                {**spec.to_json(), "cacheability": {"excludeModels": ["claude-haiku-*"]}}
            )
            await store.put(PolicyRecord("apps", "default", 2, edited))

            async def bypassed() -> bool:
                return await ask(session, url, "claude-haiku-4-5") == "bypass"

            await until(bypassed)
            assert sidecar.popen.poll() is None  # the same process, never restarted

            written = ReplicaSums()

            async def reported() -> bool:
                nonlocal written
                batch = stats.take().get(("apps", "default"))
                if batch is not None:  # as the publisher does after a successful write
                    written = written.merge(batch.sums)
                    stats.committed("apps", "default", batch, written)
                return written.counters["requests"] >= 3

            await until(reported)
            assert stats.pods("apps", "default") == 1
    finally:
        if sidecar is not None:
            sidecar.stop()
        sim.stop()
        await runner.cleanup()
