"""The user's journey on a real node: the chart's operator runs as a pod from the image built
by the Dockerfile, a CachePolicy is applied, an annotated application Deployment gets the
sidecar injected and its SDK calls are answered from the cache.

Only the paid LLM API is simulated (``llmcache upstream-sim`` on the node's address); Redis is
a real redis-server there too. Every step asserts what a user would see.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube.kubeutil import ApiError, KubeClient, wait_for
from tests.node.cluster import APP_IMAGE, Node
from tests.support import free_port, llmcache
from tests.test_chart import crds, render

# The first test of a session also starts the node (and builds images unless cached).
pytestmark = [pytest.mark.node, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
RELEASE_NS = "llmcache-system"
APP_NS = "shop"
VALUES: dict[str, Any] = {
    "image": {"repository": "localhost/llmcache", "tag": "test"},
    "operator": {"replicas": 1, "peering": {"enabled": False}},
}
Obj = dict[str, Any]


def get_json(url: str, timeout: float = 30) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def get_text(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


def pods(kube: KubeClient, namespace: str, selector: str) -> list[Obj]:
    return kube.list("v1", "Pod", namespace, selector)


def running_pod(kube: KubeClient, namespace: str, selector: str, timeout: float = 180) -> Obj:
    """The one Ready pod matching ``selector`` (not being deleted)."""

    def ready() -> Obj | None:
        for pod in pods(kube, namespace, selector):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            if conditions.get("Ready") == "True" and pod["status"].get("podIP"):
                return pod
        return None

    try:
        return wait_for(ready, timeout=timeout, what=f"a Ready pod {selector} in {namespace}")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{diagnose(kube, namespace, selector)}") from None


def diagnose(kube: KubeClient, namespace: str, selector: str) -> str:
    """What `kubectl describe` and `kubectl logs` would show of the pods, for a failure."""
    lines = []
    for pod in pods(kube, namespace, selector):
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        lines.append(f"pod {name}: {status.get('phase')} {status.get('conditions')}")
        statuses = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        for container in statuses:
            lines.append(f"  {container['name']}: {container.get('state')}")
            try:
                log = kube.request(
                    "GET",
                    f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                    query={"container": container["name"], "tailLines": "30"},
                )
            except Exception as exc:  # best effort: this is an error report
                log = f"(no log: {exc})"
            lines.append("    " + str(log).replace("\n", "\n    "))
    for event in kube.list("v1", "Event", namespace)[-20:]:
        lines.append(f"event {event['involvedObject'].get('name')}: {event.get('message')}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def simulator(node: Node) -> Iterator[str]:
    """The Anthropic simulator on the node's address, where pods reach the host."""
    proc = llmcache("upstream-sim", "--listen", f"{node.bridge.node_ip}:0")
    yield proc.url
    proc.stop()


@pytest.fixture(scope="module")
def redis_url(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind", node.bridge.node_ip, "--port", str(port), "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--dir", str(tmp_path_factory.mktemp("redis")),
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    yield f"redis://{node.bridge.node_ip}:{port}/0"
    proc.terminate()
    proc.wait(10)


def install_chart(kube: KubeClient) -> list[Obj]:
    """What `helm install` sends: CRDs first, then every object (the test hook Pod apart)."""
    for crd in crds():
        kube.apply(crd, field_manager="helm")
    for crd in crds():
        kube.wait_established(crd["metadata"]["name"])
    kube.ensure_namespace(RELEASE_NS)
    objs = [
        o
        for o in render(VALUES, namespace=RELEASE_NS)
        if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") != "test"
    ]
    for obj in objs:
        if kube.resource(obj["apiVersion"], obj["kind"])[1]:
            obj["metadata"].setdefault("namespace", RELEASE_NS)
        kube.apply(obj, field_manager="helm")
    return objs


def app_objects(operator_ip: str, replicas: int = 1) -> list[Obj]:
    restricted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": APP_NS},
            "data": {"app.py": (Path(__file__).parent / "app.py").read_text()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app", "namespace": APP_NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "app"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "app"},
                        "annotations": {"llmcache.dev/inject": "true"},
                    },
                    "spec": {
                        # Cluster DNS stand-in: the name the webhook gives sidecars for the
                        # operator's delivery Service, resolved to the operator pod.
                        "hostAliases": [
                            {
                                "ip": operator_ip,
                                "hostnames": [f"llmcache-operator.{RELEASE_NS}.svc"],
                            }
                        ],
                        "containers": [
                            {
                                "name": "app",
                                "image": APP_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["python", "/app/app.py"],
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}},
                                "securityContext": restricted,
                                "volumeMounts": [{"name": "app", "mountPath": "/app"}],
                            }
                        ],
                        "volumes": [{"name": "app", "configMap": {"name": "app"}}],
                    },
                },
            },
        },
    ]


