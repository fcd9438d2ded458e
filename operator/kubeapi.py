"""A very small Kubernetes API client for what kopf does not do for us: the per-replica
policy watch, the webhook configuration, and reading a Redis URL Secret.

It authenticates exactly as kopf does (``kopf.login_with_service_account`` in a pod,
``kopf.login_with_kubeconfig`` elsewhere), so both run under the same identity.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
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


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def ssl_context(info: kopf.ConnectionInfo, scratch: Path) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    ctx = ssl.create_default_context(
        cafile=os.fsdecode(info.ca_path) if info.ca_path else None,
        cadata=_as_bytes(info.ca_data).decode() if info.ca_data else None,
    )
    cert, key = info.certificate_path, info.private_key_path
    if info.certificate_data:
        cert = scratch / "client.crt"
        cert.write_bytes(_as_bytes(info.certificate_data))
    if info.private_key_data:
        key = scratch / "client.key"
        key.touch(mode=0o600)
        key.write_bytes(_as_bytes(info.private_key_data))
    if cert:
        ctx.load_cert_chain(os.fsdecode(cert), os.fsdecode(key) if key else None)
    return ctx


class KubeApi:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.info = info
        self._scratch = tempfile.TemporaryDirectory(prefix="llmcache-kube-")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._scratch.cleanup()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=ssl_context(self.info, Path(self._scratch.name)))
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

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
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
