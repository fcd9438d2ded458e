"""Cache keys and tenant partitions.

A key is SHA-256 over a canonical JSON rendering of only the fields that change the answer
(chosen per API by the provider), prefixed by the route and the partition: the tenant (so two
tenants never share an entry unless the policy widens the scope on purpose) and the request's
*variant*, the headers and query string that can change an answer (``docs/cache-key.md``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from llmcache.policy import Sharing

KEY_VERSION = b"llmcache-key-v2"
CREDENTIAL_HEADERS = ("x-api-key", "authorization", "api-key")


# Headers that change an answer, per API family: the declared ones, and any other header with
# the family's prefix (an unknown ``anthropic-*`` / ``openai-*`` header is key material, as an
# unknown body field is: at worst a miss, never somebody else's answer).
ANSWER_HEADERS = {
    "anthropic": (b"anthropic-", frozenset({b"anthropic-version", b"anthropic-beta",
                                            b"anthropic-workspace-id"})),
    "openai": (b"openai-", frozenset({b"openai-organization", b"openai-project", b"openai-beta"})),
}  # fmt: skip
# Family-prefixed headers known not to change an answer (labels and browser opt-ins).
NEUTRAL_HEADERS = frozenset(
    {b"anthropic-dangerous-direct-browser-access", b"anthropic-user-profile-id",
     b"openai-poll-after-ms"}
)  # fmt: skip
# Headers whose value is a set of comma-separated tokens: order and repeats do not matter.
LIST_HEADERS = frozenset({b"anthropic-beta"})
_FIRST_BYTES = frozenset(b"aAoO")  # the first byte of every name above, in either case

RawHeaders = Iterable[tuple[bytes, bytes]]


def canonical(material: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 (orjson's rendering; the
    standard library's for what orjson refuses: integers beyond 64 bits, nesting deeper than
    orjson's limit, lone surrogates, which are kept as they are with ``surrogatepass``)."""
    try:
        return orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return _utf8(text)


def variant(family: str, raw_headers: RawHeaders, query: str) -> str:
    """The headers and query string that can change an answer, as one canonical string: one
    ``name:value`` line per header, sorted, then ``?query`` (empty for a plain SDK call).

    Runs on every request, hits included: names are screened by their first byte before any
    is lower-cased, and values stay bytes (decoded as latin-1, which cannot fail)."""
    prefix, declared = ANSWER_HEADERS[family]
    found: dict[bytes, bytes] = {}
    for name, value in raw_headers:
        if name[0] not in _FIRST_BYTES:
            continue
        lower = name.lower()
        if lower in declared or (lower.startswith(prefix) and lower not in NEUTRAL_HEADERS):
            found[lower] = found[lower] + b"," + value if lower in found else value
    if not found and not query:
        return ""
    lines = []
    for name in sorted(found):
        value = found[name]
        if name in LIST_HEADERS:
            value = b",".join(sorted({t.strip() for t in value.split(b",")} - {b""}))
        lines.append(name + b":" + value.strip())
    return b"\n".join(lines).decode("latin-1") + "\n?" + query


def cache_key(route: str, partition: str, material: Any) -> str:
    h = hashlib.sha256(KEY_VERSION)
    h.update(b"\0" + route.encode() + b"\0" + partition.encode() + b"\0")
    h.update(canonical(material))
    return h.hexdigest()


def partition(
    sharing: Sharing, headers: Mapping[str, str], namespace: str, variant: str = ""
) -> str:
    """A one-way hash naming who may share entries, and for which request variant (see
    ``variant``); never the credential itself."""
    if sharing.scope == "credential":
        value = next((v for n in CREDENTIAL_HEADERS if (v := headers.get(n))), "")
        found = _BY_CREDENTIAL.get((value, variant))
        if found is None:
            if len(_BY_CREDENTIAL) >= 4096:
                _BY_CREDENTIAL.clear()
            found = _BY_CREDENTIAL[value, variant] = _credential_partition(value, variant)
        return found
    h = hashlib.sha256(KEY_VERSION + b"\0" + sharing.scope.encode())
    h.update(b"\0" + _utf8(variant))
    if sharing.scope == "namespace":
        h.update(b"\0" + _utf8(namespace))
    else:
        h.update(b"\0" + _utf8(namespace))
        for name in sharing.context_headers:
            h.update(b"\0" + _utf8(name.lower()) + b"=" + _utf8(headers.get(name, "")))
    return h.hexdigest()[:32]


# Partitions of recently seen credentials (in process memory only, like the SDK's own copy):
# hashing the credential on every request would be the hit path's largest cost after I/O.
_BY_CREDENTIAL: dict[tuple[str, str], str] = {}


def _credential_partition(value: str, variant: str) -> str:
    h = hashlib.sha256(KEY_VERSION + b"\0credential")
    h.update(b"\0" + _utf8(variant))
    # No credential at all is its own partition, distinct from any credential's value.
    h.update(b"\0" + _utf8(_bare_token(value)) if value else b"\1")
    return h.hexdigest()[:32]


def _bare_token(value: str) -> str:
    """``Bearer sk-x`` and ``sk-x`` are the same credential (OpenAI vs. Anthropic SDKs)."""
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest else value.strip()


def _utf8(text: str) -> bytes:
    """UTF-8 that keeps lone surrogates (from JSON escapes, or header bytes aiohttp decoded
    with ``surrogateescape``) instead of failing on them."""
    return text.encode("utf-8", "surrogatepass")
