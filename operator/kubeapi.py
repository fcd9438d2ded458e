"""A very small Kubernetes API client for what kopf does not do for us: the per-replica
policy watch, the webhook configuration, and reading a Redis URL Secret.

It authenticates exactly as kopf does (``kopf.login_with_service_account`` in a pod,
``kopf.login_with_kubeconfig`` elsewhere), so both run under the same identity.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kopf

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:300]}")
        self.status = status


def login() -> kopf.ConnectionInfo:
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig")
    return info


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext:
    """kopf's own context for the same credentials: kubeconfig ``*-data`` fields are base64
    (PEM after decoding), which kopf knows how to unwrap."""
    return info.as_ssl_context()


class KubeApi:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.info = info
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=ssl_context(self.info))
            self._session = aiohttp.ClientSession(
                base_url=self.info.server.rstrip("/") + "/",
                connector=connector,
                headers=self.info.as_http_headers(),
            )
        return self._session

    def _refresh(self) -> None:
        """Re-read rotating credentials (projected service account tokens) after a 401."""
        self.info = login()
        if self._session is not None:
            self._session.headers.update(self.info.as_http_headers())

    async def request(
        self, method: str, path: str, body: Any = None, *, merge_patch: bool = False, **params: str
    ) -> Any:
        headers = {"Content-Type": "application/merge-patch+json"} if merge_patch else {}
        data = None if body is None else json.dumps(body)
        if data is not None and not merge_patch:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            async with self._client().request(
                method, path.lstrip("/"), data=data, headers=headers, params=params or None
            ) as resp:
                if resp.status == 401 and attempt == 0:
                    self._refresh()
                    continue
                text = await resp.text()
                if resp.status >= 400:
                    raise ApiError(resp.status, text)
                return json.loads(text) if text else None
        raise AssertionError("unreachable")

    async def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """Events from ``resource_version`` on, until the server ends the watch (after about
        ``timeout_seconds``); the caller watches again from the last version it saw."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with self._client().get(path.lstrip("/"), params=params, timeout=timeout) as resp:
            if resp.status == 401:
                self._refresh()
            if resp.status >= 400:
                raise ApiError(resp.status, await resp.text())
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = await self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        data = (secret.get("data") or {}).get(key)
        if data is None:
            raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data).decode()
