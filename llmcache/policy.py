"""The CachePolicy ``spec``: the one typed source of truth.

The CRD's OpenAPI schema is generated from these models (``llmcache.operator.crd``), the
operator validates and normalises with them, and the sidecar reads its ``--policy`` file
and every live update through them. Field names are the CRD's camelCase; Python code uses
the snake_case attribute names.

Cross-field rules that the API server must enforce are declared next to the model as CEL
expressions (``x-kubernetes-validations``) *and* as pydantic validators, so a policy file
handed straight to a sidecar is held to the same rules as one applied with kubectl. Types
are strict for the same reason: the API server refuses ``false`` or ``"5"`` for a number,
so the sidecar does too (tests/kube/test_policy_validation.py compares the two verdicts).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    ValidationError,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict, JsonValue
from pydantic_core import PydanticCustomError

from llmcache.redact import redact

API_GROUP = "llmcache.dev"
API_VERSION = "v1alpha1"
KIND = "CachePolicy"
PLURAL = "cachepolicies"

MIB = 1024 * 1024


def cel(rule: str, message: str) -> JsonDict:
    """One ``x-kubernetes-validations`` entry."""
    return {"rule": rule, "message": message}


# ---- URLs: one list of rules, checked by pydantic and compiled to CEL for the API server --

# RE2 (the API server's and cel-python's engine) and Python's re agree on these patterns:
# plain character classes only, no \s or \w (whose Unicode meaning differs), and anchoring
# is added per engine (Python's "$" would also match before a trailing newline).
_HOST = r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])"
_PORT = (  # 1-65535, no leading zero
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}"
    r"|[1-9][0-9]{0,3}))?"
)
_PCHARS = r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]"  # RFC 3986 path characters
# Up to the last "@", as redis-py's urlparse reads it (an unencoded "@" in a password works).
_USERINFO = r"(?:[A-Za-z0-9._~!$&'()*+,;=:%@-]*@)?"
_QUERY = r"(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?"


class UrlRule:
    """``match``: the whole value matches; ``prefix``: it starts with a match; ``forbid``:
    nothing in it matches."""

    def __init__(self, kind: Literal["match", "prefix", "forbid"], body: str, message: str):
        self.kind, self.body, self.message = kind, body, message
        self._re = re.compile(body)

    def ok(self, value: str) -> bool:
        if self.kind == "match":
            return self._re.fullmatch(value) is not None
        if self.kind == "prefix":
            return self._re.match(value) is not None
        return self._re.search(value) is None

    def cel(self) -> JsonDict:
        literal = self.body.replace("\\", "\\\\").replace('"', '\\"')
        if self.kind == "match":
            return cel(f'self.matches("^(?:{literal})$")', self.message)
        if self.kind == "prefix":
            return cel(f'self.matches("^(?:{literal})")', self.message)
        return cel(f'!self.matches("{literal}")', self.message)


HTTP_URL_RULES = (
    UrlRule("prefix", r"https?://", "must start with http:// or https://"),
    UrlRule(
        "forbid",
        r"^[^/?#]*//[^/?#]*@",
        "must not carry credentials (user:password@): they belong in a Secret",
    ),
    UrlRule("forbid", r"[?#]", "must not have a query (?) or fragment (#)"),
    UrlRule(
        "match",
        rf"https?://{_HOST}{_PORT}(?:/{_PCHARS}*)?",
        "must be http(s)://host[:port][/path]: a host name or IP address, a port up to 65535 "
        "and URL path characters",
    ),
)
_NODES = rf"{_HOST}{_PORT}(?:,{_HOST}{_PORT})*"  # host[:port],host[:port]...
REDIS_URL_FORMS = (
    "redis://host[:port][/db] or rediss://host[:port][/db] (TLS), unix:///path/to/socket, "
    "redis+cluster://host:port[,host:port...] (Redis Cluster; rediss+cluster:// for TLS) or "
    "redis+sentinel://host:port[,host:port...]/service[/db] (Sentinel; rediss+sentinel:// "
    "for TLS), then any ?options; a password goes before the host as user:password@ "
    "(better: urlSecretRef)"
)
REDIS_URL_RULES = (
    UrlRule(
        "prefix",
        r"(?:redis|rediss|unix|rediss?[+]cluster|rediss?[+]sentinel)://",
        "must start with redis://, rediss:// or unix:// (one Redis), redis+cluster:// or "
        "rediss+cluster:// (Redis Cluster), redis+sentinel:// or rediss+sentinel:// (Sentinel)",
    ),
    UrlRule(
        "match",
        rf"(?:rediss?://{_USERINFO}{_HOST}{_PORT}(?:/[0-9]*)?|unix://{_USERINFO}/{_PCHARS}+"
        rf"|rediss?[+]cluster://{_USERINFO}{_NODES}/?"
        rf"|rediss?[+]sentinel://{_USERINFO}{_NODES}/[A-Za-z0-9._-]+(?:/[0-9]+)?){_QUERY}",
        "must be " + REDIS_URL_FORMS,
    ),
)
URL_MAX_LENGTH = 2048


def url_problem(value: str, rules: tuple[UrlRule, ...]) -> str | None:
    """The first rule ``value`` breaks, as the message that says what to fix."""
    return next((rule.message for rule in rules if not rule.ok(value)), None)


def _url_checker(rules: tuple[UrlRule, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        problem = url_problem(value, rules)
        if problem is not None:
            raise PydanticCustomError("url", problem)
        return value

    return check


def _url_schema(rules: tuple[UrlRule, ...]) -> JsonDict:
    validations: list[JsonValue] = [r.cel() for r in rules]
    return {"x-kubernetes-validations": validations}


_URL_LENGTH = Field(min_length=1, max_length=URL_MAX_LENGTH)
HttpUrl = Annotated[
    str,
    _URL_LENGTH,
    Field(json_schema_extra=_url_schema(HTTP_URL_RULES)),
    AfterValidator(_url_checker(HTTP_URL_RULES)),
]
"""An upstream, embedder or vector store: http(s), a host, no credentials, query or fragment."""
RedisUrl = Annotated[
    str,
    _URL_LENGTH,
    Field(json_schema_extra=_url_schema(REDIS_URL_RULES)),
    AfterValidator(_url_checker(REDIS_URL_RULES)),
]
"""A standalone Redis, a Redis Cluster or a Sentinel set (``llmcache/redis_client.py``)."""


# ---- the models ----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _as_the_api_server_reads_it(cls, data: Any) -> Any:
        """Before the strict checks, what the API server does to a structural object: a
        ``null`` for a field or map value that is not ``nullable`` is dropped (so a field
        gets its default), and a whole float counts as an integer (``1.0`` for ``integer``)
        unless the field says ``strict=True`` itself (a CEL rule reads it: the API server's
        CEL then refuses the float)."""
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            field = _field_by_alias(cls, key)
            if field is not None:
                if value is None and type(None) not in get_args(field.annotation):
                    continue
                if (
                    isinstance(value, float)
                    and value.is_integer()
                    and _is_int(field.annotation)
                    and not any(isinstance(m, Strict) for m in field.metadata)
                ):
                    value = int(value)
                if isinstance(value, dict) and _is_map(field.annotation):
                    value = {k: v for k, v in value.items() if v is not None}
            out[key] = value
        return out


def _field_by_alias(cls: type[BaseModel], key: Any) -> Any:
    for name, field in cls.model_fields.items():
        if key == (field.alias or name):
            return field
    return None


def _is_int(annotation: Any) -> bool:
    return annotation is int or int in get_args(annotation)


def _is_map(annotation: Any) -> bool:
    return get_origin(annotation) is dict


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
    # strict: the spec's CEL rule reads it, and the API server's CEL refuses 1.0 for an int.
    l1_max_bytes: int = Field(default=64 * MIB, ge=0, le=16 * 1024 * MIB, strict=True)


class Embedder(_Model):
    """Where semantic keys are embedded: the shared ``llmcache embedder`` or any
    OpenAI-compatible ``/v1/embeddings`` endpoint."""

    url: HttpUrl | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible embeddings API (http or https, no "
        "credentials: see apiKeySecretRef); unset means the in-process local model (needs "
        "the `embed` extra).",
    )
    model: str = "all-MiniLM-L6-v2"
    api_key_secret_ref: SecretKeyRef | None = None
    timeout_ms: int = Field(default=250, ge=1, le=60_000)


# The in-memory bounds of the semantic and RAG indexes (docs/semantic.md#bounded-memory).
MAX_ENTRIES_DOC = (
    "Most {layer} records one sidecar holds in memory; the least recently used goes first "
    "(it stays in Redis)."
)
MAX_BYTES_DOC = (
    "Most bytes of records one sidecar holds in memory (vector, text, bookkeeping; ~2 KB "
    "per 384-d record): the default, 64 MiB (~30 000 such records), fits the default 512Mi "
    "limit beside the local model and the L1."
)


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
    # Unset is absent, never null, in the CRD (the API server drops a null for it, and the
    # CEL rule reads it only when present), so the schema is a plain number.
    threshold: Annotated[
        float | None,
        WithJsonSchema({"type": "number", "exclusiveMinimum": 0.0, "maximum": 1.0}),
    ] = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Cosine similarity a candidate needs; unset means the embedder model's "
        "measured default (0.85 for all-MiniLM-L6-v2, 0.90 for bge-small-en-v1.5, 0.95 for "
        "models not measured).",
    )
    ttl_seconds: int = Field(default=86_400, ge=1, le=31 * 86_400)
    max_entries: int = Field(
        default=100_000, ge=1, le=10_000_000, description=MAX_ENTRIES_DOC.format(layer="semantic")
    )
    max_bytes: int = Field(default=64 * MIB, ge=MIB, le=64 * 1024 * MIB, description=MAX_BYTES_DOC)
    shadow: bool = Field(
        default=False,
        description="Score candidates but always go upstream; export would-be hit rates.",
    )
    verify: bool = Field(
        default=True,
        description="Check numbers, negations, entities, code, term order and swapped "
        "content words before a hit.",
    )
    embedder: Embedder = Embedder()

    @model_serializer(mode="wrap")
    def _unset_threshold_is_absent(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict) and out.get("threshold", 0) is None:
            del out["threshold"]
        return out


RagKind = Literal["qdrant", "chroma"]


class RagUpstream(_Model):
    """A vector store fronted under ``/rag/<name>/``."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    kind: RagKind
    url: HttpUrl


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
    max_entries: int = Field(
        default=100_000, ge=1, le=10_000_000, description=MAX_ENTRIES_DOC.format(layer="RAG")
    )
    max_bytes: int = Field(default=64 * MIB, ge=MIB, le=64 * 1024 * MIB, description=MAX_BYTES_DOC)
    upstreams: list[RagUpstream] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _upstreams_when_enabled(self) -> RagLayer:
        if self.enabled and not self.upstreams:
            raise ValueError("rag.upstreams must list at least one vector store when rag.enabled")
        return self


