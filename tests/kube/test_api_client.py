"""The operator's own API client (``llmcache.operator.cluster``, on ``kubernetes_asyncio``)
through what a long-running operator meets in a cluster: its ServiceAccount token rotated
and the old one revoked (401), and a watch resumed from a resourceVersion etcd has compacted
away (410 Gone). Real kube-apiserver and etcd, real bound tokens (TokenRequest API)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llmcache.operator.cluster import Cluster, InCluster
from llmcache.operator.ledger import parse_counters
from llmcache.operator.publish import publish
from llmcache.operator.store import PolicyStore, StatsStore
from llmcache.operator.watcher import PolicyWatcher

from tests.kube.kubeutil import ControlPlane, binaries_dir, wait_for
from tests.kube.operator_env import (
    GROUP_VERSION,
    KIND,
    chart,
    delete_and_wait,
    install_crds,
    operator_rbac,
    policy,
    ready_at,
    running_operator,
    service_account_token,
)
from tests.test_chart import NAMESPACE as RELEASE_NAMESPACE

pytestmark = pytest.mark.controlplane

NS = "client-tests"
Obj = dict[str, Any]


async def until(predicate: Callable[[], Any], within: float = 30.0) -> Any:
    """Poll without blocking the loop the in-process watcher runs on."""
    async with asyncio.timeout(within):
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.05)


def answer_to(controlplane: ControlPlane, token: str) -> int:
    """The HTTP status the API server gives a request bearing ``token`` (discovery, which
    every authenticated identity may read)."""
    context = ssl.create_default_context(cafile=str(controlplane.ca_path))
    request = urllib.request.Request(
        f"{controlplane.server}/apis", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def write_atomically(path: Path, text: str) -> None:
    """As the kubelet updates a projected volume: the new file appears whole."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def rotate(
    controlplane: ControlPlane, objs: list[Obj], token_file: Path, old: str, new: str
) -> None:
    """A new token (bound to Secret ``new``) into ``token_file``, then the old one revoked by
    deleting its Secret ``old``; returns once the API server refuses the old token (it caches
    a token's success for up to 10 s)."""
    old_token = token_file.read_text()
    write_atomically(token_file, service_account_token(controlplane, objs, bound_secret=new))
    controlplane.client().delete("v1", "Secret", old, RELEASE_NAMESPACE)
    wait_for(
        lambda: answer_to(controlplane, old_token) == 401, timeout=30, what="old token refused"
    )
    assert answer_to(controlplane, token_file.read_text()) == 200


@pytest.fixture(scope="module")
def objs(controlplane: ControlPlane) -> list[Obj]:
    """The chart's CRDs and RBAC applied as Helm would, and the test namespace."""
    kube = controlplane.client()
    install_crds(kube)
    rendered = chart()
    for obj in operator_rbac(rendered):
        kube.apply(obj, field_manager="helm")
    kube.ensure_namespace(NS)
    return rendered


@contextlib.asynccontextmanager
async def watching(
    cluster: Cluster, watch_seconds: int = 1
) -> AsyncIterator[tuple[PolicyWatcher, PolicyStore]]:
    store = PolicyStore()
    watcher = PolicyWatcher(cluster, store, NS, watch_seconds=watch_seconds)
    task = asyncio.create_task(watcher.run())
    try:
        await until(watcher.synced.is_set)
        yield watcher, store
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def generation(store: PolicyStore, name: str) -> int:
    record = store.get(NS, name)
    return record.generation if record is not None else 0


# --------------------------------------------------------------------------- 401


async def test_a_pods_rotated_token_is_loaded_again_after_a_401(
    controlplane: ControlPlane, objs: list[Obj], tmp_path: Path
) -> None:
    """In a pod: the in-cluster loader reads the projected token file. The kubelet writes a
    new token and the old one stops being accepted before the library's own re-read (once
    a minute): the watch and a status write each get a 401, load the file again and go on,
    without a new list and without losing an edit."""
    kube = controlplane.client()
    token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    ca_file.write_bytes(controlplane.ca_path.read_bytes())
    token_file.write_text(service_account_token(controlplane, objs, bound_secret="pod-token-1"))
    host, port = controlplane.server.removeprefix("https://").rsplit(":", 1)
    pod = InCluster(
        token_file=str(token_file),
        ca_file=str(ca_file),
        environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
    )
    kube.apply(policy(NS, "rotated"))
    watcher_cluster = await Cluster.connect(in_cluster=pod)
    status_cluster = await Cluster.connect(in_cluster=pod)
    try:
        async with watching(watcher_cluster) as (watcher, store):
            await until(lambda: store.get(NS, "rotated"))

            await asyncio.to_thread(
                rotate, controlplane, objs, token_file, "pod-token-1", "pod-token-2"
            )
            # The server ends the watch every second: the next one meets the 401.
            await until(lambda: watcher_cluster.reloads == 1, within=10)
            await asyncio.to_thread(
                kube.apply, policy(NS, "rotated", {"exact": {"ttlSeconds": 60}})
            )
            await until(lambda: generation(store, "rotated") == 2)
            assert watcher.lists == 1  # the watch went on from where it was

            stats = StatsStore()
            to = parse_counters({"requests": 3, "hits": 1})
            written = stats.record(NS, "rotated", "app-1", "i1", parse_counters({}), to)
            await publish(status_cluster, stats, "r0")  # logs and drops what it cannot write
            assert status_cluster.reloads == 1  # the 401, then the file read again
            assert written.result() is True
            status = (kube.get(GROUP_VERSION, KIND, "rotated", NS) or {}).get("status") or {}
            assert status["ledger"]["replicas"]["r0"]["requests"] == 3
    finally:
        await watcher_cluster.close()
        await status_cluster.close()
        await asyncio.to_thread(kube.delete, GROUP_VERSION, KIND, "rotated", NS)


