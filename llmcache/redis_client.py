"""One place that turns a configured Redis URL into a redis-py asyncio client, for a
standalone Redis, a Redis Cluster or a Sentinel-managed primary.

The forms (``docs/deploy.md``, "Redis topologies"):

- ``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix:///path``:
  one Redis (``redis.asyncio.Redis``);
- ``redis+cluster://[user:password@]host:port[,host:port...]``, ``rediss+cluster://``:
  a Redis Cluster; the listed nodes are only where discovery starts
  (``redis.asyncio.cluster.RedisCluster``);
- ``redis+sentinel://[user:password@]host:port[,host:port...]/<service>[/db]``,
  ``rediss+sentinel://``: the primary the Sentinels name for ``<service>``, found again
  after every failover (``redis.asyncio.sentinel.Sentinel.master_for``). The credentials
  are the data nodes'; ``?sentinel_password=`` (and ``sentinel_username``) authenticate to
  the Sentinels when they ask for it.

Any other ``?option`` is redis-py's (``redis.asyncio.connection.parse_url``). The forms are
checked by ``llmcache.policy.REDIS_URL_RULES``, which also rejects a malformed URL at
admission; a URL from a flag or a Secret gets the same message here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedSSLConnection
from redis.backoff import NoBackoff
from redis.crc import key_slot as _key_slot

from .policy import REDIS_URL_RULES, url_problem

Client = aioredis.Redis | RedisCluster
"""What every Redis user of llmcache holds: both speak the same commands, and a cluster
splits multi-key ones per slot (``mget``, ``unlink``) or needs them made single-key."""

Topology = Literal["standalone", "cluster", "sentinel"]
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
_QUERY_PASSWORD = re.compile(r"([?&](?:sentinel_)?password=)[^&]*")


@dataclass(frozen=True)
class Target:
    """A parsed URL: where to connect and redis-py's connection options."""

    topology: Topology
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seeds or Sentinels
    service: str = ""  # Sentinel's name for the primary
    options: dict[str, Any] = field(default_factory=dict)
    sentinel_options: dict[str, Any] = field(default_factory=dict)


def parse(url: str) -> Target:
    """``ValueError`` with the accepted forms when ``url`` is not one of them. A standalone
    URL is redis-py's to judge, as before clusters were supported (a Secret's URL that
    redis-py takes keeps working)."""
    scheme, _, rest = url.partition("://")
    if scheme in ("redis", "rediss", "unix"):
        return Target("standalone", options=dict(parse_url(url)))
    problem = url_problem(url, REDIS_URL_RULES)
    if problem is not None:
        raise ValueError(f"Redis URL {redact(url)!r} {problem}")
    base, _, topology = scheme.partition("+")
    parts = urlsplit(f"{base}://{rest}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = tuple(_host_port(h) for h in hosts.split(","))
    query = parse_qsl(parts.query)
    sentinel = {k: v for k, v in query if k in SENTINEL_OPTIONS}
    plain = urlencode([(k, v) for k, v in query if k not in SENTINEL_OPTIONS])
    path = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    service, db = [*path, "", ""][:2] if topology == "sentinel" else ("", "")
    # redis-py reads the credentials and options from a one-host URL of the same scheme.
    auth = f"{userinfo}@" if userinfo else ""
    options = dict(parse_url(f"{base}://{auth}localhost/{db}" + (f"?{plain}" if plain else "")))
    for key in ("host", "port"):
        options.pop(key, None)
    tls = options.pop("connection_class", None) is SSLConnection
    if topology == "cluster":
        options.pop("db", None)  # a cluster has database 0 only
        if tls:
            options["ssl"] = True
        return Target("cluster", nodes, options=options)
    if tls:
        options["connection_class"] = SentinelManagedSSLConnection
    sentinel_options: dict[str, Any] = {k.removeprefix("sentinel_"): v for k, v in sentinel.items()}
    if tls:
        sentinel_options["ssl"] = True
    return Target("sentinel", nodes, service, options, sentinel_options)


def connect(url: str, fail_fast: bool = False, **options: Any) -> Client:
    """A client for ``url``; ``options`` (timeouts, pool size) apply to every connection.
    Nothing connects until the first command.

    ``max_connections`` bounds a standalone client's pool, whose callers then wait for a
    free connection; a Cluster or Sentinel client is not bounded (their pools fail at the
    bound rather than wait).

    ``fail_fast``: no retries on a standalone or Sentinel client, for callers whose own
    breaker is the retry policy (a failed lookup is a miss, not a wait). A cluster client
    keeps its retries: they are how it follows a failover to the new primary.
    """
    target = parse(url)
    if fail_fast and target.topology != "cluster":
        options.setdefault("retry", Retry(NoBackoff(), 0))
    if target.topology != "standalone":
        # A cluster node's pool and the Sentinel pool fail at their bound instead of
        # waiting: a burst of background writes would fail. The callers' own concurrency
        # is the bound.
        options.pop("max_connections", None)
    elif "max_connections" in options:
        # Wait for a free connection (under the caller's deadline) rather than fail.
        pool = BlockingConnectionPool.from_url(url, timeout=None, **options)
        return aioredis.Redis.from_pool(pool)
    merged = {**target.options, **options}
    if target.topology == "standalone":
        return aioredis.Redis.from_url(url, **options)
    if target.topology == "cluster":
        seeds = [ClusterNode(host, port) for host, port in target.nodes]
        return RedisCluster(startup_nodes=seeds, **merged)
    socket = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes), sentinel_kwargs={**socket, **target.sentinel_options}, **merged
    )
    primary: aioredis.Redis = sentinels.master_for(
        target.service, redis_class=aioredis.Redis, **merged
    )
    return primary


async def ready(client: Client) -> None:
    """Connect now. A cluster client reads the slot map and the command table (tens of ms
    on a busy machine, better not under a lookup's deadline); a pub/sub connection goes to
    the node of its channel's slot and, unlike a command, does not read the map itself."""
    if isinstance(client, RedisCluster):
        await client.initialize()
    else:
        await client.ping()


def key_slot(key: str | bytes) -> int:
    """The cluster slot of ``key`` (its hash tag's, if it has one)."""
    return int(_key_slot(key.encode() if isinstance(key, str) else key))


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


async def mget(client: Client, keys: list[str]) -> list[Any]:
    """MGET, split per slot on a cluster (one pipeline per node), in the order of ``keys``."""
    if isinstance(client, RedisCluster):
        return list(await client.mget_nonatomic(keys))
    return list(await client.mget(keys))


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    head, _, tail = rest.partition("/")
    userinfo, at, hosts = head.rpartition("@")
    if not at:
        return _QUERY_PASSWORD.sub(r"\1***", url)
    user = userinfo.partition(":")[0]
    url = f"{scheme}{sep}{user}:***@{hosts}" + (f"/{tail}" if tail or rest.endswith("/") else "")
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not host:
        host, port = text, ""
    return host.strip("[]"), int(port) if port else 6379
