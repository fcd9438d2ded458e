"""Cache keys and tenant partitions.

A key is SHA-256 over a canonical JSON rendering of only the fields that change the answer
(chosen per API by the provider), prefixed by the route and the tenant partition, so two
tenants can never share an entry unless the policy widens the scope on purpose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from llmcache.policy import Sharing

KEY_VERSION = b"llmcache-key-v1"
CREDENTIAL_HEADERS = ("x-api-key", "authorization", "api-key")


def canonical(material: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def cache_key(route: str, partition: str, material: Any) -> str:
    h = hashlib.sha256(KEY_VERSION)
    h.update(b"\0" + route.encode() + b"\0" + partition.encode() + b"\0")
    h.update(canonical(material))
    return h.hexdigest()


def partition(sharing: Sharing, headers: Mapping[str, str], namespace: str) -> str:
    """A one-way hash naming who may share entries; never the credential itself."""
    h = hashlib.sha256(KEY_VERSION + b"\0" + sharing.scope.encode())
    if sharing.scope == "credential":
        for name in CREDENTIAL_HEADERS:
            value = headers.get(name)
            if value:
                h.update(b"\0" + _bare_token(value).encode())
                break
        else:
            h.update(b"\0anonymous")
    elif sharing.scope == "namespace":
        h.update(b"\0" + namespace.encode())
    else:
        h.update(b"\0" + namespace.encode())
        for name in sharing.context_headers:
            h.update(b"\0" + name.lower().encode() + b"=" + headers.get(name, "").encode())
    return h.hexdigest()[:32]


def _bare_token(value: str) -> str:
    """``Bearer sk-x`` and ``sk-x`` are the same credential (OpenAI vs. Anthropic SDKs)."""
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest else value.strip()
