"""The API server and the sidecar's model give the same verdict on a CachePolicy spec.

The CRD is generated from ``llmcache.policy`` and its CEL rules are checked offline
(tests/test_crd.py), but only the real API server says how its structural schema treats
``false`` for an integer, ``1.0``, ``null`` or an unknown field. Issue 17: URLs the sidecar
cannot use passed both, and numbers the API server refuses passed the sidecar.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from llmcache.policy import CachePolicySpec, describe_error, parse_spec
from tests.kube.kubeutil import ApiError, ControlPlane, KubeClient, wait_for
from tests.kube.operator_env import condition, delete_and_wait, policy, running_operator

pytestmark = pytest.mark.controlplane

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "cachepolicies.yaml"
GROUP_VERSION = "llmcache.dev/v1alpha1"
NS = "policy-validation"
# A longer hunt: LLMCACHE_POLICY_FUZZ_SEED=<n> LLMCACHE_POLICY_FUZZ_CASES=<n> pytest ...
SEED = int(os.environ.get("LLMCACHE_POLICY_FUZZ_SEED", "17"))
CASES = int(os.environ.get("LLMCACHE_POLICY_FUZZ_CASES", "200"))

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def crd(kube: KubeClient) -> Obj:
    kube.apply_yaml(CRD_FILE)
    established = kube.wait_established(yaml.safe_load(CRD_FILE.read_text())["metadata"]["name"])
    kube.ensure_namespace(NS)
    return established


def server_verdict(kube: KubeClient, spec: Any) -> str | None:
    """``None`` when the API server would store the policy, else its message. Field
    validation is Strict, as kubectl asks for: an unknown field is an error, not a warning."""
    body = {
        "apiVersion": GROUP_VERSION,
        "kind": "CachePolicy",
        "metadata": {"name": "probe", "namespace": NS},
        "spec": spec,
    }
    try:
        kube.request(
            "POST",
            f"/apis/{GROUP_VERSION}/namespaces/{NS}/cachepolicies",
            body,
            query={"dryRun": "All", "fieldValidation": "Strict"},
        )
    except ApiError as err:
        if err.status not in (400, 422):
            raise
        return err.message
    return None


def model_verdict(spec: Any) -> str | None:
    try:
        parse_spec(spec)
    except ValidationError as exc:
        return describe_error(exc)
    return None


# ---- random policies ------------------------------------------------------------------------


def base_spec() -> Obj:
    """Every field present (the model's defaults), the optional ones set too."""
    spec: Obj = CachePolicySpec().to_json()
    spec["semantic"]["embedder"].update(
        url="http://embedder:8090/v1", apiKeySecretRef={"name": "embedder", "key": "api-key"}
    )
    spec["rag"].update(
        enabled=True, upstreams=[{"name": "docs", "kind": "qdrant", "url": "http://qdrant:6333"}]
    )
    spec["cacheability"].update(maxTemperature=0.5, includeModels=["claude-*"])
    spec["sharing"].update(scope="headers", contextHeaders=["x-tenant"])
    spec["redis"].update(
        url="redis://admin:pw@redis:6379/0", urlSecretRef={"name": "redis", "key": "url"}
    )
    spec["upstreams"]["openai"] = "http://sim.test:9000/v1"
    spec["prices"] = {"my-model": {"input": 1.0, "output": 2, "cacheRead": 0.1}}
    spec["sidecar"]["image"] = "llmcache:dev"
    return json.loads(json.dumps(spec))  # plain JSON types, as sent


SCALARS: list[Any] = [
    True, False, None, 0, 1, -1, 2, 5, 1.0, 60.0, 0.5, 1.5, 2.5, 1e9, 2**31, 2**40, 2**62,
    "", "5", "1.0", "true", "x", "keep", "coalesce", "headers", "512Mi", [], ["x"], {}, {"a": 1},
]  # fmt: skip
URLS = [
    "http://host", "https://api.example.com/v1/", "http://[::1]:8080", "http://127.0.0.1:65535",
    "https://host:0", "http://host:65536", "http://host:08080", "file:///etc/passwd",
    "ftp://host/x", "HTTP://host", "http://", "http:///path", "http://:80", "https://u:p@host",
    "https://token@host/", "http://host/?q=1", "http://host/#frag", "http://host /x", "host:80",
    "http://host\n", "http://-host", "http://host-/", "http://ho_st", "http://h%20st",
    "http://host/a b", "http://host/päth", "http://hóst", "//host", "http://host:80:90",
    "redis://redis:6379/0", "rediss://:pw@redis:6380/1?ssl_cert_reqs=none", "redis://u:p@[::1]",
    "unix:///run/redis.sock", "unix://", "unix://host/x", "redis://:6379", "redis://r/zero",
    "redis://r:6379/0?db=1#x", "redis://a@b@host", "redis://r/0\n", " redis://r",
]  # fmt: skip
STRINGS = ["", " ", "a", "x" * 70, "x" * 300, "Ünïcode", "a\nb", "-bad-", "bad_name", "ok-name"]


def leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every value, objects and lists included."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += leaves(value, (*path, i))
    return out


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def mutate(spec: Obj, rng: random.Random) -> str:
    """One random change to ``spec`` in place: a dropped or unknown field, a value of the
    same type (bounds, URLs, patterns), or a value of another type; returns what it did."""
    path = rng.choice(leaves(spec)[1:])
    parent, key = get(spec, path[:-1]), path[-1]
    old = parent[key]
    roll = rng.random()
    if isinstance(parent, dict) and roll < 0.08:
        parent.pop(key)
        return f"drop {path}"
    if isinstance(old, dict) and roll < 0.16:
        old["bogusField"] = 1
        return f"unknown field under {path}"
    new: Any
    if roll < 0.55:  # same type
        if isinstance(old, bool):
            new = not old
        elif isinstance(old, int):
            new = rng.choice([0, 1, -1, old // 2, old + 1, old * 2, old * 1000, 2**40])
        elif isinstance(old, float):
            new = rng.choice([0.0, 0.05, 0.5, 0.99, 1.0, 1.5, 2.0, 2.01, -0.5])
        elif isinstance(old, str):
            new = rng.choice(URLS if "://" in old else STRINGS + URLS[:3])
        elif isinstance(old, list):
            new = rng.choice([[], old * 2, old * 40])
        else:
            new = {}
    else:
        new = rng.choice(SCALARS + STRINGS[:3] + URLS[:2])
    parent[key] = new
    return f"{path} = {new!r}"


def random_specs(count: int, seed: int) -> list[tuple[str, Any]]:
    rng = random.Random(seed)
    base = base_spec()
    out: list[tuple[str, Any]] = []
    while len(out) < count:
        spec = copy.deepcopy(base)
        changes = [mutate(spec, rng) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        out.append(("; ".join(changes), spec))
    return out


# What the API server does with each (found with the random test, kept as a record):
EDGES: list[tuple[Obj, bool]] = [
    ({"exact": {"ttlSeconds": 60.0}}, True),  # a whole float is an integer
    ({"exact": {"ttlSeconds": 60.5}}, False),
    ({"exact": {"ttlSeconds": "60"}}, False),
    ({"exact": {"l1MaxBytes": True}}, False),  # the example
    ({"cacheability": {"maxTemperature": False}}, False),  # the example
    # ... except where a CEL rule reads the field: "expected int, got float64".
    ({"exact": {"l1MaxBytes": 1048576.0}}, False),
    ({"semantic": {"threshold": 1}}, True),  # an integer is a number
    ({"exact": {"enabled": 1}}, False),
    ({"exact": {"ttlSeconds": None}}, True),  # null, not nullable: pruned, then defaulted
    ({"redis": None}, True),
    ({"cacheability": {"includeModels": None}}, True),
    ({"cacheability": {"includeModels": [None]}}, False),  # a null item is not pruned
    ({"prices": {"m": None}}, True),  # nor is a null map value... it is pruned
    ({"sidecar": {"resources": {"limits": {"memory": None}}}}, True),
    ({"cacheability": {"maxTemperature": None}}, True),  # nullable
    ({"redis": {"url": None}}, True),  # nullable: no CEL rule runs on null
    ({"rag": {"upstreams": [{"name": "d", "kind": "qdrant", "url": None}]}}, False),
    ({"rag": {"upstreams": [None]}}, False),
    ({"upstreams": {"anthropic": "file:///etc/passwd"}}, False),  # the example
    ({"upstreams": {"anthropic": "https://u:p@api.anthropic.com"}}, False),
    ({"upstreams": {"anthropic": "http://127.0.0.1:9000/anthropic"}}, True),
    ({"redis": {"url": "redis://admin:s3cret@redis:6379/0"}}, True),
    ({"redis": {"url": "redis://admin:s3cret@redis:6379/zero"}}, False),
    ({"exact": {"ttl_seconds": 5}}, False),  # snake_case: unknown to the API server
    ({"bogusField": 1}, False),
]


@pytest.mark.parametrize(("spec", "valid"), EDGES, ids=[json.dumps(e[0]) for e in EDGES])
def test_edge_cases_get_the_same_verdict(
    crd: Obj, kube: KubeClient, spec: Obj, valid: bool
) -> None:
    server, model = server_verdict(kube, spec), model_verdict(spec)
    assert (server is None, model is None) == (valid, valid), (server, model)


def test_the_base_policy_is_valid_for_both(crd: Obj, kube: KubeClient) -> None:
    spec = base_spec()
    assert server_verdict(kube, spec) is None
    assert model_verdict(spec) is None


def test_the_api_server_and_the_sidecar_agree_on_random_policies(
    crd: Obj, kube: KubeClient
) -> None:
    disagreements = []
    rejected = 0
    for what, spec in random_specs(CASES, SEED):
        server, model = server_verdict(kube, spec), model_verdict(spec)
        rejected += server is not None
        if (server is None) != (model is None):
            disagreements.append(f"{what}\n    API server: {server}\n    sidecar: {model}")
    assert not disagreements, f"{len(disagreements)} of {CASES}:\n" + "\n".join(disagreements)
    # Both verdicts are common: the generator is not one-sided.
    assert CASES // 10 < rejected < CASES * 9 // 10, rejected


# ---- the operator: no Redis password in its status, events or log ---------------------------

SECRET = "s3cret"


def without_url_rules(crd_doc: Obj) -> Obj:
    """The CRD as it was before URLs were validated: no ``matches()`` rules."""

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            rules = node.get("x-kubernetes-validations")
            if rules is not None:
                kept = [r for r in rules if "matches(" not in r["rule"]]
                if kept:
                    node["x-kubernetes-validations"] = kept
                else:
                    del node["x-kubernetes-validations"]
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    doc = copy.deepcopy(crd_doc)
    strip(doc)
    return doc


def replace_crd(kube: KubeClient, doc: Obj) -> None:
    """PUT, not apply: every rule left out goes, whichever field manager set it."""
    name = doc["metadata"]["name"]
    current = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    assert current is not None
    body = copy.deepcopy(doc)
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.request("PUT", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", body)
    kube.wait_established(name)


def test_a_stored_policy_now_invalid_is_reported_without_its_redis_password(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A policy stored before an upgrade tightened the rules reaches the operator, which
    must say what to fix (status, event, log) without repeating the password (issue 17)."""
    name, url = "legacy", f"redis://admin:{SECRET}@redis:6379/zero"
    crd_doc = yaml.safe_load(CRD_FILE.read_text())
    with running_operator(controlplane, tmp_path_factory.mktemp("operator")) as env:
        env.kube.ensure_namespace(NS)
        replace_crd(env.kube, without_url_rules(crd_doc))
        try:
            env.kube.apply(policy(NS, name, {"redis": {"url": url}, "exact": {"ttlSeconds": 60}}))
        finally:
            replace_crd(env.kube, crd_doc)
        degraded = wait_for(
            lambda: condition(env.policy(NS, name), "Degraded"),
            timeout=30,
            what="the Degraded condition",
        )
        assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
        assert degraded["message"].startswith("spec.redis.url: must be redis://host")
        assert "(got 'redis://admin:***@redis:6379/zero')" in degraded["message"]

        def warned() -> list[str]:
            return [
                e["message"]
                for e in env.kube.list("v1", "Event", NS)
                if e["involvedObject"]["name"] == name and e.get("reason") == "InvalidSpec"
            ]

        assert degraded["message"] in wait_for(warned, what="the InvalidSpec event")
        wait_for(lambda: "invalid spec" in env.proc.output(), what="the operator's log line")
        delete_and_wait(env, NS, name)
        log = env.proc.output()
    assert SECRET not in log, [line for line in log.splitlines() if SECRET in line]
    assert "admin:***@redis" in log
