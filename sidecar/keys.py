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

import orjson

from llmcache.policy import Sharing

KEY_VERSION = b"llmcache-key-v1"
CREDENTIAL_HEADERS = ("x-api-key", "authorization", "api-key")


def canonical(material: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 (orjson's rendering; the
    standard library's for what orjson refuses: integers beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(
            material, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def cache_key(route: str, partition: str, material: Any) -> str:
    h = hashlib.sha256(KEY_VERSION)
    h.update(b"\0" + route.encode() + b"\0" + partition.encode() + b"\0")
    h.update(canonical(material))
    return h.hexdigest()


def partition(sharing: Sharing, headers: Mapping[str, str], namespace: str) -> str:
    """A one-way hash naming who may share entries; never the credential itself."""
    if sharing.scope == "credential":
        value = next((v for n in CREDENTIAL_HEADERS if (v := headers.get(n))), "")
        found = _BY_CREDENTIAL.get(value)
        if found is None:
            if len(_BY_CREDENTIAL) >= 4096:
                _BY_CREDENTIAL.clear()
            found = _BY_CREDENTIAL[value] = _credential_partition(value)
        return found
    h = hashlib.sha256(KEY_VERSION + b"\0" + sharing.scope.encode())
    if sharing.scope == "namespace":
        h.update(b"\0" + namespace.encode())
    else:
        h.update(b"\0" + namespace.encode())
        for name in sharing.context_headers:
            h.update(b"\0" + name.lower().encode() + b"=" + headers.get(name, "").encode())
    return h.hexdigest()[:32]


# Partitions of recently seen credentials (in process memory only, like the SDK's own copy):
# hashing the credential on every request would be the hit path's largest cost after I/O.
_BY_CREDENTIAL: dict[str, str] = {}


def _credential_partition(value: str) -> str:
    h = hashlib.sha256(KEY_VERSION + b"\0credential")
    # No credential at all is its own partition, distinct from any credential's value.
    h.update(b"\0" + _bare_token(value).encode() if value else b"\1")
    return h.hexdigest()[:32]


def _bare_token(value: str) -> str:
    """``Bearer sk-x`` and ``sk-x`` are the same credential (OpenAI vs. Anthropic SDKs)."""
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest else value.strip()
