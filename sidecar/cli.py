"""``llmcache sidecar``: flags, each with an ``LLMCACHE_*`` environment variable."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from llmcache import serving
from llmcache.embedder import threads
from llmcache.policy import (
    HTTP_URL_RULES,
    CachePolicySpec,
    describe_error,
    load_spec,
    parse_spec,
    url_problem,
)
from llmcache.redact import install_log_redaction, redact

from . import policy_source, reporter
from .app import RUNTIME, create_admin_app, create_app
from .runtime import Settings

log = logging.getLogger("llmcache.sidecar")

ADMIN_MAX_CONNECTIONS = 256  # probes and scrapes need few
SPARE_FILES = 256  # Redis, the policy and stats connections, files

FLAGS: tuple[tuple[str, str, str, Any], ...] = (
    # flag, env, help, default
    ("--listen", "LLMCACHE_LISTEN", "host:port of the proxy", "127.0.0.1:8787"),
    ("--admin-listen", "LLMCACHE_ADMIN_LISTEN", "host:port for probes and metrics only", None),
    ("--anthropic-upstream", "LLMCACHE_ANTHROPIC_UPSTREAM",
     "Anthropic API base URL (default: the policy's, https://api.anthropic.com)", None),
    ("--openai-upstream", "LLMCACHE_OPENAI_UPSTREAM",
     "OpenAI API base URL (default: the policy's, https://api.openai.com)", None),
    ("--redis-url", "LLMCACHE_REDIS_URL", "shared L2; unset: in-process memory only", None),
    ("--policy", "LLMCACHE_POLICY", "CachePolicy spec file (YAML/JSON), re-read on change", None),
    ("--policy-json", "LLMCACHE_POLICY_JSON", "inline CachePolicy spec JSON to start with", None),
    ("--policy-url", "LLMCACHE_POLICY_URL", "operator endpoint to long-poll for updates", None),
    ("--policy-token-file", "LLMCACHE_POLICY_TOKEN_FILE",
     "projected ServiceAccount token sent with each poll (the policy's Redis user)", None),
    ("--namespace", "LLMCACHE_NAMESPACE", "namespace of the policy", None),
    ("--policy-name", "LLMCACHE_POLICY_NAME", "name of the policy", None),
    ("--pod-name", "LLMCACHE_POD_NAME", "this pod's name, for statistics", None),
    ("--stats-url", "LLMCACHE_STATS_URL", "operator endpoint to push statistics to", None),
    ("--stats-interval", "LLMCACHE_STATS_INTERVAL", "seconds between statistics pushes", "15"),
    ("--log-level", "LLMCACHE_LOG_LEVEL", "debug, info, warning, error", "info"),
    ("--idle-timeout", "LLMCACHE_IDLE_TIMEOUT",
     "seconds a connection may go without a complete request head", "60"),
    ("--body-timeout", "LLMCACHE_BODY_TIMEOUT",
     "seconds a request body may take to arrive after its head", "60"),
    ("--max-connections", "LLMCACHE_MAX_CONNECTIONS",
     "client connections the proxy listener holds open; more get 503", "4096"),
    ("--embed-threads", "LLMCACHE_EMBED_THREADS",
     "threads of the in-process embedding model and numpy's BLAS", "1"),
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, env, help_text, default in FLAGS:
        parser.add_argument(flag, default=os.environ.get(env, default), help=f"{help_text} [{env}]")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        listen=args.listen,
        admin_listen=args.admin_listen,
        anthropic_upstream=args.anthropic_upstream,
        openai_upstream=args.openai_upstream,
        redis_url=args.redis_url,
        namespace=args.namespace,
        policy_name=args.policy_name,
        pod_name=args.pod_name,
        policy_file=args.policy,
        policy_url=args.policy_url,
        policy_token_file=args.policy_token_file,
        stats_url=args.stats_url,
        stats_interval=float(args.stats_interval),
    )


def limits_from(args: argparse.Namespace) -> serving.Limits:
    return serving.Limits(
        idle_timeout=float(args.idle_timeout),
        body_timeout=float(args.body_timeout),
        max_connections=int(args.max_connections),
    )


def initial_policy(args: argparse.Namespace) -> CachePolicySpec:
    if args.policy:
        return load_spec(args.policy)
    if args.policy_json:
        return parse_spec(json.loads(args.policy_json))
    return CachePolicySpec()


def flag_problems(args: argparse.Namespace) -> list[str]:
    """Upstream flags held to the policy's own rules (they override its fields): with any
    other URL every request would fail. (``--redis-url`` is not: a Redis the sidecar cannot
    use only costs the L2, and a Secret's URL that redis-py takes must not stop the pod.)"""
    checks = (
        ("--anthropic-upstream", args.anthropic_upstream, HTTP_URL_RULES),
        ("--openai-upstream", args.openai_upstream, HTTP_URL_RULES),
    )
    return [
        redact(f"{flag} {value!r}: {problem}")
        for flag, value, rules in checks
        if value and (problem := url_problem(value, rules))
    ]


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()
    if problems := flag_problems(args):
        log.error("invalid flags: %s", "; ".join(problems))
        return 2
    try:  # one thread by default: see llmcache/embedder/threads.py
        threads.limit(threads.configured(args.embed_threads))
    except ValueError as exc:
        log.error("invalid flags: --embed-threads: %s", exc)
        return 2
    serving.quiet_repeated_logs()  # a storm of one fault is a line per 10 s, not megabytes
    # Taken before the read: an edit landing while the process starts is picked up.
    version = policy_source.file_version(args.policy) if args.policy else None
    try:
        spec = initial_policy(args)
    except ValidationError as exc:
        log.error("invalid policy: %s", describe_error(exc))
        return 2
    except (OSError, ValueError) as exc:
        log.error("invalid policy: %s", redact(str(exc)))
        return 2
    serving.run(serve(settings_from(args), spec, version, limits_from(args)))
    return 0


async def serve(
    settings: Settings,
    spec: CachePolicySpec,
    policy_version: float | None = None,
    limits: serving.Limits | None = None,
) -> None:
    limits = _within_open_files(limits or serving.Limits())
    app = create_app(settings, spec, limits=limits)
    runners = [await serving.start(app, settings.listen, backlog=1024, limits=limits)]
    if settings.admin_listen:
        # Its own listener and its own small limit: a flood on the proxy port (or on this
        # one) cannot keep kubelet's probes out of the other.
        admin = create_admin_app(app[RUNTIME])
        admin_limits = dataclasses.replace(limits, max_connections=ADMIN_MAX_CONNECTIONS)
        runners.append(await serving.start(admin, settings.admin_listen, limits=admin_limits))
    tasks = _background(app, settings, policy_version)
    # Everything allocated so far lives as long as the process: keep it out of the garbage
    # collector's full passes, whose pauses otherwise grow with it (43 ms seen at 100k objects).
    gc.collect()
    gc.freeze()
    try:
        await serving.until_stopped()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for runner in reversed(runners):
            await runner.cleanup()


def _within_open_files(limits: serving.Limits) -> serving.Limits:
    """Every proxied connection may hold an upstream one too: keep two per connection, the
    admin listener's and some spare within the open-file limit, or the process runs out of
    descriptors before the limit ever refuses anyone."""
    available = serving.raise_open_files_limit()
    fit = (available - ADMIN_MAX_CONNECTIONS - SPARE_FILES) // 2
    if fit >= limits.max_connections:
        return limits
    log.warning(
        "open-file limit %d leaves room for %d client connections, not %d: using %d",
        available, fit, limits.max_connections, max(fit, 1),
    )  # fmt: skip
    return dataclasses.replace(limits, max_connections=max(fit, 1))


def _background(
    app: web.Application, settings: Settings, policy_version: float | None
) -> list[asyncio.Task[None]]:
    rt = app[RUNTIME]
    coros = []
    if settings.policy_file:
        coros.append(policy_source.watch_file(rt, settings.policy_file, policy_version))
    if settings.policy_url:
        coros.append(policy_source.watch_url(rt, settings.policy_url))
    if settings.stats_url:
        coros.append(reporter.push_stats(rt, settings.stats_url, settings.stats_interval))
    return [asyncio.create_task(c) for c in coros]