BatchMode = Literal["off", "coalesce", "batch"]


class Batching(_Model):
    """Upstream call shaping: ``coalesce`` merges identical in-flight requests, in the pod and,
    with a shared Redis, across pods; ``batch`` also holds embeddings calls for ``windowMs``
    to send up to ``maxSize`` together."""

    mode: BatchMode = "coalesce"
    window_ms: int = Field(default=5, ge=0, le=10_000)
    max_size: int = Field(default=16, ge=1, le=2_048)
    peer_wait_ms: int = Field(
        default=30_000,
        ge=0,
        le=600_000,
        description="With a shared Redis, how long a sidecar that misses on a key another "
        "pod is already calling upstream for waits for that answer before making its own "
        "call (0: coalesce within each pod only).",
    )


#: Names of the live-data and side-effecting server tools (``live_tool_<name>`` bypasses).
LiveTool = Literal[
    "web_search", "web_fetch", "code_execution", "code_interpreter", "file_search", "mcp", "shell"
]
LIVE_TOOLS: tuple[str, ...] = get_args(LiveTool)


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
    cache_live_tools: list[LiveTool] = Field(
        default_factory=list,
        max_length=len(LIVE_TOOLS),
        description="Server tools whose answers depend on the time or act on the world "
        "(web search and fetch, code execution, MCP, file search, hosted shell): requests "
        "offering one bypass the cache unless it is listed here (docs/cache-key.md).",
    )


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

    url: RedisUrl | None = Field(
        default=None,
        description="redis://, rediss:// (TLS) or unix:// for one Redis; "
        "redis+cluster://host:port[,host:port...] for a Redis Cluster; "
        "redis+sentinel://host:port[,host:port...]/service[/db] for a Sentinel-managed "
        "primary (rediss+cluster://, rediss+sentinel:// for TLS); prefer urlSecretRef when "
        "it carries a password.",
    )
    url_secret_ref: SecretKeyRef | None = None
    key_prefix: str = Field(default="llmcache", min_length=1, max_length=64)
    timeout_ms: int = Field(default=50, ge=1, le=10_000)


