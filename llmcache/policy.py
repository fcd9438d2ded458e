"""The CachePolicy ``spec``: the one typed source of truth.

The CRD's OpenAPI schema is generated from these models (``llmcache.operator.crd``), the
operator validates and normalises with them, and the sidecar reads its ``--policy`` file
and every live update through them. Field names are the CRD's camelCase; Python code uses
the snake_case attribute names.

Cross-field rules that the API server must enforce are declared next to the model as CEL
expressions (``x-kubernetes-validations``) *and* as pydantic validators, so a policy file
handed straight to a sidecar is held to the same rules as one applied with kubectl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

API_GROUP = "llmcache.dev"
API_VERSION = "v1alpha1"
KIND = "CachePolicy"
PLURAL = "cachepolicies"

MIB = 1024 * 1024


def cel(rule: str, message: str) -> JsonDict:
    """One ``x-kubernetes-validations`` entry."""
    return {"rule": rule, "message": message}


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class SecretKeyRef(_Model):
    """A key of a Secret in the policy's namespace."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


class ExactLayer(_Model):
    """Exact-match layers: in-process L1 in front of the shared Redis L2."""

    enabled: bool = True
    ttl_seconds: int = Field(default=86_400, ge=1, le=31 * 86_400)
    sliding_ttl: bool = Field(
        default=False, description="Refresh the TTL on every hit (absolute TTL otherwise)."
    )
    l1_max_entries: int = Field(default=10_000, ge=0, le=10_000_000)
    l1_max_bytes: int = Field(default=64 * MIB, ge=0, le=16 * 1024 * MIB)


class Embedder(_Model):
    """Where semantic keys are embedded: the shared ``llmcache embedder`` or any
    OpenAI-compatible ``/v1/embeddings`` endpoint."""

    url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible embeddings API; unset means the "
        "in-process local model (needs the `embed` extra).",
    )
    model: str = "all-MiniLM-L6-v2"
    api_key_secret_ref: SecretKeyRef | None = None
    timeout_ms: int = Field(default=250, ge=1, le=60_000)


class SemanticLayer(_Model):
    """Similarity lookup on a canonical rendering of the prompt, after the exact layers."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.threshold) || (self.threshold > 0.0 && self.threshold <= 1.0)",
                    "semantic.threshold must be in (0, 1]",
                )
            ]
        }
    )

    enabled: bool = False
    threshold: float = Field(default=0.95, gt=0.0, le=1.0)
    ttl_seconds: int = Field(default=86_400, ge=1, le=31 * 86_400)
    max_entries: int = Field(default=100_000, ge=1, le=10_000_000)
    shadow: bool = Field(
        default=False,
        description="Score candidates but always go upstream; export would-be hit rates.",
    )
    verify: bool = Field(
        default=True,
        description="Check numbers, negations, entities and term order before a hit.",
    )
    embedder: Embedder = Embedder()


RagKind = Literal["qdrant", "chroma"]


class RagUpstream(_Model):
    """A vector store fronted under ``/rag/<name>/``."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    kind: RagKind
    url: str = Field(min_length=1)


class RagLayer(_Model):
    """Vector-store query cache: exact, then similarity on the query vector itself."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.enabled) || !self.enabled || "
                    "(has(self.upstreams) && size(self.upstreams) > 0)",
                    "rag.upstreams must list at least one vector store when rag.enabled",
                ),
            ]
        }
    )

    enabled: bool = False
    threshold: float = Field(default=0.98, gt=0.0, le=1.0)
    ttl_seconds: int = Field(default=3_600, ge=1, le=31 * 86_400)
    upstreams: list[RagUpstream] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _upstreams_when_enabled(self) -> RagLayer:
        if self.enabled and not self.upstreams:
            raise ValueError("rag.upstreams must list at least one vector store when rag.enabled")
        return self


BatchMode = Literal["off", "coalesce", "batch"]


class Batching(_Model):
    """Upstream call shaping: ``coalesce`` merges identical in-flight requests; ``batch``
    also holds embeddings calls for ``windowMs`` to send up to ``maxSize`` together."""

    mode: BatchMode = "coalesce"
    window_ms: int = Field(default=5, ge=0, le=10_000)
    max_size: int = Field(default=16, ge=1, le=2_048)


class Cacheability(_Model):
    """Which requests may be cached at all (errors, truncated, refused and stateful
    requests never are)."""

    max_temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description="Requests sampling hotter than this are not cached; unset means no "
        "ceiling. An omitted temperature counts as the API default (1.0).",
    )
    include_routes: list[str] = Field(default_factory=list)
    exclude_routes: list[str] = Field(default_factory=list)
    include_models: list[str] = Field(default_factory=list, description="Glob patterns.")
    exclude_models: list[str] = Field(default_factory=list, description="Glob patterns.")


SharingScope = Literal["credential", "namespace", "headers"]


class Sharing(_Model):
    """Who may be served whose entries. ``credential`` (default): only callers presenting
    the same API key. ``namespace``: every caller of the policy in its namespace.
    ``headers``: callers whose listed request headers carry equal values."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.scope) || self.scope != 'headers' || "
                    "(has(self.contextHeaders) && size(self.contextHeaders) > 0)",
                    "sharing.contextHeaders must name at least one header when "
                    "sharing.scope is 'headers'",
                ),
            ]
        }
    )

    scope: SharingScope = "credential"
    context_headers: list[str] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _headers_for_scope(self) -> Sharing:
        if self.scope == "headers" and not self.context_headers:
            raise ValueError(
                "sharing.contextHeaders must name at least one header when sharing.scope "
                "is 'headers'"
            )
        return self


