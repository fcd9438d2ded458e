"""The operator as the chart deploys it, against the harness's real API server: the chart's
ClusterRole and binding (rendered by Helm), the chart's webhook configuration and the
chart's operator command line, with only what a pod would differ in replaced (loopback
addresses, test certificates, the webhook reached by URL instead of a Service).

The operator authenticates as the chart's ServiceAccount user (a client certificate for
``system:serviceaccount:llmcache-system:llmcache-operator``), never as an admin.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.kube.kubeutil import (
    ApiError,
    ControlPlane,
    KubeClient,
    run_operator,
    wait_for,
    webhook_certs,
)
from tests.support import Proc, free_port, llmcache
from tests.test_chart import NAMESPACE as RELEASE_NAMESPACE
from tests.test_chart import SINGLE, crds, render

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "cachepolicies.yaml"
GROUP_VERSION = "llmcache.dev/v1alpha1"
KIND = "CachePolicy"
WEBHOOK_CONFIG = "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"
ANNOTATIONS = {"llmcache.dev/inject": "true"}

Obj = dict[str, Any]


def crd_document() -> Obj:
    doc: Obj = yaml.safe_load(CRD_FILE.read_text())
    return doc


def install_crds(kube: KubeClient) -> None:
    """The chart's crds/ (CachePolicy, kopf's peering kinds), as Helm installs them."""
    for crd in crds():
        kube.apply(crd, field_manager="helm")
    for crd in crds():
        kube.wait_established(crd["metadata"]["name"])


def chart(values: dict[str, Any] | None = SINGLE) -> list[Obj]:
    """An install of the chart rendered by Helm (default: one replica, no peering)."""
    return render(values)


def find(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in the chart, got {len(found)}"
    return found[0]


def operator_rbac(objs: list[Obj]) -> list[Obj]:
    """Everything the chart grants the operator (all of templates/rbac.yaml)."""
    kinds = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    return [o for o in objs if o["kind"] in kinds]


def service_account(objs: list[Obj]) -> tuple[str, str]:
    """(namespace, name) of the ServiceAccount the chart's binding grants to."""
    binding = find(objs, "ClusterRoleBinding")
    subject = binding["subjects"][0]
    assert subject["kind"] == "ServiceAccount"
    return subject["namespace"], subject["name"]


def webhook_configuration(objs: list[Obj], url: str, ca_pem: bytes) -> Obj:
    """The chart's configuration, called at ``url`` (loopback) instead of its Service."""
    config: Obj = json.loads(json.dumps(find(objs, "MutatingWebhookConfiguration")))
    for hook in config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {
            "url": url.rstrip("/") + path,
            "caBundle": base64.b64encode(ca_pem).decode(),
        }
    return config


def _flag(arg: str) -> str:
    return arg.split("=", 1)[0]