class Upstreams(_Model):
    """Base URLs of the providers (http or https; API keys come with each request)."""

    anthropic: HttpUrl = "https://api.anthropic.com"
    openai: HttpUrl = "https://api.openai.com"


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


BudgetPeriod = Literal["day", "month"]
OnExhausted = Literal["alert", "cacheOnly"]


class Budget(_Model):
    """Upstream spend per calendar period (UTC), priced like the savings (``prices``).
    Sidecars report at the stats interval, so enforcement may overshoot by up to one
    interval's spend (docs/operator.md#budgets)."""

    amount_usd: float = Field(gt=0.0, le=1e9, description="USD per period.")
    period: BudgetPeriod = Field(default="month", description="Calendar day or month, UTC.")
    thresholds: list[Annotated[float, Field(gt=0.0, le=10.0)]] = Field(
        default_factory=lambda: [0.8, 1.0],
        max_length=8,
        description="Fractions of amountUsd that raise an Event and the condition.",
    )
    on_exhausted: OnExhausted = Field(
        default="alert",
        description="alert: keep serving; cacheOnly: serve hits, answer misses with a 429.",
    )


class Tracing(_Model):
    """OpenTelemetry traces of the sidecar's requests, exported by OTLP/HTTP (docs/tracing.md).
    Fields left unset fall back to the standard ``OTEL_*`` environment variables."""

    enabled: bool = Field(
        default=False, description="Export a span per request (OTEL_SDK_DISABLED=true wins)."
    )
    endpoint: HttpUrl | None = Field(
        default=None,
        description="OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces; unset: "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, "
        "else http://localhost:4318/v1/traces.",
    )
    sampling_ratio: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Share of new traces sampled (a request carrying a traceparent follows "
        "its caller's decision); unset: OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG, else all.",
    )


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
    tracing: Tracing = Tracing()
    budget: Budget | None = Field(
        default=None, description="Optional spend limit per period (docs/operator.md#budgets)."
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


def describe_error(exc: ValidationError, limit: int = 5) -> str:
    """What to fix, one ``spec.<field>: <problem>`` per error, for logs, status conditions
    and events: with the offending value when it is a scalar, and credentials masked."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        text = f"spec.{where}: {err['msg']}" if where else str(err["msg"])
        value = err.get("input")
        if where and (value is None or isinstance(value, str | int | float | bool)):
            shown = repr(value)
            text += f" (got {shown[:80] + '...' if len(shown) > 80 else shown})"
        parts.append(text)
    if len(exc.errors()) > limit:
        parts.append(f"and {len(exc.errors()) - limit} more")
    return redact("; ".join(parts))


def parse_spec(data: Any) -> CachePolicySpec:
    """A spec from outside (file, JSON, the API server): the CRD's camelCase names only, as
    the API server knows no others (Python code may construct the models by field name)."""
    return CachePolicySpec.model_validate(data, by_alias=True, by_name=False)


def load_spec(path: str | Path) -> CachePolicySpec:
    """Read a policy file: a bare ``spec``, or a whole CachePolicy manifest (YAML or JSON)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML: {exc}") from exc
    if isinstance(data, dict) and data.get("kind") == KIND:
        data = data.get("spec") or {}
    return parse_spec(data)
