"""Shared fixtures: a real Redis, the local upstream simulator, and sidecar processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Proc, RedisServer, llmcache


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
