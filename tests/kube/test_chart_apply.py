"""Every object the chart renders, sent to the real kube-apiserver of the harness with a
server-side-apply dry run: the API server's own schema validation, defaulting and admission
judge them (not a client-side linter). CRDs from the chart's crds/ are installed for real
first. prometheus-operator and cert-manager kinds, whose CRDs are not in this cluster, are
checked structurally in tests/test_chart.py instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.kube.kubeutil import ApiError, KubeClient
from tests.test_chart import ALL_ON, NAMESPACE, SINGLE, crds, render

pytestmark = pytest.mark.controlplane

# Kinds whose CRDs belong to other projects (prometheus-operator, cert-manager).
FOREIGN = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PodMonitor", "PrometheusRule"},
    "cert-manager.io/v1": {"Certificate", "Issuer", "ClusterIssuer"},
}


@pytest.fixture(scope="module")
def cluster(kube: KubeClient) -> KubeClient:
    """The harness's admin client, with the chart's CRDs installed (for real, as Helm does
    from crds/) and the release namespace present."""
    for crd in crds():
        kube.apply(crd, field_manager="helm")
    for crd in crds():
        kube.wait_established(crd["metadata"]["name"])
    kube.ensure_namespace(NAMESPACE)
    return kube


def dry_run_all(kube: KubeClient, values: dict[str, Any] | None) -> list[str]:
    applied = []
    for obj in render(values):
        if obj["kind"] in FOREIGN.get(obj["apiVersion"], ()):
            continue
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            body = kube.apply(obj, dry_run=True, field_manager="helm")
        except ApiError as err:
            raise AssertionError(f"{what} rejected by the API server: {err}") from None
        assert body["kind"] == obj["kind"] and body["metadata"]["name"] == obj["metadata"]["name"]
        applied.append(what)
    return applied


@pytest.mark.parametrize(
    "values", [None, ALL_ON, SINGLE], ids=["defaults", "all-on", "single-replica"]
)
def test_every_rendered_object_passes_server_side_dry_run(
    cluster: KubeClient, values: dict[str, Any] | None
) -> None:
    applied = dry_run_all(cluster, values)
    assert "StatefulSet/llmcache-operator" in applied
    assert "MutatingWebhookConfiguration/llmcache-injector" in applied
    if values is ALL_ON:
        assert {"Deployment/llmcache-redis", "Deployment/llmcache-embedder"} <= set(applied)
        assert "ConfigMap/llmcache-dashboard-overview" in applied


def test_the_dry_run_rejects_what_the_api_server_would(cluster: KubeClient) -> None:
    """The check has teeth: a StatefulSet with an invalid field is refused by the server."""
    deployment = next(o for o in render() if o["kind"] == "StatefulSet")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(ApiError) as err:
        cluster.apply(broken, dry_run=True, field_manager="helm")
    assert err.value.status == 422, err.value.body
    assert "containerPort" in json.dumps(err.value.body)


def test_the_cachepolicy_crd_from_the_chart_is_served(cluster: KubeClient) -> None:
    collection, namespaced = cluster.resource("llmcache.dev/v1alpha1", "CachePolicy")
    assert namespaced and collection.endswith("/cachepolicies")
    policy = {
        "apiVersion": "llmcache.dev/v1alpha1",
        "kind": "CachePolicy",
        "metadata": {"name": "chart-check", "namespace": NAMESPACE},
        "spec": {},
    }
    accepted = cluster.apply(policy, dry_run=True)
    assert accepted["spec"]["exact"]["ttlSeconds"] == 86400  # the CRD's defaults apply


# Helm refuses to install over objects it does not own, and other tests in the session create
# some of the chart's objects by name (RBAC, the webhook configuration): the Helm-driven tests
# use a release, namespace and peering name of their own.
HELM_RELEASE = "chart-dryrun"
HELM_VALUES: dict[str, Any] = {"operator": {"peering": {"name": HELM_RELEASE}}}


def test_helm_itself_installs_the_chart_with_a_server_dry_run(
    cluster: KubeClient, kubeconfig: Path
) -> None:
    """`helm install --dry-run=server` through Helm's Go SDK: Helm checks for conflicts with
    live objects, builds every object against the server's discovery and sends each with
    dryRun; nothing is stored."""
    from tests.test_chart import CHART, one

    cluster.ensure_namespace(HELM_RELEASE)
    config = helm.Config(kubeconfig_path=str(kubeconfig), namespace=HELM_RELEASE)
    try:
        release = config.install(
            str(CHART), HELM_RELEASE, HELM_VALUES, namespace=HELM_RELEASE, dry_run="server"
        )
    finally:
        config.close()
    objs = [d for d in yaml.safe_load_all(release.get("manifest", "")) if d]
    kinds = {d["kind"] for d in objs}
    assert {"StatefulSet", "MutatingWebhookConfiguration", "ClusterKopfPeering"} <= kinds
    name = one(objs, "StatefulSet")["metadata"]["name"]
    assert cluster.get("apps/v1", "StatefulSet", name, HELM_RELEASE) is None


def test_upgrade_keeps_the_webhook_certificate(cluster: KubeClient, kubeconfig: Path) -> None:
    """Helm's `lookup` finds the Secret of the first install on the live server, so an upgrade
    renders the same certificate and caBundle instead of rotating them on every release."""
    from tests.test_chart import CHART, one

    cluster.ensure_namespace(HELM_RELEASE)
    first = render(HELM_VALUES, HELM_RELEASE, HELM_RELEASE)
    secret = one(first, "Secret")
    cluster.apply(secret, field_manager="helm")
    try:
        config = helm.Config(kubeconfig_path=str(kubeconfig), namespace=HELM_RELEASE)
        with helm.Chart.load(str(CHART)) as chart:
            upgraded = config.render(
                chart, HELM_VALUES, name=HELM_RELEASE, namespace=HELM_RELEASE, is_upgrade=True
            )
        config.close()
        objs = [
            d
            for path, text in upgraded.items()
            if not path.endswith(".txt")
            for d in yaml.safe_load_all(text)
            if d
        ]
        assert one(objs, "Secret")["data"] == secret["data"]
        hook = one(objs, "MutatingWebhookConfiguration")["webhooks"][0]
        assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
        # Without the live Secret (offline render) a new certificate is generated.
        offline = one(render(HELM_VALUES, HELM_RELEASE, HELM_RELEASE), "Secret")
        assert offline["data"]["tls.crt"] != secret["data"]["tls.crt"]
    finally:
        cluster.delete("v1", "Secret", secret["metadata"]["name"], HELM_RELEASE)
