"""``llmcache operator``: kopf (CachePolicy handlers, injection webhook) plus the policy
delivery server and the metrics endpoint, in one process and one event loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import Any

import kopf

from llmcache import serving
from llmcache.redact import install_log_redaction

from .acl_handlers import register as register_acl_handlers
from .cluster import Cluster
from .delivery import create_delivery_app
from .handlers import configure
from .handlers import register as register_handlers
from .injection import InjectionSettings
from .metrics import OperatorMetrics, create_metrics_app
from .publish import publish_forever
from .shared_redis import AUDIENCE, SharedRedis, TokenVerifier
from .store import PolicyStore, StatsStore
from .watcher import PolicyWatcher
from .webhook import InjectorServer, WebhookTarget
from .webhook import register as register_webhook

log = logging.getLogger("llmcache.operator")

DEFAULT_CONFIG_NAME = "llmcache-injector"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch CachePolicies in this namespace (repeatable)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch CachePolicies in every namespace (the default)",
    )
    parser.add_argument(
        "--policy-listen",
        default="0.0.0.0:8081",
        help="host:port of policy delivery and stats intake",
    )
    parser.add_argument(
        "--metrics-listen",
        default="0.0.0.0:8080",
        help="host:port of /metrics and /healthz ('' to disable)",
    )
    parser.add_argument(
        "--webhook-listen",
        default="0.0.0.0:9443",
        help="host:port of the HTTPS admission webhook ('' to disable)",
    )
    parser.add_argument("--webhook-certfile", help="PEM serving certificate of the webhook")
    parser.add_argument("--webhook-keyfile", help="PEM private key of the webhook")
    parser.add_argument(
        "--webhook-cafile", help="CA bundle put into the webhook configuration (default: the cert)"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--webhook-service",
        metavar="NAMESPACE/NAME[:PORT]",
        help="in cluster: the API server calls this Service",
    )
    target.add_argument(
        "--webhook-url", help="outside a cluster (tests): the API server calls this base URL"
    )
    parser.add_argument(
        "--webhook-config",
        default=DEFAULT_CONFIG_NAME,
        help="name of the MutatingWebhookConfiguration the operator keeps",
    )
    parser.add_argument(
        "--no-manage-webhook",
        dest="manage_webhook",
        action="store_false",
        help="do not write the webhook configuration (the chart renders it)",
    )
    parser.add_argument(
        "--namespace-opt-in",
        action="store_true",
        help="inject only in namespaces labelled llmcache.dev/injection=enabled",
    )
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        help="never inject in this namespace (repeatable)",
    )
    parser.add_argument(
        "--operator-service-url", help="base URL sidecars reach the delivery server at"
    )
    parser.add_argument(
        "--operator-service",
        metavar="HOST",
        help="Service host name; same as --operator-service-url http://HOST:<policy port>",
    )
    parser.add_argument(
        "--sidecar-image",
        default=os.environ.get("LLMCACHE_SIDECAR_IMAGE", "ghcr.io/llmcache/llmcache:0.1.0"),
        help="image of the injected sidecar",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("LLMCACHE_REDIS_URL"),
        help="Redis for policies without spec.redis [LLMCACHE_REDIS_URL]",
    )
    parser.add_argument(
        "--redis-admin-url",
        default=os.environ.get("LLMCACHE_REDIS_ADMIN_URL"),
        help="admin credential of a shared Redis: each policy without spec.redis gets its own "
        "ACL user there (wins over --redis-url) [LLMCACHE_REDIS_ADMIN_URL]",
    )
    parser.add_argument(
        "--redis-password-overlap",
        type=float,
        default=600.0,
        help="seconds a rotated-out policy password stays valid",
    )
    parser.add_argument(
        "--redis-password-rotation",
        type=float,
        default=0.0,
        help="rotate policy passwords this often, in seconds (0: on request only)",
    )
    parser.add_argument(
        "--stats-interval",
        type=float,
        default=15.0,
        help="seconds between status writes; pods silent 3x this leave injectedPods",
    )
    parser.add_argument(
        "--replica-id",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="this replica's key in status.ledger: stable across restarts, unique among "
        "replicas (default: $POD_NAME, else the host name: a StatefulSet pod's name)",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering", metavar="NAME", help="ClusterKopfPeering name: one active replica of several"
    )
    peering.add_argument("--standalone", action="store_true", help="no peering (one replica)")
    parser.add_argument("--priority", type=int, default=0, help="peering priority")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")


def operator_url(args: argparse.Namespace) -> str:
    if args.operator_service_url:
        return str(args.operator_service_url).rstrip("/")
    port = serving.split_address(args.policy_listen, "0.0.0.0")[1]
    if args.operator_service:
        return f"http://{args.operator_service}:{port}"
    return f"http://127.0.0.1:{port}"


def shared_redis(args: argparse.Namespace) -> SharedRedis | None:
    if not args.redis_admin_url:
        return None
    return SharedRedis(
        args.redis_admin_url,
        overlap_seconds=args.redis_password_overlap,
        rotation_seconds=args.redis_password_rotation,
    )


def webhook_target(args: argparse.Namespace) -> WebhookTarget:
    if args.webhook_service:
        ref, _, port = str(args.webhook_service).partition(":")
        ns, _, name = ref.rpartition("/")
        return WebhookTarget(
            service_namespace=ns or os.environ.get("POD_NAMESPACE", "default"),
            service_name=name,
            service_port=int(port or 443),
        )
    return WebhookTarget(url=args.webhook_url)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()  # also what kopf posts as events
    try:
        asyncio.run(serve(args))
    except (kopf.LoginError, OSError) as exc:
        log.error("cannot start (API server login or listen address): %s", exc)
        return 2
    return 0


async def _mark_synced(store: PolicyStore, watchers: list[PolicyWatcher]) -> None:
    await asyncio.gather(*(w.synced.wait() for w in watchers))
    store.synced.set()
    log.info("policy store synced: %d CachePolicies", len(store))


async def serve(args: argparse.Namespace) -> None:
    metrics = OperatorMetrics()
    store, stats = PolicyStore(), StatsStore(live_seconds=3 * args.stats_interval)
    cluster = await Cluster.connect()
    registry = kopf.OperatorRegistry()
    register_handlers(registry, args.stats_interval)
    shared = shared_redis(args)
    if shared is not None:
        register_acl_handlers(registry, shared)
    settings = kopf.OperatorSettings()
    configure(settings)
    if args.webhook_listen:
        register_webhook(registry)
        host, port = serving.split_address(args.webhook_listen, "0.0.0.0")
        settings.admission.server = InjectorServer(
            cluster=cluster if args.manage_webhook else None,
            config_name=args.webhook_config,
            target=webhook_target(args),
            opt_in=args.namespace_opt_in,
            exclude_namespaces=tuple(args.exclude_namespace),
            remove_on_exit=bool(args.webhook_url),
            addr=host,
            port=port,
            certfile=args.webhook_certfile,
            pkeyfile=args.webhook_keyfile,
            cafile=args.webhook_cafile,
        )

    @kopf.on.login(registry=registry)
    async def _login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
        return await cluster.connection_info(settings)  # one identity, one token for both

    memo = kopf.Memo(
        store=store,
        stats=stats,
        metrics=metrics,
        cluster=cluster,
        default_redis_url=args.redis_admin_url or args.redis_url,  # flushes scope to P:*
        injection=InjectionSettings(
            sidecar_image=args.sidecar_image,
            operator_url=operator_url(args),
            default_redis_url=None if shared else args.redis_url,
            token_audience=AUDIENCE if shared else None,
        ),
        conditions={},
        redis_faults={},
    )
    namespaces: list[str] = list(args.namespace)
    watchers = [PolicyWatcher(cluster, store, ns) for ns in namespaces] or [
        PolicyWatcher(cluster, store, None)
    ]
    runners = [
        await serving.start(
            create_delivery_app(
                store, stats, metrics, (shared, TokenVerifier(cluster)) if shared else None
            ),
            args.policy_listen,
            "0.0.0.0",
        )
    ]
    if args.metrics_listen:
        runners.append(
            await serving.start(create_metrics_app(metrics, store), args.metrics_listen, "0.0.0.0")
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(w.run()) for w in watchers]
    tasks.append(asyncio.create_task(_mark_synced(store, watchers)))
    tasks.append(
        asyncio.create_task(
            publish_forever(cluster, stats, args.replica_id, args.stats_interval, metrics)
        )
    )
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            memo=memo,
            standalone=bool(args.standalone) or None,
            peering_name=args.peering,
            priority=args.priority,
            clusterwide=not namespaces,
            namespaces=namespaces,
            stop_flag=stop,
        )
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in runners:
            await runner.cleanup()
        await cluster.close()
