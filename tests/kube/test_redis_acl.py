"""Admin-credential mode against the real kube-apiserver and a real ``redis-server``: the
operator (as the chart's ServiceAccount, the chart's RBAC) gives each CachePolicy its own
Redis ACL user, hands the password to sidecars that prove their namespace with a projected
ServiceAccount token (TokenReview), rotates it under load without a failed request, and
deletes the user with the policy."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from llmcache.operator import redis_acl

from llmcache import keyspace
from tests.kube.kubeutil import ControlPlane, KubeClient, wait_for
from tests.kube.operator_env import (
    ANNOTATIONS,
    GROUP_VERSION,
    KIND,
    OperatorEnv,
    delete_and_wait,
    injected_container,
    pod,
    policy,
    ready_at,
    run_sidecar_from,
    running_operator,
    wait_webhook_live,
)
from tests.support import Proc, RedisServer
from tests.test_redis_acl import faults
from tests.test_sidecar import ask, claude

pytestmark = pytest.mark.controlplane

ADMIN_PASSWORD = "shared-admin-0123"
NS_A, NS_B = "acl-team-a", "acl-team-b"
AUDIENCE = "llmcache.dev"
CLIENTS = 32


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("shared-redis"), password=ADMIN_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def op(
    controlplane: ControlPlane, tmp_path_factory: pytest.TempPathFactory, shared: RedisServer
) -> Iterator[OperatorEnv]:
    extra = [f"--redis-admin-url={shared.url}", "--redis-password-overlap=3"]
    with running_operator(controlplane, tmp_path_factory.mktemp("operator"), extra) as env:
        for ns in (NS_A, NS_B):
            env.kube.ensure_namespace(ns)
            service_account(env.kube, ns, "default")
        yield env


def service_account(kube: KubeClient, namespace: str, name: str) -> None:
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace}})  # fmt: skip


def token(kube: KubeClient, namespace: str, audiences: list[str] | None = None) -> str:
    """What the kubelet puts into the pod's projected volume (TokenRequest API)."""
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if audiences is not None:
        spec["audiences"] = audiences
    review = kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/default/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    return str(review["status"]["token"])


def delivered(env: OperatorEnv, namespace: str, name: str, bearer: str | None) -> tuple[int, Any]:
    req = urllib.request.Request(f"{env.delivery_url}/v1/policies/{namespace}/{name}")
    if bearer:
        req.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def user_of(server: RedisServer, user: str) -> dict[str, Any] | None:
    with server.client() as admin:
        found: dict[str, Any] | None = admin.acl_getuser(user)
    return found


def password_hashes(server: RedisServer, user: str) -> list[str]:
    return sorted((user_of(server, user) or {}).get("passwords") or [])


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def redis_user_status(env: OperatorEnv, namespace: str, name: str) -> dict[str, Any]:
    return dict(((env.policy(namespace, name) or {}).get("status") or {}).get("redisUser") or {})


def test_each_policy_gets_a_user_delivered_only_to_its_namespace(
    op: OperatorEnv, shared: RedisServer
) -> None:
    for ns in (NS_A, NS_B):
        op.kube.apply(policy(ns, "chat"))
    for ns in (NS_A, NS_B):
        wait_for(lambda ns=ns: redis_user_status(op, ns, "chat").get("epoch") == 1,  # type: ignore[misc]
                 timeout=30, what=f"{ns} user created")  # fmt: skip
    user_a = redis_acl.username(NS_A, "chat")
    found = user_of(shared, user_a)
    assert found is not None
    prefix_a = keyspace.policy_prefix("llmcache", NS_A, "chat")
    assert (found["keys"], found["channels"]) == ([f"~{prefix_a}:*"], [f"&{prefix_a}:*"])

    # No token: the policy, never a credential (as before; sidecars outside this mode).
    wait_for(lambda: delivered(op, NS_A, "chat", None)[0] == 200, timeout=30, what="delivered")
    status, doc = delivered(op, NS_A, "chat", None)
    assert status == 200 and "redisUrl" not in doc
    # team-a's own token: the policy and team-a's user, which Redis accepts.
    status, doc = delivered(op, NS_A, "chat", token(op.kube, NS_A, [AUDIENCE]))
    assert status == 200 and doc["redisUrl"].startswith(f"redis://{user_a}:")
    with redis.Redis.from_url(doc["redisUrl"]) as a:
        assert a.ping()
    # team-b's token for team-a's policy, or a token not meant for llmcache: refused.
    status, text = delivered(op, NS_A, "chat", token(op.kube, NS_B, [AUDIENCE]))
    assert status == 403 and f"namespace {NS_B}" in text
    status, _ = delivered(op, NS_A, "chat", token(op.kube, NS_A))  # the API server's audience
    assert status == 403
    status, _ = delivered(op, NS_A, "chat", "not-a-token")
    assert status == 403
    # RBAC: what the chart grants is enough (TokenReview) and nothing in the app namespace.
    assert not op.as_operator.request(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
         "spec": {"resourceAttributes": {"namespace": NS_A, "resource": "secrets",
                                         "verb": "create"}}},
    )["status"]["allowed"]  # fmt: skip


