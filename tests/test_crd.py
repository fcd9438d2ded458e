"""The CachePolicy CRD: generated from the typed model, structural, and in agreement with it.

No cluster here: tests/kube/test_operator.py sends the same file to a real API server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmcache.operator.crd import crd, render
from pydantic import ValidationError

from llmcache.policy import CachePolicySpec, describe_error, parse_spec

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "cachepolicies.yaml"
EXAMPLE = ROOT / "examples" / "cachepolicy.yaml"


def spec_schema() -> dict[str, Any]:
    version = crd()["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"])


def walk(node: dict[str, Any], path: str = "spec") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        out += walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += walk(node["additionalProperties"], f"{path}{{}}")
    return out


def test_committed_crd_file_is_the_generated_one() -> None:
    assert CRD_FILE.read_text() == render(), (
        "stale: python -m llmcache.operator.crd > crds/cachepolicies.yaml"
    )


def test_module_prints_the_crd() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmcache.operator.crd"], capture_output=True, text=True, check=True
    ).stdout
    assert yaml.safe_load(out)["metadata"]["name"] == "cachepolicies.llmcache.dev"


def test_schema_is_structural() -> None:
    for path, node in walk(spec_schema()):
        assert "type" in node, f"{path} has no type"
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const"):
            assert banned not in node, f"{path} has {banned}"
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if node.get("type") == "object" and "properties" not in node:
            assert isinstance(node.get("additionalProperties"), dict), f"{path} is an open object"


def test_optional_fields_are_nullable_and_defaults_validate() -> None:
    nodes = dict(walk(spec_schema()))
    assert nodes["spec.redis.url"].get("nullable") is True
    assert nodes["spec.cacheability.maxTemperature"].get("nullable") is True
    assert nodes["spec.exact.ttlSeconds"]["default"] == 86_400
    assert nodes["spec.semantic.threshold"]["exclusiveMinimum"] is True
    assert nodes["spec.rag.upstreams"]["default"] == []
    assert nodes["spec.sidecar.resources"]["default"]["limits"]["memory"] == "512Mi"
    # Every default the API server would write is one pydantic accepts unchanged.
    defaults = _defaults(spec_schema())
    assert CachePolicySpec.model_validate(defaults) == CachePolicySpec()


def _defaults(node: dict[str, Any]) -> Any:
    """What the API server stores for ``spec: {}`` (defaults applied top-down)."""
    if node.get("type") != "object" or "properties" not in node:
        return node.get("default")
    out: dict[str, Any] = {}
    for name, child in node["properties"].items():
        if "default" in child:
            value = child["default"]
            if isinstance(value, dict) and "properties" in child:
                out[name] = {**_defaults(child), **value}
            else:
                out[name] = value
    return out


def test_status_printer_columns_and_names() -> None:
    spec = crd()["spec"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"]]
    assert columns == ["MODE", "TTL", "HIT-RATE", "SAVED-USD", "BUDGET-LEFT-USD", "AGE"]
    assert "cpol" in spec["names"]["shortNames"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions", "injectedPods", "hitRate", "savedUsd",
            "ledger", "budget"} <= set(status)  # fmt: skip
    assert "sidecars" not in status  # per-pod data never goes into the object


# ---- CEL rules and pydantic agree --------------------------------------------------------

celpy = pytest.importorskip("celpy", reason="cel-python not installed")


def _rules() -> list[tuple[str, dict[str, Any], str, str]]:
    """(path, node, rule, message) for every x-kubernetes-validations."""
    out = []
    for path, node in walk(spec_schema()):
        for rule in node.get("x-kubernetes-validations") or []:
            out.append((path, node, rule["rule"], rule["message"]))
    return out


def _at(doc: Any, path: str, node: dict[str, Any]) -> list[Any]:
    """The values at a ``walk`` path (``[]``: every item). An absent object counts as ``{}``
    (its schema default, which the API server validates too); an absent or null scalar is
    not validated at all."""
    values = [doc]
    parts = path.replace("[]", ".[]").split(".")[1:]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        absent = {} if not last or node.get("type") == "object" else None
        nxt: list[Any] = []
        for value in values:
            if part == "[]":
                nxt += value if isinstance(value, list) else []
            elif isinstance(value, dict):
                nxt.append(value.get(part, absent))
        values = nxt
    return [v for v in values if v is not None]


def cel_errors(spec: dict[str, Any]) -> list[str]:
    """Evaluate the CRD's CEL rules the way the API server does, on the defaulted object:
    ``<path>: <message>`` per failed rule. ``quantity()`` is Kubernetes' own library:
    evaluated by the real API server in tests/kube, skipped here."""
    env = celpy.Environment()
    errors = []
    for path, node, rule, message in _rules():
        if "quantity(" in rule:
            continue
        program = env.program(env.compile(rule))
        for value in _at(spec, path, node):
            if not bool(program.evaluate({"self": celpy.json_to_cel(value)})):
                errors.append(f"{path}: {message}")
    return errors


def rag_store(url: str) -> dict[str, Any]:
    return {"name": "docs", "kind": "qdrant", "url": url}


def upstream(url: str) -> dict[str, Any]:
    return {"upstreams": {"openai": url}}


def redis(url: str) -> dict[str, Any]:
    return {"redis": {"url": url}}


CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("empty policy", {}, None),
    ("semantic on", {"semantic": {"enabled": True, "threshold": 0.9}}, None),
    ("rag without upstreams", {"rag": {"enabled": True}}, "rag.upstreams"),
    (
        "rag with an upstream",
        {"rag": {"enabled": True, "upstreams": [rag_store("http://qdrant:6333")]}},
        None,
    ),
    ("headers scope without headers", {"sharing": {"scope": "headers"}}, "contextHeaders"),
    (
        "headers scope with a header",
        {"sharing": {"scope": "headers", "contextHeaders": ["x-tenant"]}},
        None,
    ),
    # URLs (issue 17: a file:// upstream was accepted, then every request failed with 500).
    ("file upstream", {"upstreams": {"anthropic": "file:///etc/passwd"}}, "http:// or https://"),
    ("ftp embedder", {"semantic": {"embedder": {"url": "ftp://e/v1"}}}, "http:// or https://"),
    ("bare host:port store", {"rag": {"upstreams": [rag_store("qdrant:6333")]}}, "http://"),
    ("upstream with credentials", upstream("https://u:pw@api.openai.com"), "credentials"),
    ("upstream with a user", upstream("https://sk-123@api.openai.com"), "credentials"),
    ("upstream with a query", upstream("https://api.openai.com/v1?key=1"), "query"),
    ("upstream with a fragment", upstream("https://api.openai.com/#x"), "fragment"),
    ("upstream without a host", upstream("http://"), "host"),
    ("upstream with a port too high", upstream("http://sim:65536"), "65535"),
    ("upstream with a space", upstream("http://sim /v1"), "path characters"),
    ("upstream with a newline", upstream("http://sim\n"), "path characters"),
    ("upstream gateway path", upstream("https://gw.internal:8443/anthropic/"), None),
    ("upstream ipv6 literal", upstream("http://[::1]:9000"), None),
    ("redis with a password", redis("redis://admin:s3cret@redis:6379/0"), None),
    ("redis tls with options", redis("rediss://:pw@redis.example:6380/1?ssl_cert_reqs=none"), None),
    ("redis unix socket", redis("unix:///var/run/redis.sock?db=2"), None),
    ("redis over http", redis("http://redis:6379"), "redis://, rediss:// or unix://"),
    ("redis db not a number", redis("redis://redis:6379/zero"), "[/db]"),
    ("redis without a host", redis("redis://:6379"), "[/db]"),
    ("unix without a path", redis("unix://"), "unix:///path/to/socket"),
    ("redis cluster", redis("redis+cluster://10.0.0.1:6379,10.0.0.2:6379,redis-2:7000"), None),
    ("redis cluster tls", redis("rediss+cluster://:pw@cfg.cache.example?ssl_cert_reqs=none"), None),
    ("redis sentinel", redis("redis+sentinel://u:pw@s1:26379,s2:26379,s3/mymaster/2"), None),
    ("sentinel without a service", redis("redis+sentinel://s1:26379"), "/service[/db]"),
    ("cluster with a db", redis("redis+cluster://c1:6379/1"), "host:port[,host:port...]"),
    ("cluster with an empty node", redis("redis+cluster://c1:6379,,c2"), "redis+cluster://"),
    ("misspelt cluster scheme", redis("redis+clustr://c1:6379"), "redis+cluster://"),
]


@pytest.mark.parametrize(("case", "spec", "error"), CASES, ids=[c[0] for c in CASES])
def test_pydantic_and_cel_agree(case: str, spec: dict[str, Any], error: str | None) -> None:
    try:
        parse_spec(spec)
        pydantic_error = None
    except ValidationError as exc:
        pydantic_error = describe_error(exc)
    # The API server applies the schema's defaults before it evaluates CEL.
    defaulted = _merge(_defaults(spec_schema()), spec)
    cel = cel_errors(defaulted)
    if error is None:
        assert pydantic_error is None and cel == []
    else:
        assert pydantic_error is not None and error in pydantic_error
        assert cel and error in cel[0]


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {
            k: _merge(base.get(k), over.get(k)) if k in over else base[k] for k in {*base, *over}
        }
    return over


def test_example_policy_is_valid() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    assert doc["kind"] == "CachePolicy"
    spec = CachePolicySpec.model_validate(doc["spec"])
    assert cel_errors(spec.to_json()) == []