def test_the_operator_keeps_working_after_its_token_is_rotated_and_revoked(
    controlplane: ControlPlane, objs: list[Obj], tmp_path: Path
) -> None:
    """The whole operator with a kubeconfig ``tokenFile`` (no periodic re-read there at all):
    after the token is replaced and the old one revoked, kopf's handlers still write status
    (kopf logs in again through the operator's client, whose credentials it reloads for
    both), the delivery watch still delivers, and sidecar statistics still reach status."""
    token_file = tmp_path / "operator-token"
    token_file.write_text(service_account_token(controlplane, objs, bound_secret="op-token-1"))
    with running_operator(
        controlplane, tmp_path, ["--stats-interval=1"], token_file=token_file
    ) as env:
        env.kube.apply(policy(NS, "kept"))
        wait_for(lambda: ready_at(env, NS, "kept", 1), timeout=30, what="Ready at generation 1")

        rotate(controlplane, objs, token_file, "op-token-1", "op-token-2")
        env.kube.apply(policy(NS, "kept", {"exact": {"ttlSeconds": 60}}))
        wait_for(lambda: ready_at(env, NS, "kept", 2), timeout=30, what="Ready at generation 2")
        wait_for(
            lambda: (env.delivered(NS, "kept") or {}).get("generation") == 2,
            what="generation 2 delivered",
        )

        def pushed_and_counted() -> Obj | None:
            # sent again until counted: the operator counts this instance's report once
            to = {"requests": 4, "hits": 2}
            body = {"pod": "app-1", "instance": "i1", "from": None, "to": to}
            request = urllib.request.Request(
                f"{env.delivery_url}/v1/stats/{NS}/kept", data=json.dumps(body).encode(),
                headers={"content-type": "application/json"}, method="POST",
            )  # fmt: skip
            with contextlib.suppress(urllib.error.HTTPError):  # 503: not written, resend
                urllib.request.urlopen(request, timeout=10).close()
            status = (env.policy(NS, "kept") or {}).get("status") or {}
            return status if status.get("requests") == 4 else None

        status = wait_for(pushed_and_counted, timeout=30, what="stats in status after rotation")
        assert status["hitRate"] == 0.5
        delete_and_wait(env, NS, "kept")


# --------------------------------------------------------------------------- 410


@pytest.fixture(scope="module")
def uncached_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane whose API server serves watches from etcd itself (no watch cache),
    as it does for resources it does not cache: a resourceVersion older than etcd's last
    compaction is then 410 Gone at once, instead of after the cache's window has moved."""
    plane = ControlPlane.start(
        binaries_dir(),
        tmp_path_factory.mktemp("uncached-controlplane"),
        apiserver_args=["--watch-cache=false"],
    )
    yield plane
    plane.stop()


async def test_a_watch_from_a_compacted_version_lists_again_and_catches_up(
    uncached_plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    """Between two watches, other writes move etcd on and etcd compacts its history past
    the watcher's resourceVersion: the next watch is 410 Gone, the watcher lists again
    (the current state, with what changed meanwhile) and watches on from there."""
    kube = uncached_plane.client()
    install_crds(kube)
    kube.ensure_namespace(NS)
    kube.apply(policy(NS, "before"))
    cluster = await Cluster.connect(kubeconfig=str(uncached_plane.admin_kubeconfig))
    caplog.set_level(logging.INFO, logger="llmcache.operator.watcher")
    try:
        async with watching(cluster, watch_seconds=1) as (watcher, store):
            assert store.get(NS, "before") is not None and watcher.lists == 1
            seen = watcher.resource_version
            for i in range(3):  # writes the watch does not see: etcd's revision moves on
                await asyncio.to_thread(kube.ensure_namespace, f"elsewhere-{i}")
            compacted = await asyncio.to_thread(uncached_plane.compact_etcd)
            assert compacted > int(seen) + 1
            await until(lambda: watcher.lists == 2)
            assert f"version {seen} is gone (410), listing again" in caplog.text
            assert int(watcher.resource_version) >= compacted

            await asyncio.to_thread(kube.apply, policy(NS, "after"))
            await asyncio.to_thread(kube.delete, GROUP_VERSION, KIND, "before", NS)
            await until(lambda: store.get(NS, "after") and store.get(NS, "before") is None)
            assert watcher.lists == 2  # back to watching
    finally:
        await cluster.close()
