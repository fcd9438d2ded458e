"""Sidecar injection through the real API server: the chart's MutatingWebhookConfiguration
calls `llmcache operator` (running as the chart's ServiceAccount) on 127.0.0.1, and the pod
the API server stores is what a kubelet would run. No kubelet here: pods stay Pending."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from llmcache.policy import CachePolicySpec
from tests.kube.kubeutil import ControlPlane, KubeClient, wait_for
from tests.kube.operator_env import (
    ANNOTATIONS,
    OperatorEnv,
    chart,
    delete_and_wait,
    injected_container,
    pod,
    policy,
    ready_at,
    running_operator,
    wait_webhook_live,
    webhook_configuration,
)
from tests.support import free_port

pytestmark = pytest.mark.controlplane

NS = "wh-tests"
DISABLED_NS = "wh-disabled"
PORT = 9797
SPEC: dict[str, Any] = {
    "sidecar": {"port": PORT},
    "redis": {"urlSecretRef": {"name": "cache-redis", "key": "url"}},
}


@pytest.fixture(scope="module")
def op(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorEnv]:
    # Authenticated by a ServiceAccount token, as in a pod (test_operator.py: a certificate).
    with running_operator(controlplane, tmp_path_factory.mktemp("webhook"), token=True) as env:
        env.kube.ensure_namespace(NS)
        env.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": DISABLED_NS, "labels": {"llmcache.dev/injection": "disabled"}},
            }
        )
        for namespace in (NS, DISABLED_NS):
            env.kube.apply(policy(namespace, "default", SPEC))
        for namespace in (NS, DISABLED_NS):
            wait_for(partial(ready_at, env, namespace, "default", 1), what="policy Ready")
        wait_webhook_live(env, NS, "default")
        yield env
        for namespace in (NS, DISABLED_NS):
            delete_and_wait(env, namespace, "default")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def webhook_requests(op: OperatorEnv) -> dict[str, float]:
    """``llmcache_webhook_requests_total`` by result, from the operator's /metrics."""
    with urllib.request.urlopen(f"{op.metrics_url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.findall(r'^llmcache_webhook_requests_total\{result="(\w+)"\} (\S+)$', text, re.M)
    return {result: float(value) for result, value in found}


def test_an_annotated_pod_is_stored_with_the_sidecar_injected(op: OperatorEnv) -> None:
    app_env = [{"name": "OPENAI_BASE_URL", "value": "http://my-proxy/v1"}]
    stored = op.kube.create(pod(NS, "app", ANNOTATIONS, env=app_env))
    assert (op.kube.get("v1", "Pod", "app", NS) or {}).get("spec") == stored["spec"]

    init = stored["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["llmcache"]  # exactly one
    sidecar = init[0]
    # A native sidecar: an init container that keeps running beside the app.
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "ghcr.io/llmcache/llmcache:0.1.0"  # the chart's --sidecar-image
    assert sidecar["args"] == ["sidecar"] and "command" not in sidecar

    env = env_of(sidecar)
    service = op.service_url  # the chart's in-cluster operator Service
    assert env["LLMCACHE_LISTEN"] == f"127.0.0.1:{PORT}"
    assert env["LLMCACHE_ADMIN_LISTEN"] == f"0.0.0.0:{PORT + 1}"
    assert env["LLMCACHE_POLICY_NAME"] == "default"
    assert env["LLMCACHE_POLICY_URL"] == f"{service}/v1/policies/{NS}/default"
    assert env["LLMCACHE_STATS_URL"] == f"{service}/v1/stats/{NS}/default"
    assert env["LLMCACHE_NAMESPACE"] == {
        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}
    }
    assert env["LLMCACHE_POD_NAME"] == {
        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}
    }
    assert env["LLMCACHE_REDIS_URL"] == {"secretKeyRef": {"name": "cache-redis", "key": "url"}}
    started_with = CachePolicySpec.model_validate_json(env["LLMCACHE_POLICY_JSON"])
    assert started_with.to_json() == (op.delivered(NS, "default") or {})["spec"]

    # Probes on the admin port (kubelet reaches it; the proxy port stays on loopback).
    assert sidecar["ports"] == [
        {"name": "llmcache-admin", "containerPort": PORT + 1, "protocol": "TCP"}
    ]
    for probe, path in [
        ("startupProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ]:
        assert sidecar[probe]["httpGet"]["path"] == path
        assert sidecar[probe]["httpGet"]["port"] == "llmcache-admin"
    security = sidecar["securityContext"]
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert sidecar["resources"]["limits"]["memory"] == "512Mi"

    app = stored["spec"]["containers"][0]
    assert env_of(app)["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{PORT}/anthropic"
    assert env_of(app)["OPENAI_BASE_URL"] == "http://my-proxy/v1"  # already set: kept
    assert stored["metadata"]["labels"]["llmcache.dev/injected"] == "true"
    assert stored["metadata"]["annotations"]["llmcache.dev/policy-generation"] == "1"


def test_injection_happens_once_across_updates_and_recreation(op: OperatorEnv) -> None:
    manifest = pod(NS, "twice", ANNOTATIONS)
    first = op.kube.create(manifest)
    assert len(first["spec"]["initContainers"]) == 1

    # An update (labels, as `kubectl label` does) is not re-mutated.
    op.kube.merge_patch("v1", "Pod", "twice", {"metadata": {"labels": {"tier": "web"}}}, NS)
    # Re-applying the original manifest server-side (`kubectl apply --server-side`).
    reapplied = op.kube.apply(manifest, field_manager="kubectl")
    assert [c["name"] for c in reapplied["spec"]["initContainers"]] == ["llmcache"]
    assert [len(c.get("env") or []) for c in reapplied["spec"]["containers"]] == [2]

    # Recreated from its own dump (`kubectl get -o yaml | kubectl create -f -`): already
    # injected, so the webhook leaves it as it is.
    dump = json.loads(json.dumps(reapplied))
    dump["metadata"] = {
        "name": "twice-copy",
        "namespace": NS,
        "annotations": dump["metadata"]["annotations"],
        "labels": dump["metadata"]["labels"],
    }
    dump.pop("status", None)
    copy = op.kube.create(dump)
    assert [c["name"] for c in copy["spec"]["initContainers"]] == ["llmcache"]
    assert [e["name"] for e in copy["spec"]["containers"][0]["env"]] == [
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
    ]


def test_a_pod_without_the_annotation_is_untouched(op: OperatorEnv) -> None:
    before = webhook_requests(op)
    stored = op.kube.create(pod(NS, "plain"))
    assert "initContainers" not in stored["spec"]
    assert "env" not in stored["spec"]["containers"][0]
    assert "llmcache.dev/injected" not in (stored["metadata"].get("labels") or {})
    after = webhook_requests(op)
    assert after.get("skipped", 0) == before.get("skipped", 0) + 1  # asked, and declined


def test_a_namespace_labelled_disabled_is_never_sent_to_the_webhook(op: OperatorEnv) -> None:
    before = webhook_requests(op)
    stored = op.kube.create(pod(DISABLED_NS, "app", ANNOTATIONS))
    assert injected_container(stored) is None
    assert "env" not in stored["spec"]["containers"][0]
    assert webhook_requests(op) == before  # the API server did not even call it


def test_a_missing_policy_admits_the_pod_uninjected(op: OperatorEnv) -> None:
    annotations = {**ANNOTATIONS, "llmcache.dev/policy": "no-such-policy"}
    stored = op.kube.create(pod(NS, "orphan", annotations))
    assert injected_container(stored) is None


def test_pods_are_created_when_the_webhook_is_unreachable(
    op: OperatorEnv, kube: KubeClient
) -> None:
    """The chart's failurePolicy/timeout, with nothing listening: pods still start (uncached)."""
    namespace = "wh-operator-down"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"llmcache-test": "operator-down"}},
        }
    )
    config = webhook_configuration(chart(), f"https://127.0.0.1:{free_port()}", b"")
    config["metadata"]["name"] = "llmcache-injector-down"
    for hook in config["webhooks"]:
        hook["clientConfig"].pop("caBundle")
        hook["namespaceSelector"] = {"matchLabels": {"llmcache-test": "operator-down"}}
    assert config["webhooks"][0]["failurePolicy"] == "Ignore"
    kube.apply(config)
    try:
        stored = kube.create(pod(namespace, "app", ANNOTATIONS))
        assert injected_container(stored) is None
        assert kube.get("v1", "Pod", "app", namespace) is not None
    finally:
        kube.delete(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            config["metadata"]["name"],
        )


def test_the_webhook_configuration_in_use_is_the_charts(op: OperatorEnv) -> None:
    config = op.kube.get(
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "llmcache-injector"
    )
    assert config is not None
    hook = config["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] <= 10
    assert hook["clientConfig"]["url"] == f"{op.webhook_url}/inject"
    assert {"key": "llmcache.dev/injection", "operator": "NotIn", "values": ["disabled"]} in hook[
        "namespaceSelector"
    ]["matchExpressions"]