class Redis(_Model):
    """The shared L2. Neither URL nor Secret means in-process memory only."""

    url: str | None = Field(default=None, pattern=r"^(redis|rediss|unix)://")
    url_secret_ref: SecretKeyRef | None = None
    key_prefix: str = Field(default="llmcache", min_length=1, max_length=64)
    timeout_ms: int = Field(default=50, ge=1, le=10_000)


class Upstreams(_Model):
    anthropic: str = "https://api.anthropic.com"
    openai: str = "https://api.openai.com"


class Price(_Model):
    """USD per million tokens."""

    input: float = Field(ge=0.0)
    output: float = Field(ge=0.0)
    cache_read: float | None = Field(default=None, ge=0.0)
    cache_write: float | None = Field(default=None, ge=0.0)


# Bounded so the API server can afford the CEL rule that parses the memory limit.
Quantity = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|m|k|M|G|T)?$")
]


class Resources(_Model):
    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=8)


class Sidecar(_Model):
    """The injected container."""

    image: str | None = Field(default=None, description="Defaults to the operator's image.")
    resources: Resources = Resources(
        requests={"cpu": "50m", "memory": "96Mi"}, limits={"memory": "512Mi"}
    )
    port: int = Field(default=8787, ge=1024, le=65_535)


class Limits(_Model):
    max_body_bytes: int = Field(default=16 * MIB, ge=1_024, le=512 * MIB)


OnDelete = Literal["keep", "flush"]


class CachePolicySpec(_Model):
    """``spec`` of a CachePolicy; every field has a default, so ``{}`` is a valid policy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    # Index syntax and double(): the API server's cost estimator gives up
                    # on quantity(string(int)) and on field selection into the map.
                    "!has(self.exact) || !has(self.sidecar) || "
                    "!has(self.sidecar.resources) || !has(self.sidecar.resources.limits) || "
                    "!('memory' in self.sidecar.resources.limits) || "
                    "!has(self.exact.l1MaxBytes) || "
                    "quantity(self.sidecar.resources.limits['memory']).asApproximateFloat() > "
                    "double(self.exact.l1MaxBytes)",
                    "exact.l1MaxBytes must be below sidecar.resources.limits.memory",
                ),
            ]
        }
    )

    exact: ExactLayer = ExactLayer()
    semantic: SemanticLayer = SemanticLayer()
    rag: RagLayer = RagLayer()
    batching: Batching = Batching()
    cacheability: Cacheability = Cacheability()
    sharing: Sharing = Sharing()
    redis: Redis = Redis()
    upstreams: Upstreams = Upstreams()
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="USD per MTok by model name; overrides the built-in table.",
    )
    sidecar: Sidecar = Sidecar()
    limits: Limits = Limits()
    on_delete: OnDelete = Field(
        default="keep", description="On policy deletion, keep or flush its cached entries."
    )

    @model_validator(mode="after")
    def _l1_within_memory_limit(self) -> CachePolicySpec:
        limit = self.sidecar.resources.limits.get("memory")
        if limit is not None and self.exact.l1_max_bytes >= parse_quantity(limit):
            raise ValueError("exact.l1MaxBytes must be below sidecar.resources.limits.memory")
        return self

    def to_json(self) -> dict[str, Any]:
        """The normalised spec as the CRD spells it."""
        return self.model_dump(mode="json", by_alias=True)


_SUFFIXES = {
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
    "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
}  # fmt: skip


def parse_quantity(text: str) -> float:
    """A Kubernetes resource quantity (``512Mi``, ``1G``, ``100m``) in base units."""
    text = text.strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def load_spec(path: str | Path) -> CachePolicySpec:
    """Read a policy file: a bare ``spec``, or a whole CachePolicy manifest (YAML or JSON)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if isinstance(data, dict) and data.get("kind") == KIND:
        data = data.get("spec") or {}
    return CachePolicySpec.model_validate(data)
