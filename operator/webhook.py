"""Sidecar injection: the ``@kopf.on.mutate`` handler for pods, its HTTPS server, and the
``MutatingWebhookConfiguration`` the operator keeps in the cluster.

The configuration is written here rather than by kopf's ``settings.admission.managed``
because kopf hard-codes ``timeoutSeconds: 30`` and has no namespace selector. Ours says
``failurePolicy: Ignore`` with a 5 s timeout: when the operator is down, pods start
uncached instead of not at all (docs/operator.md), and the ``llmcache.dev/injection:
disabled`` namespace label is honoured by the API server before any call reaches us.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from .cluster import Cluster
from .injection import (
    NAMESPACE_LABEL,
    InjectionSettings,
    inject,
    is_injected,
    requested_policy,
    wants_injection,
)
from .metrics import OperatorMetrics
from .store import PolicyStore

log = logging.getLogger(__name__)

HANDLER_ID = "inject"
WEBHOOK_NAME = "inject.llmcache.dev"
TIMEOUT_SECONDS = 5
SYNC_WAIT_SECONDS = 3.0


@dataclass(frozen=True)
class WebhookTarget:
    """Where the API server reaches the webhook: a Service (in cluster) or a URL (tests,
    development). ``None`` fields are filled from what the server listens on."""

    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443
    url: str | None = None


def webhook_configuration(
    name: str,
    client_config: dict[str, Any],
    *,
    opt_in: bool = False,
    exclude_namespaces: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The managed ``MutatingWebhookConfiguration`` (pure, for tests and docs)."""
    expressions: list[dict[str, Any]] = (
        [{"key": NAMESPACE_LABEL, "operator": "In", "values": ["enabled"]}]
        if opt_in
        else [{"key": NAMESPACE_LABEL, "operator": "NotIn", "values": ["disabled"]}]
    )
    if exclude_namespaces:
        expressions.append(
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": sorted(exclude_namespaces),
            }
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "llmcache"}},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "timeoutSeconds": TIMEOUT_SECONDS,
                "matchPolicy": "Equivalent",
                "reinvocationPolicy": "Never",
                "clientConfig": client_config,
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "operations": ["CREATE"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchExpressions": expressions},
            }
        ],
    }


def client_config_for(target: WebhookTarget, served: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if target.service_name:
        config["service"] = {
            "namespace": target.service_namespace,
            "name": target.service_name,
            "port": target.service_port,
            "path": f"/{HANDLER_ID}",
        }
    else:
        config["url"] = (target.url or str(served["url"])).rstrip("/") + f"/{HANDLER_ID}"
    if served.get("caBundle"):
        config["caBundle"] = served["caBundle"]
    return config


async def apply_configuration(cluster: Cluster, body: dict[str, Any]) -> None:
    """Merge our webhook into the named configuration (the chart's, keeping its labels and
    annotations), or create it when absent and RBAC allows."""
    name = body["metadata"]["name"]
    try:
        await cluster.call(
            cluster.admission.patch_mutating_webhook_configuration,
            name,
            {"webhooks": body["webhooks"]},
            _content_type="application/merge-patch+json",
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
        await cluster.call(cluster.admission.create_mutating_webhook_configuration, body)


class InjectorServer(kopf.WebhookServer):
    """kopf's HTTPS server (certificate files given, never self-signed: that needs
    ``oscrypto``), which also writes our webhook configuration on every (re)start."""

    def __init__(
        self,
        *,
        cluster: Cluster | None,
        config_name: str | None,
        target: WebhookTarget,
        opt_in: bool = False,
        exclude_namespaces: tuple[str, ...] = (),
        remove_on_exit: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster, self.config_name, self.target = cluster, config_name, target
        self.opt_in, self.exclude_namespaces = opt_in, exclude_namespaces
        self.remove_on_exit = remove_on_exit

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        try:
            async for served in super().__call__(fn):
                if self.cluster is not None and self.config_name:
                    body = webhook_configuration(
                        self.config_name,
                        client_config_for(self.target, dict(served)),
                        opt_in=self.opt_in,
                        exclude_namespaces=self.exclude_namespaces,
                    )
                    await apply_configuration(self.cluster, body)
                    log.info(
                        "webhook configuration %s points at %s",
                        self.config_name,
                        body["webhooks"][0]["clientConfig"].get("url") or self.target,
                    )
                yield served
        finally:
            if self.remove_on_exit and self.cluster is not None and self.config_name:
                with contextlib.suppress(Exception):
                    await self.cluster.call(
                        self.cluster.admission.delete_mutating_webhook_configuration,
                        self.config_name,
                    )


def ca_bundle(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def encode_ca(data: bytes) -> str:
    return base64.b64encode(data).decode()


def mutate_pod(
    body: dict[str, Any],
    namespace: str,
    store: PolicyStore,
    settings: InjectionSettings,
    warnings: list[str],
) -> tuple[str, dict[str, Any] | None]:
    """Decide and build the mutation: (result, mutated pod or None)."""
    if not wants_injection(body) or is_injected(body):
        return "skipped", None
    name = requested_policy(body)
    record = store.get(namespace, name) if name else store.default_for(namespace)
    if record is None:
        wanted = (
            f"CachePolicy {name!r}" if name else "a CachePolicy named 'default' (or a single one)"
        )
        warnings.append(
            f"llmcache: {wanted} not found in namespace {namespace!r}; sidecar not injected"
        )
        return "skipped", None
    pod = copy.deepcopy(body)
    inject(pod, namespace, record.name, record.generation, record.spec, settings)
    return "injected", pod


async def _wait_synced(store: PolicyStore) -> None:
    """Right after a (re)start the policy store has not listed yet; a pod admitted then
    would start uncached for good, so wait a little (within the API server's timeout)."""
    if not store.synced.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SYNC_WAIT_SECONDS):
                await store.synced.wait()


def register(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.mutate(
        "v1", "pods", id=HANDLER_ID, operations=["CREATE"], ignore_failures=True, registry=registry
    )
    async def inject_sidecar(
        body: kopf.Body,
        patch: kopf.Patch,
        warnings: list[str],
        memo: Any,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        metrics: OperatorMetrics = memo.metrics
        started = time.perf_counter()
        raw = dict(body)
        if wants_injection(raw):
            await _wait_synced(memo.store)
        # The API server sets the request's namespace on the object before admission.
        namespace = str((raw.get("metadata") or {}).get("namespace") or "")
        try:
            result, mutated = mutate_pod(raw, namespace, memo.store, memo.injection, warnings)
        except Exception:
            metrics.webhook_requests.labels("error").inc()
            logger.exception("injection failed; the pod is admitted unchanged")
            raise
        finally:
            metrics.webhook_duration.observe(time.perf_counter() - started)
        metrics.webhook_requests.labels(result).inc()
        if mutated is not None:
            patch.fns.append(lambda target: _replace(target, mutated))


def _replace(target: kopf.RawBody, mutated: dict[str, Any]) -> None:
    raw = cast(dict[str, Any], target)
    raw.clear()
    raw.update(mutated)
