"""The pod mutation, as a pure function of the pod, its policy and the operator's settings.

Kept apart from kopf so it can be tested on plain dicts; ``webhook.py`` wires it into
``@kopf.on.mutate``. The sidecar is a native sidecar (an init container with
``restartPolicy: Always``): it starts before the app, keeps running beside it, and does not
keep a Job's pod alive after the app container exits.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmcache.policy import CachePolicySpec

INJECT_ANNOTATION = "llmcache.dev/inject"
POLICY_ANNOTATION = "llmcache.dev/policy"
INJECTED_LABEL = "llmcache.dev/injected"
POLICY_LABEL = "llmcache.dev/policy"
GENERATION_ANNOTATION = "llmcache.dev/policy-generation"
NAMESPACE_LABEL = "llmcache.dev/injection"
CONTAINER_NAME = "llmcache"
ADMIN_PORT_NAME = "llmcache-admin"
TMP_VOLUME = "llmcache-tmp"
TOKEN_VOLUME = "llmcache-token"
TOKEN_DIR = "/var/run/secrets/llmcache.dev"
TOKEN_SECONDS = 3600  # the kubelet renews it at 80% of its life; the sidecar reads it per poll
RUN_AS = 65532

SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass(frozen=True)
class InjectionSettings:
    sidecar_image: str
    operator_url: str
    """Base URL the sidecars reach the operator's delivery server at."""
    default_redis_url: str | None = None
    image_pull_policy: str = "IfNotPresent"
    token_audience: str | None = None
    """Admin-credential mode: the sidecar gets a projected ServiceAccount token for this
    audience, its proof of namespace when it asks for its Redis credential."""


def wants_injection(pod: dict[str, Any]) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(INJECT_ANNOTATION, "")).lower() == "true"


def requested_policy(pod: dict[str, Any]) -> str | None:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(POLICY_ANNOTATION)
    return str(value) if value else None


def is_injected(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return any(c.get("name") == CONTAINER_NAME for c in containers)


def redis_env(spec: CachePolicySpec, default_url: str | None) -> dict[str, Any] | None:
    """``LLMCACHE_REDIS_URL`` as a literal or a Secret reference; the operator's default
    is only handed out when it carries no credentials (it would land in the pod spec)."""
    name = "LLMCACHE_REDIS_URL"
    if spec.redis.url_secret_ref is not None:
        ref = spec.redis.url_secret_ref
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    if spec.redis.url:
        return {"name": name, "value": spec.redis.url}
    if default_url and not urlsplit(default_url).password and "@" not in default_url:
        return {"name": name, "value": default_url}
    return None


def sidecar_container(
    namespace: str, policy: str, spec: CachePolicySpec, settings: InjectionSettings
) -> dict[str, Any]:
    port = spec.sidecar.port
    base = settings.operator_url.rstrip("/")
    env: list[dict[str, Any]] = [
        {"name": "LLMCACHE_LISTEN", "value": f"127.0.0.1:{port}"},
        {"name": "LLMCACHE_ADMIN_LISTEN", "value": f"0.0.0.0:{port + 1}"},
        {
            "name": "LLMCACHE_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "LLMCACHE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "LLMCACHE_POLICY_NAME", "value": policy},
        {
            "name": "LLMCACHE_POLICY_JSON",
            "value": json.dumps(spec.to_json(), sort_keys=True, separators=(",", ":")),
        },
        {"name": "LLMCACHE_POLICY_URL", "value": f"{base}/v1/policies/{namespace}/{policy}"},
        {"name": "LLMCACHE_STATS_URL", "value": f"{base}/v1/stats/{namespace}/{policy}"},
    ]
    redis = redis_env(spec, settings.default_redis_url)
    if redis is not None:
        env.append(redis)
    key_ref = spec.semantic.embedder.api_key_secret_ref
    if key_ref is not None:  # read by llmcache.sidecar.semantic; never in the pod spec itself
        secret = {"secretKeyRef": {"name": key_ref.name, "key": key_ref.key}}
        env.append({"name": "LLMCACHE_EMBEDDER_API_KEY", "valueFrom": secret})
    mounts: list[dict[str, Any]] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]
    if settings.token_audience:
        env.append({"name": "LLMCACHE_POLICY_TOKEN_FILE", "value": f"{TOKEN_DIR}/token"})
        mounts.append({"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True})
    resources = {k: dict(v) for k, v in spec.sidecar.resources.model_dump().items() if v}

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": ADMIN_PORT_NAME},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        }

    return {
        "name": CONTAINER_NAME,
        "image": spec.sidecar.image or settings.sidecar_image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": ["sidecar"],
        "restartPolicy": "Always",
        "env": env,
        "ports": [{"name": ADMIN_PORT_NAME, "containerPort": port + 1, "protocol": "TCP"}],
        "resources": resources,
        "startupProbe": probe("/healthz", 1, 30),
        "readinessProbe": probe("/readyz", 5, 3),
        "livenessProbe": probe("/healthz", 10, 3),
        "securityContext": copy.deepcopy(SECURITY_CONTEXT),
        "volumeMounts": mounts,
    }


def _set_default_env(container: dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    if not any(e.get("name") == name for e in env):
        env.append({"name": name, "value": value})


def inject(
    pod: dict[str, Any],
    namespace: str,
    policy: str,
    generation: int,
    spec: CachePolicySpec,
    settings: InjectionSettings,
) -> None:
    """Mutate ``pod`` in place; a no-op on a pod that already has the sidecar."""
    if is_injected(pod):
        return
    meta = pod.setdefault("metadata", {})
    meta.setdefault("labels", {}).update({INJECTED_LABEL: "true", POLICY_LABEL: policy})
    meta.setdefault("annotations", {})[GENERATION_ANNOTATION] = str(generation)
    podspec = pod.setdefault("spec", {})
    podspec["initContainers"] = [
        sidecar_container(namespace, policy, spec, settings),
        *(podspec.get("initContainers") or []),
    ]
    port = spec.sidecar.port
    for container in podspec.get("containers") or []:
        _set_default_env(container, "ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}/anthropic")
        _set_default_env(container, "OPENAI_BASE_URL", f"http://127.0.0.1:{port}/openai/v1")
    volumes = podspec.setdefault("volumes", [])
    if not any(v.get("name") == TMP_VOLUME for v in volumes):
        volumes.append({"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}})
    if settings.token_audience and not any(v.get("name") == TOKEN_VOLUME for v in volumes):
        # What the ServiceAccount admission plugin defaults to; said here because a token
        # projection is invalid without it where that plugin is off.
        podspec.setdefault("serviceAccountName", podspec.get("serviceAccount") or "default")
        token = {
            "audience": settings.token_audience,
            "expirationSeconds": TOKEN_SECONDS,
            "path": "token",
        }
        volumes.append({"name": TOKEN_VOLUME, "projected": {"sources": [
            {"serviceAccountToken": token}
        ]}})  # fmt: skip
