"""Admin-credential mode: which policies get a Redis user of their own, the URL their
sidecars are handed, and how a sidecar proves which namespace it runs in.

The credential travels with the policy over the delivery long poll (``delivery.py``), not
in a Secret of the application namespace: the operator needs no Secret-write RBAC there,
nothing is left in etcd to clean up, and a rotated password reaches every sidecar within
a round trip (a Secret in an env var is read once at pod start; a mounted one takes the
kubelet up to a minute or more). A sidecar gets it only with its pod's projected
ServiceAccount token for ``AUDIENCE``, which the operator checks with a TokenReview: the
token must be valid, meant for llmcache, and belong to a ServiceAccount of the policy's
namespace. See docs/deploy.md, "Sharing one Redis between namespaces".
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from llmcache import keyspace
from llmcache.policy import CachePolicySpec

from . import redis_acl
from .store import PolicyRecord

AUDIENCE = "llmcache.dev"
VERDICT_SECONDS = 60.0  # a TokenReview verdict is reused this long (tokens live an hour)
MAX_VERDICTS = 10_000


@dataclass(frozen=True)
class SharedRedis:
    admin_url: str
    overlap_seconds: float = 600.0
    """How long the previous password stays valid after a rotation."""
    rotation_seconds: float = 0.0
    """Rotate this often (0: only on request, ``llmcache.dev/rotate-redis-password``)."""

    @property
    def fingerprint(self) -> str:
        """Names the key passwords are derived with: part of the delivery ETag, so a new
        admin credential (new passwords, same epoch) still wakes every sidecar."""
        return hashlib.sha256(b"llmcache-acl-key:" + self.admin_url.encode()).hexdigest()[:12]

    @staticmethod
    def manages(spec: CachePolicySpec) -> bool:
        """Policies that name no Redis of their own live in the shared one."""
        return spec.redis.url is None and spec.redis.url_secret_ref is None

    def password(self, namespace: str, name: str, uid: str, epoch: int) -> str:
        return redis_acl.password(self.admin_url, namespace, name, uid, epoch)

    def url_for(self, record: PolicyRecord) -> str | None:
        """The URL a sidecar of ``record`` connects with, once its user exists."""
        if not record.redis_epoch or not self.manages(record.spec):
            return None
        user = redis_acl.username(record.namespace, record.name)
        secret = self.password(record.namespace, record.name, record.uid, record.redis_epoch)
        return redis_acl.sidecar_url(self.admin_url, user, secret)

    def prefix(self, spec: CachePolicySpec, namespace: str, name: str) -> str:
        return keyspace.policy_prefix(spec.redis.key_prefix, namespace, name)


class TokenRejected(Exception):
    """The token is invalid, expired, not meant for llmcache, or of another namespace."""


class TokenVerifier:
    """Which namespace a projected ServiceAccount token belongs to, by TokenReview."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._api = client.AuthenticationV1Api(cluster.api_client)
        self._verdicts: dict[str, tuple[str | None, float]] = {}
        self._lock = asyncio.Lock()

    async def namespace_of(self, token: str) -> str:
        """The token's ServiceAccount namespace; ``TokenRejected`` if it proves nothing.
        API errors propagate (the caller answers 503: try again)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._verdicts.get(digest)
        if cached is None or cached[1] < now:
            namespace = await self._review(token)
            if len(self._verdicts) >= MAX_VERDICTS:
                self._verdicts.clear()
            cached = self._verdicts[digest] = (namespace, now + VERDICT_SECONDS)
        if cached[0] is None:
            raise TokenRejected("token not valid for audience " + AUDIENCE)
        return cached[0]

    async def _review(self, token: str) -> str | None:
        body = client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=[AUDIENCE])
        )
        review = await self._cluster.call(self._api.create_token_review, body)
        status = review.status
        if status is None or not status.authenticated or AUDIENCE not in (status.audiences or []):
            return None
        parts = ((status.user and status.user.username) or "").split(":")
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"]:
            return None
        return parts[2]
