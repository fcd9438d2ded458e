"""Shared fixtures: a real Redis, the local upstream simulator, and sidecar processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Proc, RedisServer, llmcache


@pytest.fixture(autouse=True, scope="session")
def _loopback_is_never_proxied() -> Iterator[None]:
    """Test traffic stays on loopback even on a machine that routes HTTP through a proxy:
    the sidecar, like the SDKs, honours ``HTTP(S)_PROXY`` and ``NO_PROXY``."""
    before = os.environ.get("NO_PROXY")
    loopback = "127.0.0.1,localhost,::1"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = f"{before},{loopback}" if before else loopback
    yield


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Proc]:
    """One simulator of the Anthropic and OpenAI APIs for the whole session."""
    proc = llmcache("upstream-sim", "--listen", "127.0.0.1:0")
    yield proc
    proc.stop()


SidecarFactory = Callable[..., Proc]


@pytest.fixture
def sidecar(upstream: Proc, tmp_path: Path) -> Iterator[SidecarFactory]:
    """Start sidecar processes in front of the simulator; all are stopped at the end."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str] | None = None, count: int = 1) -> Proc:
        proc = llmcache(
            "sidecar",
            "--listen",
            "127.0.0.1:0",
            "--anthropic-upstream",
            upstream.url,
            "--openai-upstream",
            upstream.url,
            *args,
            env=env,
            count=count,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