def operator_args(objs: list[Obj], replace: dict[str, str], extra: list[str]) -> list[str]:
    """The chart's operator args, ``--flag=value`` replaced per ``replace`` (flag -> value)."""
    statefulset = find(objs, "StatefulSet")
    args: list[str] = list(statefulset["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args[0] == "operator"
    assert set(replace) <= {_flag(a) for a in args}, "the chart no longer passes these flags"
    out = [f"{_flag(a)}={replace[_flag(a)]}" if _flag(a) in replace else a for a in args[1:]]
    return out + extra


@dataclass
class OperatorEnv:
    proc: Proc
    kube: KubeClient
    """Admin client: what a user (or Helm) does."""
    as_operator: KubeClient
    """The operator's own identity, to check what RBAC lets it do."""
    delivery_url: str
    """Where the test reaches the delivery server (127.0.0.1)."""
    service_url: str
    """Where the chart tells sidecars the delivery server is (the in-cluster Service)."""
    metrics_url: str
    webhook_url: str
    sa_kubeconfig: Path
    """The chart's ServiceAccount identity, for in-process clients."""
    args: list[str]
    """The operator's command line (after ``llmcache operator``)."""

    def policy(self, namespace: str, name: str) -> Obj | None:
        return self.kube.get(GROUP_VERSION, KIND, name, namespace)

    def delivered(self, namespace: str, name: str) -> Obj | None:
        """The delivery server's answer (``None`` on 404)."""
        url = f"{self.delivery_url}/v1/policies/{namespace}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc: Obj = json.loads(resp.read())
                return doc
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def local(self, url: str) -> str:
        """A URL the injected sidecar was given, as this test reaches it."""
        return url.replace(self.service_url, self.delivery_url)


def policy(namespace: str, name: str, spec: Obj | None = None, **meta: Any) -> Obj:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": spec or {},
    }


def condition(obj: Obj | None, type_: str) -> Obj | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def ready_at(env: OperatorEnv, namespace: str, name: str, generation: int) -> Obj | None:
    """The policy once ``Ready=True`` with ``observedGeneration == generation``."""
    obj = env.policy(namespace, name)
    ready = condition(obj, "Ready")
    status = (obj or {}).get("status") or {}
    if (
        ready
        and ready.get("status") == "True"
        and ready.get("observedGeneration") == generation
        and status.get("observedGeneration") == generation
    ):
        return obj
    return None


def service_account_token(
    controlplane: ControlPlane, objs: list[Obj], seconds: int = 3600, bound_secret: str = ""
) -> str:
    """A bound token of the chart's ServiceAccount (TokenRequest API), the credential a pod's
    projected volume holds; the account is created as Helm would. With ``bound_secret`` the
    token is bound to that Secret (created here, beside the account) and is refused once the
    Secret is deleted: how a test revokes a token at once (their shortest life is 10 min)."""
    kube = controlplane.client()
    account = find(objs, "ServiceAccount")
    namespace, name = account["metadata"]["namespace"], account["metadata"]["name"]
    kube.ensure_namespace(namespace)
    kube.apply(account, field_manager="helm")
    spec: Obj = {"expirationSeconds": seconds}
    if bound_secret:
        secret = kube.apply(
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": bound_secret, "namespace": namespace}}
        )  # fmt: skip
        spec["boundObjectRef"] = {
            "apiVersion": "v1", "kind": "Secret",
            "name": bound_secret, "uid": secret["metadata"]["uid"],
        }  # fmt: skip
    review = kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    token: str = review["status"]["token"]
    return token


def token_kubeconfig(
    controlplane: ControlPlane,
    objs: list[Obj],
    path: Path,
    seconds: int = 3600,
    token_file: Path | None = None,
) -> Path:
    """A kubeconfig with a bound ServiceAccount token, or naming ``token_file`` (``tokenFile``,
    which the caller fills and may rotate) instead."""
    name = find(objs, "ServiceAccount")["metadata"]["name"]
    user = (
        {"tokenFile": str(token_file)}
        if token_file
        else {"token": service_account_token(controlplane, objs, seconds)}
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": controlplane.server,
                    "certificate-authority-data": base64.b64encode(
                        controlplane.ca_path.read_bytes()
                    ).decode(),
                },
            }
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": name}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def running_operator(
    controlplane: ControlPlane,
    workdir: Path,
    extra: list[str] | None = None,
    values: dict[str, Any] | None = SINGLE,
    token: bool = False,
    token_file: Path | None = None,
) -> Iterator[OperatorEnv]:
    """CRDs, the chart's RBAC, peering object and webhook configuration applied as admin (as
    Helm would), then ``python -m llmcache operator <the chart's args>`` as the chart's
    ServiceAccount (pod index 0 when the chart runs replicas with peering): by a client
    certificate, a bound token (``token``), or the token the caller keeps in ``token_file``."""
    kube = controlplane.client()
    install_crds(kube)
    objs = chart(values)
    for obj in [*operator_rbac(objs), *(o for o in objs if o["kind"] == "ClusterKopfPeering")]:
        kube.apply(obj, field_manager="helm")
    kube.ensure_namespace(RELEASE_NAMESPACE)
    if token or token_file:
        path = workdir / "token-kubeconfig.yaml"
        sa_kubeconfig = token_kubeconfig(controlplane, objs, path, token_file=token_file)
    else:
        sa_kubeconfig = controlplane.kubeconfig_for_service_account(*service_account(objs))

    ca_pem, cert, key = webhook_certs(workdir)
    policy_port, webhook_port = free_port(), free_port()
    webhook_url = f"https://127.0.0.1:{webhook_port}"
    service_host = next(
        a.split("=", 1)[1]
        for a in operator_args(objs, {}, [])
        if a.startswith("--operator-service=")
    )
    config = webhook_configuration(objs, webhook_url, ca_pem)
    kube.apply(config, field_manager="helm")
    args = operator_args(
        objs,
        {
            "--policy-listen": f"127.0.0.1:{policy_port}",
            "--metrics-listen": "127.0.0.1:0",
            "--webhook-listen": f"127.0.0.1:{webhook_port}",
            "--webhook-certfile": str(cert),
            "--webhook-keyfile": str(key),
            "--log-level": "debug",
            **({"--priority": "0"} if any(o["kind"] == "ClusterKopfPeering" for o in objs) else {}),
        },
        list(extra or []),
    )
    pod_env = {"POD_NAMESPACE": RELEASE_NAMESPACE, "POD_NAME": "llmcache-operator-0"}
    proc = run_operator(sa_kubeconfig, *args, env=pod_env, count=2, timeout=60)
    try:
        env = OperatorEnv(
            proc=proc,
            kube=kube,
            as_operator=controlplane.client(sa_kubeconfig),
            delivery_url=proc.urls[0],
            service_url=f"http://{service_host}:{policy_port}",
            metrics_url=proc.urls[1],
            webhook_url=webhook_url,
            sa_kubeconfig=sa_kubeconfig,
            args=args,
        )
        yield env
    finally:
        code = proc.stop()
        (workdir / "operator.log").write_text(proc.output())
        # The chart's configuration says failurePolicy Ignore, but leave nothing behind.
        with contextlib.suppress(ApiError):
            kube.delete(*WEBHOOK_CONFIG, config["metadata"]["name"])
        if code not in (0, -15):
            sys.stderr.write(proc.output()[-4000:])


