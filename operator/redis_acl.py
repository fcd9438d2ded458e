"""One Redis ACL user per CachePolicy in a shared Redis (standalone or Redis Cluster; on
a cluster every node is told, as Redis does not replicate ACLs; behind Sentinel only the
primary of the moment is, so a failover loses the users until their next update).

With an admin credential for the shared Redis (``--redis-admin-url``), the operator gives
every CachePolicy that names no Redis of its own a user of its own: keys ``~P:*`` and
channels ``&P:*`` only (``P`` = the policy's prefix, ``llmcache/keyspace.py``) and only the
commands a sidecar sends. A sidecar of one policy then cannot read, write, list or listen
to another policy's entries, whatever it is configured to do.

Passwords are derived, not stored: HMAC-SHA256 keyed with the admin credential over the
policy's namespace, name, uid and a rotation epoch kept in ``status.redisUser``. So every
operator replica delivers the same password without any Secret to write, a re-created
policy gets new passwords, and a rotation is a new epoch, with the previous epoch's
password still accepted until the overlap ends (Redis users may hold several passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from redis.asyncio.cluster import RedisCluster

# Every command the sidecar sends, and no other (grep sidecar/ and llmcache/keyspace.py):
#   PING, SELECT        redis-py's handshake (a /db in the URL) and health (l2.ping)
#   MGET, SET, SADD, EXPIRE   L2 lookups, writes, index sets, sliding TTL (sidecar/l2.py)
#   GET, INCR           semantic and RAG stores (sidecar/semantic/store.py, sidecar/rag/)
#   ZADD, ZREVRANGEBYSCORE, ZREMRANGEBYSCORE, ZREM   their id sets (a sidecar loads newest
#       first at start)
#   UNLINK, SMEMBERS, PUBLISH   flush by tag or model (llmcache/keyspace.py)
#   SUBSCRIBE, UNSUBSCRIBE   flush announcements and semantic additions
#   CLUSTER SLOTS, COMMAND, ASKING   redis-py's cluster client: the slot map and the key
#       positions of commands (read at start and after a failover or a moved slot), and the
#       flag before a command that follows an ASK redirection while a slot is migrating
#   (CLIENT SETINFO, which redis-py sends on connect, may be refused: it ignores that.)
# Not SCAN: Redis does not filter SCAN (or KEYS) by key patterns, so it would list every
# policy's key names. A full flush (empty selector) therefore runs in the operator, under
# the admin credential with ``SCAN MATCH P:*``, never FLUSHDB (docs/deploy.md).
SIDECAR_COMMANDS = (
    "ping", "select", "mget", "get", "set", "sadd", "expire", "incr",
    "unlink", "smembers", "publish", "subscribe", "unsubscribe",
    "zadd", "zrangebyscore", "zrevrangebyscore", "zremrangebyscore", "zrem",
    "cluster|slots", "command", "asking",
)  # fmt: skip

USER_PREFIX = "llmcache"
_GLOB = re.compile(r"([*?\[\]\\])")


def username(namespace: str, name: str) -> str:
    """``llmcache.<namespace>.<name>``: unambiguous, as namespaces hold no dots."""
    return f"{USER_PREFIX}.{namespace}.{name}"


def password(key: str, namespace: str, name: str, uid: str, epoch: int) -> str:
    message = f"{namespace}/{name}/{uid}/{epoch}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def glob_escape(text: str) -> str:
    return _GLOB.sub(r"\\\1", text)


def rules(prefix: str, passwords: list[str]) -> list[str]:
    """``ACL SETUSER`` arguments: everything reset, then exactly this policy's rights."""
    pattern = f"{glob_escape(prefix)}:*"
    hashes = [f"#{hashlib.sha256(p.encode()).hexdigest()}" for p in passwords]
    return ["reset", "on", *hashes, f"~{pattern}", f"&{pattern}", "-@all",
            *(f"+{c}" for c in SIDECAR_COMMANDS)]  # fmt: skip


async def ensure_user(admin: Any, user: str, prefix: str, passwords: list[str]) -> None:
    """Create or update ``user`` (idempotent). ``admin`` is a ``redis_client.Client``."""
    await admin.execute_command("ACL", "SETUSER", user, *rules(prefix, passwords), **_every(admin))


async def delete_user(admin: Any, user: str) -> None:
    """Remove ``user``; Redis also disconnects its clients."""
    await admin.execute_command("ACL", "DELUSER", user, **_every(admin))


def _every(admin: Any) -> dict[str, Any]:
    """On a cluster, every node, replicas too (a replica is promoted at failover)."""
    return {"target_nodes": RedisCluster.ALL_NODES} if isinstance(admin, RedisCluster) else {}


def sidecar_url(admin_url: str, user: str, secret: str) -> str:
    """The admin URL (same host, port, database and options) with the policy's user."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(secret, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