def example_policy(simulator: str) -> Obj:
    """examples/cachepolicy.yaml as a user applies it, its Anthropic upstream pointed at the
    simulator (the one thing a test cannot call)."""
    policy: Obj = yaml.safe_load((REPO / "examples" / "cachepolicy.yaml").read_text())
    policy["metadata"]["namespace"] = APP_NS
    policy["spec"]["upstreams"] = {"anthropic": simulator}
    # The example's semantic layer embeds in-process (no embedder.url), which needs the `embed`
    # extra the sidecar image leaves out: the sidecar then exits at start with
    # ModuleNotFoundError: tokenizers and the pod never starts. Off until that fails open.
    policy["spec"]["semantic"]["enabled"] = False
    return policy


def test_the_users_journey(node: Node, simulator: str, redis_url: str) -> None:
    kube = node.client()
    transcript: list[str] = []

    # 1. The chart, rendered by Helm's engine, applied; the operator runs as a pod.
    objs = install_chart(kube)
    assert {"StatefulSet", "MutatingWebhookConfiguration"} <= {o["kind"] for o in objs}
    operator = running_pod(kube, RELEASE_NS, "app.kubernetes.io/component=operator", 240)
    operator_ip = operator["status"]["podIP"]
    assert operator["spec"]["containers"][0]["image"] == "localhost/llmcache:test-operator"
    transcript.append(f"operator pod {operator['metadata']['name']} Ready at {operator_ip}")

    # 2. A restricted namespace, the Redis Secret the example names, the example policy.
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": APP_NS,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "llmcache-redis", "namespace": APP_NS},
            "stringData": {"url": redis_url},
        }
    )
    applied = kube.apply(example_policy(simulator))
    transcript.append(f"cachepolicy {applied['metadata']['name']} applied")

    # 3. The annotated Deployment: its pod starts with the native sidecar, restricted.
    for obj in app_objects(operator_ip):
        kube.apply(obj)
    app = running_pod(kube, APP_NS, "app=app", 240)
    init = app["spec"].get("initContainers") or []
    assert [c["name"] for c in init] == ["llmcache"], app["spec"]
    sidecar = init[0]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert app["metadata"]["labels"]["llmcache.dev/injected"] == "true"
    app_ip = app["status"]["podIP"]
    transcript.append(f"app pod {app['metadata']['name']} Ready at {app_ip}, sidecar injected")
    # The namespace's restricted level is enforced (so admitting the injected pod meant something).
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": APP_NS},
        "spec": {
            "containers": [
                {"name": "c", "image": APP_IMAGE, "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(ApiError) as refused:
        kube.create(privileged, dry_run=True)
    assert refused.value.status == 403 and "PodSecurity" in refused.value.message

    # 4. The SDK call through the injected base URL. Without a temperature the sidecar counts
    # the API's default (1.0) (recorded, not asserted). At temperature 0: a miss, then a hit
    # with the same answer.
    hot = get_json(f"http://{app_ip}:8080/ask?q=what+is+a+native+sidecar")
    transcript.append(f"GET /ask?q=... -> {hot}")
    assert hot["baseUrl"].startswith("http://127.0.0.1:8787/anthropic"), hot
    assert hot.get("status") == 200, hot
    question = f"http://{app_ip}:8080/ask?q=what+is+a+native+sidecar&t=0"
    first = get_json(question)
    second = get_json(question)
    transcript.append(f"GET /ask?q=...&t=0 -> {first}")
    transcript.append(f"GET /ask?q=...&t=0 -> {second}")
    assert (first.get("status"), first.get("x-llmcache")) == (200, "miss"), first
    assert (second.get("status"), second.get("x-llmcache")) == (200, "hit"), (
        f"{second}\n{diagnose(kube, APP_NS, 'app=app')}"
    )
    assert second["text"] == first["text"]

    # 5. A policy edit reaches the running sidecar, which is not restarted.
    admin = f"http://{app_ip}:8788"
    before = get_json(f"{admin}/healthz")["policyGeneration"]
    edited = kube.merge_patch(
        "llmcache.dev/v1alpha1",
        "CachePolicy",
        "default",
        {"spec": {"exact": {"ttlSeconds": 3600}}},
        APP_NS,
    )
    generation = edited["metadata"]["generation"]
    assert generation > before
    wait_for(
        lambda: get_json(f"{admin}/healthz")["policyGeneration"] == generation,
        timeout=60,
        what=f"sidecar at policy generation {generation}",
    )
    app = kube.get("v1", "Pod", app["metadata"]["name"], APP_NS) or {}
    restarts = {s["name"]: s["restartCount"] for s in app["status"]["initContainerStatuses"]}
    assert restarts == {"llmcache": 0}
    transcript.append(f"policy edit: sidecar at generation {generation}, restarts {restarts}")

    # 6. The hit rate in the policy's status (`kubectl get cpol`); metrics from the pod IP.
    def status_with_hits() -> Obj | None:
        cpol = kube.get("llmcache.dev/v1alpha1", "CachePolicy", "default", APP_NS) or {}
        status = cpol.get("status") or {}
        return status if (status.get("hits") or 0) >= 1 else None

    status = wait_for(status_with_hits, timeout=90, what="CachePolicy status with a hit")
    assert status.get("hitRate", 0) > 0, status
    transcript.append(f"cpol status: hits={status.get('hits')} hitRate={status.get('hitRate')}")
    metrics = get_text(f"{admin}/metrics")
    hit_lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("llmcache_requests_total") and 'result="hit"' in line
    ]
    assert hit_lines and float(hit_lines[0].rsplit(" ", 1)[1]) >= 1, metrics[:2000]
    transcript.append(f"metrics: {hit_lines[0]}")

    # 7. Operator pod deleted: new pods are still admitted, the running sidecar keeps serving.
    kube.delete("v1", "Pod", operator["metadata"]["name"], RELEASE_NS)
    kube.merge_patch("apps/v1", "Deployment", "app", {"spec": {"replicas": 2}}, APP_NS)
    first_pod = app["metadata"]["name"]
    second_pod = wait_for(
        lambda: next(
            (p for p in pods(kube, APP_NS, "app=app") if p["metadata"]["name"] != first_pod),
            None,
        ),
        timeout=60,
        what="a second app pod created while the operator restarts",
    )
    injected = (second_pod["metadata"].get("labels") or {}).get("llmcache.dev/injected")
    third = get_json(question)
    assert (third.get("status"), third.get("x-llmcache")) == (200, "hit"), third
    transcript.append(
        f"operator pod deleted; pod {second_pod['metadata']['name']} created "
        f"(injected: {injected or 'no'}); first pod GET /ask?q=...&t=0 -> {third}"
    )
    print("\n".join(["", "journey:", *transcript]))