@contextlib.contextmanager
def standby_replica(env: OperatorEnv, workdir: Path) -> Iterator[Proc]:
    """A second replica of ``env``'s operator, as the chart's next pod with a lower peering
    priority (and the StatefulSet's next pod name): kopf pauses its handlers, its own watch,
    delivery and stats intake run."""
    replace = {
        "--policy-listen": f"127.0.0.1:{free_port()}",
        "--metrics-listen": "127.0.0.1:0",
        "--webhook-listen": f"127.0.0.1:{free_port()}",
        "--priority": "-1",
    }
    args = [f"{_flag(a)}={replace[_flag(a)]}" if _flag(a) in replace else a for a in env.args]
    assert "--priority=-1" in args, "the operator under test runs without peering"
    pod_env = {"POD_NAMESPACE": RELEASE_NAMESPACE, "POD_NAME": "llmcache-operator-1"}
    proc = run_operator(env.sa_kubeconfig, *args, env=pod_env, count=2, timeout=60)
    try:
        yield proc
    finally:
        proc.stop()
        with (workdir / "standby.log").open("a") as log:  # a test may restart it
            log.write(proc.output())


def delete_and_wait(env: OperatorEnv, namespace: str, name: str, timeout: float = 30) -> None:
    """Delete a policy and wait until the operator's finalizer has let it go."""
    env.kube.delete(GROUP_VERSION, KIND, name, namespace)
    wait_for(
        lambda: env.policy(namespace, name) is None,
        timeout=timeout,
        what=f"CachePolicy {namespace}/{name} finalized and gone",
    )


def pod(namespace: str, name: str, annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "containers": [{"name": "app", "image": "example.org/app:1", **spec}],
        },
    }
    if annotations:
        body["metadata"]["annotations"] = dict(annotations)
    return body


def injected_container(pod_obj: Obj) -> Obj | None:
    return next(
        (c for c in pod_obj["spec"].get("initContainers") or [] if c["name"] == "llmcache"), None
    )


def wait_webhook_live(env: OperatorEnv, namespace: str, policy: str, timeout: float = 30) -> None:
    """The API server loads webhook configurations asynchronously (and the operator's policy
    store follows its own watch): dry-run an annotated pod until it comes back injected."""
    annotations = {**ANNOTATIONS, "llmcache.dev/policy": policy}

    def injected() -> bool:
        dry = env.kube.create(pod(namespace, "webhook-probe", annotations), dry_run=True)
        return injected_container(dry) is not None

    wait_for(injected, timeout=timeout, what="the API server calls the operator's webhook")


def run_sidecar_from(
    env: OperatorEnv,
    container: Obj,
    namespace: str,
    pod_name: str,
    secrets: dict[tuple[str, str], str] | None = None,
    **overrides: str,
) -> Proc:
    """The injected container's command as a kubelet would run it here: the image's
    entrypoint ``llmcache`` replaced by ``python -m llmcache``, its env with the downward API
    (and Secret references) resolved, the in-cluster operator URL replaced by the test's,
    and the listen addresses moved to free loopback ports."""
    assert not container.get("command"), "the image entrypoint is expected to run"
    values: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            values[item["name"]] = env.local(item["value"])
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            values[item["name"]] = {"metadata.namespace": namespace, "metadata.name": pod_name}[
                field
            ]
        else:
            ref = source["secretKeyRef"]
            values[item["name"]] = (secrets or {})[(ref["name"], ref["key"])]
    values.update(
        LLMCACHE_LISTEN=f"127.0.0.1:{free_port()}",
        LLMCACHE_ADMIN_LISTEN=f"127.0.0.1:{free_port()}",
        **overrides,
    )
    return llmcache(*container["args"], env=values, count=2)
