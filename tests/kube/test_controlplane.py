"""The test harness itself, against the real kube-apiserver + etcd: version, CRD install,
the server's own OpenAPI and CEL validation, status subresource, RBAC by client-certificate
identity, a kopf operator process watching CachePolicies, and an admission webhook on
127.0.0.1 called by the API server."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube.kubeutil import (
    ApiError,
    ControlPlane,
    KubeClient,
    run_kopf,
    service_account_identity,
    versions,
    wait_for,
    webhook_certs,
)
from tests.support import Proc, free_port

pytestmark = pytest.mark.controlplane

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "cachepolicies.yaml"
GROUP_VERSION = "llmcache.dev/v1alpha1"
NAMESPACE = "harness"
SEEN = "harness.llmcache.dev/seen"
MUTATED = "harness.llmcache.dev/mutated"


def crd_document() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return doc


def cel_message(field: str) -> str:
    """The message the CRD declares for the CEL rule on ``spec.<field>``."""
    schema = crd_document()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = schema["properties"]["spec"]["properties"][field]["x-kubernetes-validations"]
    return str(rules[0]["message"])


def policy(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "CachePolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec or {},
    }


@pytest.fixture(scope="module")
def crd(kube: KubeClient) -> dict[str, Any]:
    """crds/cachepolicies.yaml installed for real, Established, plus the test namespace."""
    kube.apply_yaml(CRD_FILE)
    established = kube.wait_established(crd_document()["metadata"]["name"])
    kube.ensure_namespace(NAMESPACE)
    return established


def test_the_api_server_is_the_pinned_release(kube: KubeClient) -> None:
    assert kube.request("GET", "/readyz") == "ok"
    assert kube.request("GET", "/version")["gitVersion"] == versions()["KUBERNETES_VERSION"]


def test_the_crd_is_served_as_a_namespaced_kind(crd: dict[str, Any], kube: KubeClient) -> None:
    collection, namespaced = kube.resource(GROUP_VERSION, "CachePolicy")
    assert namespaced and collection == f"/apis/{GROUP_VERSION}/cachepolicies"


def test_a_cel_rule_rejects_with_the_servers_own_message(
    crd: dict[str, Any], kube: KubeClient
) -> None:
    bad = policy("rag-without-stores", {"rag": {"enabled": True}})
    with pytest.raises(ApiError) as err:
        kube.apply(bad)
    assert err.value.status == 422 and err.value.reason == "Invalid"
    assert cel_message("rag") in err.value.message
    assert kube.get(GROUP_VERSION, "CachePolicy", "rag-without-stores", NAMESPACE) is None


def test_the_openapi_schema_rejects_out_of_range_values(
    crd: dict[str, Any], kube: KubeClient
) -> None:
    with pytest.raises(ApiError) as err:
        kube.apply(policy("zero-ttl", {"exact": {"ttlSeconds": 0}}), dry_run=True)
    assert err.value.status == 422
    assert "spec.exact.ttlSeconds" in err.value.message
    assert "greater than or equal to 1" in err.value.message


def test_a_valid_policy_is_stored_with_server_side_defaults(
    crd: dict[str, Any], kube: KubeClient
) -> None:
    dry = kube.apply(policy("defaults"), dry_run=True)
    assert dry["spec"]["exact"]["ttlSeconds"] >= 1  # defaulted by the server's schema
    assert kube.get(GROUP_VERSION, "CachePolicy", "defaults", NAMESPACE) is None  # dry run only

    stored = kube.apply(policy("defaults", {"exact": {"ttlSeconds": 120}}))
    assert stored["spec"]["exact"]["ttlSeconds"] == 120
    assert stored["spec"]["rag"]["enabled"] is False
    assert kube.get(GROUP_VERSION, "CachePolicy", "defaults", NAMESPACE) == stored


def test_status_is_a_subresource(crd: dict[str, Any], kube: KubeClient) -> None:
    kube.apply(policy("status-check"))
    # Writes through the main resource ignore .status; /status writes only .status.
    kube.merge_patch(
        GROUP_VERSION, "CachePolicy", "status-check", {"status": {"hitRate": 0.5}}, NAMESPACE
    )
    assert "hitRate" not in (
        kube.get(GROUP_VERSION, "CachePolicy", "status-check", NAMESPACE) or {}
    ).get("status", {})
    patched = kube.merge_patch(
        GROUP_VERSION,
        "CachePolicy",
        "status-check",
        {"status": {"hitRate": 0.5}},
        NAMESPACE,
        "status",
    )
    assert patched["status"]["hitRate"] == 0.5


def test_identities_are_subject_to_rbac(crd: dict[str, Any], controlplane: ControlPlane) -> None:
    stranger = controlplane.client(controlplane.kubeconfig_for("stranger", ["team-a"]))
    with pytest.raises(ApiError) as err:
        stranger.list(GROUP_VERSION, "CachePolicy", NAMESPACE)
    assert err.value.status == 403
    assert 'User "stranger" cannot list resource "cachepolicies"' in err.value.message

    kube = controlplane.client()
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "team-a-view", "namespace": NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "harness-viewer",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"}
            ],
        }
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "harness-viewer"},
            "rules": [
                {"apiGroups": ["llmcache.dev"], "resources": ["cachepolicies"], "verbs": ["list"]}
            ],
        }
    )
    wait_for(lambda: _can_list(stranger), timeout=10, what="RBAC grant to group team-a")


def _can_list(client: KubeClient) -> bool:
    try:
        client.list(GROUP_VERSION, "CachePolicy", NAMESPACE)
    except ApiError:
        return False
    return True


# --------------------------------------------------------------------------- kopf operator


KOPF_SCRIPT = textwrap.dedent(
    """
    import os
    import kopf

    PREFIX = "harness.llmcache.dev"

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX)
        settings.admission.server = kopf.WebhookServer(
            addr="127.0.0.1", port=int(os.environ["WEBHOOK_PORT"]), host="127.0.0.1",
            certfile=os.environ["WEBHOOK_CERT"], pkeyfile=os.environ["WEBHOOK_KEY"],
            cafile=os.environ["WEBHOOK_CA"],
        )
        settings.admission.managed = "harness.llmcache.dev"
        print("kopf-ready", flush=True)

    @kopf.on.event("llmcache.dev", "v1alpha1", "cachepolicies")
    def seen(event, name, namespace, meta, patch, **_):
        generation = meta.get("generation")
        print(f"EVENT {event['type']} {namespace}/{name} generation={generation}", flush=True)
        if event["type"] in ("ADDED", "MODIFIED", None):
            patch.metadata.annotations[f"{PREFIX}/seen"] = str(generation)

    @kopf.on.mutate("llmcache.dev", "v1alpha1", "cachepolicies", operation="CREATE", id="label")
    def label(patch, **_):
        patch.metadata.annotations[f"{PREFIX}/mutated"] = "by-webhook"
    """
)

KOPF_SA = ("llmcache-system", "harness-kopf")


def kopf_rbac() -> list[dict[str, Any]]:
    """What a kopf operator with a managed webhook needs, bound to its ServiceAccount user."""
    user, _ = service_account_identity(*KOPF_SA)
    rules = [
        {
            "apiGroups": ["llmcache.dev"],
            "resources": ["cachepolicies"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
            "verbs": ["get", "list", "watch", "create", "patch"],
        },
    ]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "harness-kopf"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "harness-kopf"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "harness-kopf",
            },
            # A User subject named like the ServiceAccount: the same binding a ServiceAccount
            # subject produces, without needing a ServiceAccount object (no controller-manager).
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    ]


@pytest.fixture(scope="module")
def kopf_operator(
    crd: dict[str, Any], controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proc]:
    kube = controlplane.client()
    for obj in kopf_rbac():
        kube.apply(obj)
    workdir = tmp_path_factory.mktemp("kopf")
    script = workdir / "harness_operator.py"
    script.write_text(KOPF_SCRIPT)
    ca_pem, cert, key = webhook_certs(workdir)
    proc = run_kopf(
        script,
        controlplane.kubeconfig_for_service_account(*KOPF_SA),
        f"--namespace={NAMESPACE}",
        env={
            "WEBHOOK_PORT": str(free_port()),
            "WEBHOOK_CERT": str(cert),
            "WEBHOOK_KEY": str(key),
            "WEBHOOK_CA": str(workdir / "webhook-ca.crt"),
        },
    )
    assert ca_pem
    try:
        yield proc
    finally:
        proc.stop()
        # kopf's managed configuration fails closed: never leave it behind.
        kube.delete(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            "harness.llmcache.dev",
        )


def test_a_kopf_operator_watches_cachepolicies(kopf_operator: Proc, kube: KubeClient) -> None:
    kube.apply(policy("watched"))

    def seen_generation() -> str | None:
        obj = kube.get(GROUP_VERSION, "CachePolicy", "watched", NAMESPACE) or {}
        value = obj.get("metadata", {}).get("annotations", {}).get(SEEN)
        return str(value) if value is not None else None

    wait_for(lambda: seen_generation() == "1", timeout=30, what="kopf annotates generation 1")
    kube.apply(policy("watched", {"exact": {"ttlSeconds": 60}}))
    wait_for(lambda: seen_generation() == "2", timeout=30, what="kopf sees the spec change")
    assert f"EVENT MODIFIED {NAMESPACE}/watched generation=2" in kopf_operator.output()


def test_the_api_server_calls_a_webhook_on_loopback(kopf_operator: Proc, kube: KubeClient) -> None:
    name = "harness.llmcache.dev"

    def configured() -> dict[str, Any] | None:
        config = kube.get("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", name)
        return config if config and config.get("webhooks") else None

    config = wait_for(configured, timeout=30, what="kopf registers its webhook")
    assert config["webhooks"][0]["clientConfig"]["url"].startswith("https://127.0.0.1:")

    def mutated_dry_run() -> bool:  # the server picks up new configurations asynchronously
        dry = kube.apply(policy("mutated"), dry_run=True)
        return bool(dry["metadata"].get("annotations", {}).get(MUTATED) == "by-webhook")

    wait_for(mutated_dry_run, timeout=30, what="the API server calls the webhook")
    created = kube.apply(policy("mutated"))
    assert created["metadata"]["annotations"][MUTATED] == "by-webhook"