def test_injected_sidecar_gets_its_user_and_rotation_under_load_fails_nothing(
    op: OperatorEnv, shared: RedisServer, upstream: Proc, tmp_path: Path
) -> None:
    name = "rotating"
    user = redis_acl.username(NS_A, name)
    op.kube.apply(policy(NS_A, name))
    wait_for(lambda: ready_at(op, NS_A, name, 1), timeout=30, what="policy Ready")
    wait_for(lambda: redis_user_status(op, NS_A, name).get("epoch") == 1, timeout=30,
             what="user created")  # fmt: skip
    wait_webhook_live(op, NS_A, name)
    created = op.kube.create(pod(NS_A, "app-acl", {**ANNOTATIONS, "llmcache.dev/policy": name}))
    container = injected_container(created)
    assert container is not None
    assert ADMIN_PASSWORD not in json.dumps(created) and "redis://" not in json.dumps(created)
    volume = next(v for v in created["spec"]["volumes"] if v["name"] == "llmcache-token")
    assert volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == AUDIENCE
    token_file = tmp_path / "token"  # the kubelet's projection, done here by TokenRequest
    token_file.write_text(token(op.kube, NS_A, [AUDIENCE]))
    sidecar = run_sidecar_from(
        op, container, NS_A, "app-acl",
        LLMCACHE_POLICY_TOKEN_FILE=str(token_file),
        LLMCACHE_ANTHROPIC_UPSTREAM=upstream.url,
    )  # fmt: skip
    try:
        rotate_under_load(op, shared, sidecar, name, user)
    finally:
        sidecar.stop()
    delete_and_wait(op, NS_A, name)
    assert user_of(shared, user) is None  # the finalizer deleted the user


def connected_as(server: RedisServer, user: str) -> int:
    with server.client() as admin:
        return sum(1 for c in admin.client_list() if c.get("user") == user)


def rotate_under_load(
    op: OperatorEnv, shared: RedisServer, sidecar: Proc, name: str, user: str
) -> None:
    uid = (op.policy(NS_A, name) or {})["metadata"]["uid"]
    old = redis_acl.password(shared.url, NS_A, name, uid, 1)
    new = redis_acl.password(shared.url, NS_A, name, uid, 2)
    wait_for(lambda: connected_as(shared, user), timeout=30, what="sidecar on its own user")
    stop = threading.Event()
    errors: list[Exception] = []
    served = [0] * CLIENTS

    def client(i: int) -> None:
        api = claude(sidecar)
        n = 0
        while not stop.is_set():
            try:
                ask(api, f"rotation question {i}-{n % 7}")
                served[i] += 1
            except Exception as exc:  # every failure counts
                errors.append(exc)
            n += 1

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, i) for i in range(CLIENTS)]
        try:
            wait_for(lambda: sum(served) >= CLIENTS, timeout=60, what="load running")
            op.kube.merge_patch(GROUP_VERSION, KIND, name, {"metadata": {"annotations": {
                "llmcache.dev/rotate-redis-password": "2026-11-30"}}}, NS_A)  # fmt: skip
            wait_for(lambda: password_hashes(shared, user) == sorted([sha(old), sha(new)]),
                     timeout=30, what="both passwords valid")  # fmt: skip
            wait_for(lambda: password_hashes(shared, user) == [sha(new)], timeout=30,
                     what="overlap ended, old password removed")  # fmt: skip
            # Connections made before stay logged in; drop them: the sidecar must now log
            # in with the new password it was delivered.
            with shared.client() as admin:
                admin.execute_command("CLIENT", "KILL", "USER", user)
            at_kill = sum(served)
            wait_for(lambda: connected_as(shared, user), timeout=30, what="reconnected")
            wait_for(lambda: sum(served) >= at_kill + 4 * CLIENTS, timeout=60,
                     what="load after the rotation")  # fmt: skip
        finally:
            stop.set()
            for future in futures:
                future.result(timeout=60)
    print(f"rotation under load: {sum(served)} requests by {CLIENTS} clients, {len(errors)} failed")
    assert errors == []
    assert redis_user_status(op, NS_A, name)["epoch"] == 2
    for op_name in ("get", "set", "subscribe"):
        assert faults(sidecar, op_name, "denied") == 0, op_name
    prefix = keyspace.policy_prefix("llmcache", NS_A, name)
    with redis.Redis.from_url(redis_acl.sidecar_url(shared.url, user, new)) as fresh:
        assert fresh.ping()  # the new password works, the old one no longer does
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(redis_acl.sidecar_url(shared.url, user, old)).ping()
    with shared.client() as admin:
        assert list(admin.scan_iter(match=f"{prefix}:e:*"))  # the L2 was written through it


def test_the_user_follows_the_key_prefix_and_goes_when_the_policy_names_its_own_redis(
    op: OperatorEnv, shared: RedisServer
) -> None:
    name = "moving"
    user = redis_acl.username(NS_B, name)
    op.kube.apply(policy(NS_B, name))
    wait_for(lambda: redis_user_status(op, NS_B, name).get("epoch") == 1, timeout=30,
             what="user created")  # fmt: skip
    op.kube.apply(policy(NS_B, name, {"redis": {"keyPrefix": "tenant-cache"}}))
    moved = f"~{keyspace.policy_prefix('tenant-cache', NS_B, name)}:*"
    wait_for(lambda: (user_of(shared, user) or {}).get("keys") == [moved], timeout=30,
             what="key pattern follows keyPrefix")  # fmt: skip
    op.kube.apply(policy(NS_B, name, {"redis": {"url": "redis://elsewhere.example:6379/0"}}))
    wait_for(lambda: user_of(shared, user) is None, timeout=30, what="user deleted")
    wait_for(lambda: not redis_user_status(op, NS_B, name), timeout=30, what="status cleared")
    delete_and_wait(op, NS_B, name)
