"""The operator's own connection to the API server, for what kopf does not do for us: each
replica's CachePolicy watch (delivery and injection), status publishing, Secret reads for
flushes and the webhook configuration. It is ``kubernetes_asyncio``'s client, configured once
here; callers use its generated APIs, ``watch.Watch`` and ``ApiException`` directly.

Why ``kubernetes_asyncio`` and not the sync ``kubernetes`` package: the operator is one
asyncio loop (kopf, the delivery and webhook servers, the watches). The sync client would
block that loop, so every call would go through a thread and every long watch would park
one. ``kubernetes_asyncio`` is the same generated API (models, config loaders, ``Watch``,
``ApiException``) over aiohttp, which the project already uses, and kopf supports it too.

Credentials come from the library's loaders: in a pod, the in-cluster loader (the projected
ServiceAccount token, which the kubelet rotates: the library re-reads the file at most a
minute after the last read); elsewhere the kubeconfig of ``$KUBECONFIG`` (certificates, a
``token``, or a ``tokenFile``). A 401 means the token in hand is no longer accepted (rotated
and the old one revoked before the periodic re-read): :meth:`Cluster.call` and the watcher
then load the credentials again into the same ``Configuration`` and retry. kopf's own client
logs in with :meth:`Cluster.connection_info`, and kopf logs in again after its own 401s, so
both always run as the same identity with the same token.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import kopf
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.incluster_config import SERVICE_CERT_FILENAME, SERVICE_TOKEN_FILENAME

log = logging.getLogger(__name__)

T = TypeVar("T")

REQUEST_TIMEOUT_SECONDS = 30.0
"""Total time for one (non-watch) request: the library sets none by default."""


@dataclass(frozen=True)
class InCluster:
    """Where a pod finds its ServiceAccount: the kubelet's projected token and CA files and
    the ``KUBERNETES_SERVICE_HOST``/``_PORT`` variables (``environ``: ``os.environ``)."""

    token_file: str = SERVICE_TOKEN_FILENAME
    ca_file: str = SERVICE_CERT_FILENAME
    environ: Mapping[str, str] | None = None


def describe(exc: ApiException) -> str:
    """One line for logs and conditions: ``HTTP 404 NotFound: <the server's message>``
    (``str(ApiException)`` carries every response header)."""
    message = ""
    if exc.body:
        body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body)
        try:
            status = json.loads(body)
            message = str(status.get("message") or "") if isinstance(status, dict) else ""
        except ValueError:
            message = body[:300]
    reason = exc.reason or ""
    return f"HTTP {exc.status} {reason}: {message}".rstrip(": ")


class Cluster:
    """One ``ApiClient`` with the APIs the operator uses, and the loader that made its
    credentials (to load them again after a 401). Build with :meth:`connect`."""

    def __init__(
        self, configuration: client.Configuration, loader: Callable[[], Awaitable[None]]
    ) -> None:
        self.configuration = configuration
        self._loader = loader
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.admission = client.AdmissionregistrationV1Api(self.api_client)
        self.reloads = 0
        """Credential reloads after a 401 of ours (not kopf's logins, nor the library's own
        periodic re-reads of a pod's token file)."""

    @classmethod
    async def connect(
        cls, kubeconfig: str | None = None, in_cluster: InCluster | None = None
    ) -> Cluster:
        """Credentials from ``kubeconfig``, or from ``in_cluster``; with neither, in
        controller-runtime's order: ``$KUBECONFIG``, else the pod's ServiceAccount, else
        ``~/.kube/config``. Raises ``kopf.LoginError`` when none can be loaded."""
        configuration = client.Configuration()
        path = kubeconfig or (None if in_cluster else os.environ.get("KUBECONFIG"))
        where = in_cluster or InCluster()

        async def from_pod() -> None:
            config.load_incluster_config(  # type: ignore[no-untyped-call]  # untyped upstream
                client_configuration=configuration,
                token_filename=where.token_file,
                cert_filename=where.ca_file,
                environ=os.environ if where.environ is None else where.environ,
            )

        async def from_kubeconfig() -> None:
            await config.load_kube_config(
                config_file=path or "~/.kube/config",  # the library expands ~
                client_configuration=configuration,
            )

        if path:
            loaders = [from_kubeconfig]
        else:
            loaders = [from_pod] if in_cluster else [from_pod, from_kubeconfig]
        errors = []
        for loader in loaders:
            try:
                await loader()
            except (config.ConfigException, OSError) as exc:
                errors.append(str(exc))
                continue
            log.debug("Kubernetes API at %s", configuration.host)
            return cls(configuration, loader)
        raise kopf.LoginError(f"no Kubernetes credentials: {'; '.join(errors)}")

    async def reload(self) -> None:
        """Load the credentials again (a rotated token file, an edited kubeconfig)."""
        await self._loader()
        self.reloads += 1

    async def call(self, request: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await request(*args, **kwargs)`` (a generated API method), once more with
        reloaded credentials after a 401."""
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_SECONDS)
        try:
            return await request(*args, **kwargs)
        except ApiException as exc:
            if exc.status != 401:
                raise
            log.info("API server refused the token (401); loading credentials again")
        await self.reload()
        return await request(*args, **kwargs)

    async def connection_info(self, settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
        """The same credentials for kopf's client (``@kopf.on.login``), freshly loaded: kopf
        asks again after a 401 of its own."""
        await self._loader()
        conf = self.configuration
        header = await conf.get_api_key_with_prefix("BearerToken")
        scheme, _, token = str(header or "").partition(" ")
        if not token:  # a bare token, without "Bearer"
            scheme, token = "", scheme
        return kopf.ConnectionInfo(
            server=str(conf.host),
            ca_path=conf.ssl_ca_cert,
            insecure=not conf.verify_ssl,
            scheme=scheme or None,
            token=token or None,
            certificate_path=conf.cert_file,
            private_key_path=conf.key_file,
            proxy_url=conf.proxy,
            trust_env=settings.networking.trust_env,
        )

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded; ``KeyError`` when the Secret lacks it."""
        secret = await self.call(self.core.read_namespaced_secret, name, namespace)
        data = (secret.data or {}).get(key)
        if data is None:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data).decode()

    async def close(self) -> None:
        await self.api_client.close()
