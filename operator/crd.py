"""The ``cachepolicies.llmcache.dev`` CRD, generated from ``llmcache.policy.CachePolicySpec``.

Generated rather than written so the API server, the operator and the sidecar can never
disagree about a field: ``crds/cachepolicies.yaml`` is this module's output and a test
fails when the two drift. Run ``python -m llmcache.operator.crd > crds/cachepolicies.yaml``.

Kubernetes wants a *structural* OpenAPI v3 schema: no ``$ref``, no ``anyOf`` with null
(``nullable`` instead), no ``additionalProperties: false`` next to ``properties``, and
defaults that are complete at every level. Nested objects default to ``{}`` so the API
server fills in their own field defaults, exactly as pydantic does.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import yaml
from pydantic import BaseModel

from llmcache import policy
from llmcache.policy import API_GROUP, API_VERSION, KIND, PLURAL, CachePolicySpec

from .ledger import LEDGER_COUNTERS, PERIOD_COUNTERS

SHORT_NAMES = ["cpol"]
CATEGORIES = ["llmcache"]
_DROP = {"title", "additionalProperties", "$defs"}

CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string", "maxLength": 64},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string", "maxLength": 128},
        "message": {"type": "string", "maxLength": 32768},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
    },
}

PERIOD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start": {"type": "string"},
        **{c: {"type": "integer", "format": "int64"} for c in PERIOD_COUNTERS},
    },
}

STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Written by the operator only.",
    "properties": {
        "observedGeneration": {"type": "integer", "format": "int64"},
        "conditions": {
            "type": "array",
            "items": CONDITION_SCHEMA,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
        "mode": {
            "type": "string",
            "description": "Enabled layers, e.g. exact+semantic(shadow).",
        },
        "injectedPods": {
            "type": "integer",
            "description": "Pods whose sidecars reported statistics recently.",
        },
        "requests": {"type": "integer", "format": "int64"},
        "hits": {"type": "integer", "format": "int64"},
        "hitRate": {"type": "number"},
        "savedUsd": {"type": "number"},
        "spentUsd": {"type": "number"},
        "tokensSaved": {"type": "integer", "format": "int64"},
        "statsUpdated": {"type": "string", "format": "date-time"},
        "ledger": {
            "type": "object",
            "description": "Each operator replica's running sums of what sidecars reported "
            "to it (exact, cumulative; O(replicas), never per pod); the totals above are their "
            "sum (docs/operator.md#statistics).",
            "properties": {
                "replicas": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            **{c: {"type": "integer", "format": "int64"} for c in LEDGER_COUNTERS},
                            "pods": {"type": "integer", "format": "int64"},
                            "at": {"type": "string", "format": "date-time"},
                            "day": PERIOD_SCHEMA,
                            "month": PERIOD_SCHEMA,
                        },
                    },
                },
            },
        },
        "budget": {
            "type": "object",
            "description": "Spend of the current budget period (spec.budget), all sidecars.",
            "properties": {
                "period": {"type": "string"},
                "periodStart": {"type": "string", "format": "date-time"},
                "amountUsd": {"type": "number"},
                "spentUsd": {"type": "number"},
                "savedUsd": {"type": "number"},
                "remainingUsd": {"type": "number"},
                "usedRatio": {"type": "number"},
                "threshold": {
                    "type": "number",
                    "description": "The highest threshold crossed this period (0: none).",
                },
                "exhausted": {"type": "boolean"},
            },
        },
        "lastFlush": {
            "type": "object",
            "description": "The last flush requested with the llmcache.dev/flush annotation.",
            "properties": {
                "id": {"type": "string"},
                "removed": {"type": "integer", "format": "int64"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "model": {"type": "string"},
                "time": {"type": "string", "format": "date-time"},
                "error": {"type": "string"},
            },
        },
        "redisUser": {
            "type": "object",
            "description": "The policy's own user in the shared Redis (admin-credential mode, "
            "docs/deploy.md); its password is delivered to the policy's sidecars only.",
            "properties": {
                "user": {"type": "string"},
                "epoch": {"type": "integer", "format": "int64", "minimum": 1},
                "rotatedAt": {"type": "string", "format": "date-time"},
                "previousValidUntil": {
                    "type": "string",
                    "format": "date-time",
                    "description": "The previous password is accepted until then.",
                },
                "rotation": {
                    "type": "string",
                    "description": "The last llmcache.dev/rotate-redis-password handled.",
                },
            },
        },
    },
}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Mode", "type": "string", "jsonPath": ".status.mode"},
    {"name": "TTL", "type": "integer", "jsonPath": ".spec.exact.ttlSeconds"},
    {"name": "Hit-Rate", "type": "number", "jsonPath": ".status.hitRate"},
    {"name": "Saved-USD", "type": "number", "jsonPath": ".status.savedUsd"},
    {"name": "Budget-Left-USD", "type": "number", "jsonPath": ".status.budget.remainingUsd"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _models() -> dict[str, type[BaseModel]]:
    return {
        name: obj
        for name, obj in vars(policy).items()
        if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == policy.__name__
    }


class _Converter:
    """Pydantic JSON schema → structural OpenAPI v3, with defaults taken from the models."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = root.get("$defs", {})
        self.models = _models()

    def model(self, schema: dict[str, Any], cls: type[BaseModel]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if "description" in schema:
            out["description"] = " ".join(schema["description"].split())
        if "required" in schema:
            out["required"] = list(schema["required"])
        props: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            node = self.node(schema["properties"][alias])
            default = self._default(field)
            if default is not None:
                node["default"] = default
            props[alias] = node
        out["properties"] = props
        if "x-kubernetes-validations" in schema:
            out["x-kubernetes-validations"] = schema["x-kubernetes-validations"]
        return out

    def node(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema = dict(schema)
        nullable = False
        if "anyOf" in schema:
            variants = [v for v in schema.pop("anyOf") if v.get("type") != "null"]
            if len(variants) != 1:
                raise ValueError(f"cannot express anyOf {variants} structurally")
            nullable = True
            schema = {**variants[0], **{k: v for k, v in schema.items() if k != "default"}}
        if "$ref" in schema:
            name = schema.pop("$ref").rsplit("/", 1)[-1]
            extra = {k: v for k, v in schema.items() if k == "description"}
            out = self.model(self.defs[name], self.models[name])
            out.update(extra)
        else:
            out = self._leaf(schema)
        if nullable:
            out["nullable"] = True
        return out

    def _leaf(self, schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": schema["type"]} if "type" in schema else {}
        for key, value in schema.items():
            if key in _DROP or key in ("default", "type"):
                continue
            if key == "items":
                out["items"] = self.node(value)
            elif key == "exclusiveMinimum":
                out["minimum"] = value
                out["exclusiveMinimum"] = True
            elif key == "exclusiveMaximum":
                out["maximum"] = value
                out["exclusiveMaximum"] = True
            elif key == "description":
                out["description"] = " ".join(value.split())
            else:
                out[key] = value
        if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
            out["additionalProperties"] = self.node(schema["additionalProperties"])
        return out

    def _default(self, field: Any) -> Any:
        if field.is_required():
            return None
        value = field.get_default(call_default_factory=True)
        if value is None:
            return None
        if isinstance(value, BaseModel):
            # {} lets the API server apply the nested defaults itself; only a default that
            # differs from the nested model's own defaults is spelled out.
            if value == type(value)():
                return {}
            return value.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.loads(json.dumps(value))


def spec_schema() -> dict[str, Any]:
    root = CachePolicySpec.model_json_schema(by_alias=True, mode="validation")
    return _Converter(root).model(root, CachePolicySpec)


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition manifest."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "llmcache"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "How one application's LLM and RAG traffic is cached.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {**spec_schema(), "default": {}},
                                "status": STATUS_SCHEMA,
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = "# Generated by `python -m llmcache.operator.crd` from llmcache/policy.py: do not edit.\n"


def render() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
