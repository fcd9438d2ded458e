"""Batching of embeddings misses (``batching.mode: batch``).

Embedding APIs take many inputs per call and bill per token, so concurrent misses of the
same caller, model and options are held for ``batching.windowMs`` and sent upstream as one
request of at most ``batching.maxSize`` inputs; each caller gets its own slice back, with
``index`` renumbered and the usage split by input length. Only callers presenting the same
credential are ever batched together, so no request is sent with another caller's key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict

from .http_client import Client
from .metrics import Metrics
from .providers.base import Json

CREDENTIALS = ("authorization", "api-key", "openai-organization", "openai-project")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: CIMultiDict[str]
    payload: bytes


@dataclass
class _Group:
    client: Client
    url: str
    headers: list[tuple[str, str]]
    template: Json
    inputs: list[str] = field(default_factory=list)
    members: list[tuple[int, int, asyncio.Future[Reply]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class EmbeddingBatcher:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._groups: dict[str, _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def inputs(body: Json, max_size: int) -> list[str] | None:
        """The request's inputs if it can join a batch (strings only, fewer than a batch)."""
        value = body.get("input")
        inputs = [value] if isinstance(value, str) else value
        if not isinstance(inputs, list) or not inputs or len(inputs) >= max_size:
            return None
        return inputs if all(isinstance(i, str) for i in inputs) else None

    async def call(
        self,
        client: Client,
        url: str,
        headers: list[tuple[str, str]],
        body: Json,
        inputs: list[str],
        window_ms: int,
        max_size: int,
    ) -> Reply:
        template = {k: v for k, v in body.items() if k != "input"}
        key = _group_key(url, headers, template)
        group = self._groups.get(key)
        if group is not None and len(group.inputs) + len(inputs) > max_size:
            self._send(key)
            group = None
        if group is None:
            group = self._groups[key] = _Group(client, url, headers, template)
            loop = asyncio.get_running_loop()
            group.timer = loop.call_later(window_ms / 1000, self._send, key)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        group.members.append((len(group.inputs), len(inputs), future))
        group.inputs.extend(inputs)
        if len(group.inputs) >= max_size:
            self._send(key)
        return await future

    def _send(self, key: str) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        task = asyncio.ensure_future(self._post(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, group: _Group) -> None:
        self._metrics.upstream_batch_size.labels("openai.embeddings").observe(len(group.inputs))
        body = json.dumps({**group.template, "input": group.inputs}).encode()
        try:
            async with group.client.request("POST", group.url, body, group.headers) as up:
                payload = await up.read()
                reply = Reply(up.status, _plain(up.headers), payload)
        except (OSError, TimeoutError) as exc:
            for _, _, future in group.members:
                if not future.done():
                    future.set_exception(exc)
            return
        for start, count, future in group.members:
            if not future.done():
                future.set_result(_slice(reply, group.inputs, start, count))


def _group_key(url: str, headers: list[tuple[str, str]], template: Json) -> str:
    given = {name.lower(): value for name, value in headers}
    h = hashlib.sha256(url.encode())
    for name in CREDENTIALS:
        h.update(b"\0" + given.get(name, "").encode())
    h.update(json.dumps(template, sort_keys=True).encode())
    return h.hexdigest()


def _plain(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in skip)


def _slice(reply: Reply, inputs: list[str], start: int, count: int) -> Reply:
    """One caller's share of a successful batch; errors go to every caller unchanged."""
    if reply.status != 200:
        return reply
    try:
        doc: dict[str, Any] = json.loads(reply.payload)
        data = sorted(doc["data"], key=lambda d: d["index"])
    except (ValueError, KeyError, TypeError):
        return reply
    if len(data) != len(inputs):
        return reply
    mine = [{**d, "index": i} for i, d in enumerate(data[start : start + count])]
    usage = doc.get("usage") or {}
    total = sum(len(t) for t in inputs) or 1
    share = sum(len(t) for t in inputs[start : start + count]) / total
    tokens = {k: round(v * share) for k, v in usage.items() if isinstance(v, int)}
    out = {**doc, "data": mine, "usage": {**usage, **tokens}}
    return Reply(reply.status, reply.headers, json.dumps(out, separators=(",", ":")).encode())
