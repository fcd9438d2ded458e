"""Batching of embeddings misses (``batching.mode: batch``).

Embedding APIs take many inputs per call and bill per token, so concurrent misses of the
same caller, model and options are held for ``batching.windowMs`` and sent upstream as one
request of at most ``batching.maxSize`` inputs; each caller gets its own slice back, with
``index`` renumbered and the usage split by input length. Only callers presenting the same
credential are ever batched together, so no request is sent with another caller's key.

One caller's bad input must not fail its batch-mates: when a batch of several callers is
refused as a bad request (e.g. an input over the model's token limit), each caller's inputs
are sent again on their own, so the error reaches only the caller whose input caused it.
A reply that does not hold exactly one vector per input (count, or indexes out of range or
repeated) cannot be split without serving one caller another input's vector: every caller
of that batch gets a 502 in OpenAI's error shape, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, MultiMapping

from .http_client import UPSTREAM_ERRORS, Client, send
from .metrics import Metrics
from .providers.base import Json
from .providers.openai_embeddings import matches_inputs

log = logging.getLogger(__name__)

CREDENTIALS = ("authorization", "api-key", "openai-organization", "openai-project")
#: Statuses that blame the request's content (OpenAI answers 400 for an input over the
#: token limit): worth retrying each caller alone. Auth, rate-limit and server errors are
#: the same for every caller and are passed to all of them.
RETRY_ALONE = frozenset({400, 413, 422})


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
        try:
            reply = await self._exchange(group, group.inputs)
        except UPSTREAM_ERRORS as exc:
            for _, _, future in group.members:
                if not future.done():
                    future.set_exception(exc)
            return
        if reply.status in RETRY_ALONE and len(group.members) > 1:
            await asyncio.gather(*(self._alone(group, *member) for member in group.members))
            return
        for start, count, future in group.members:
            if not future.done():
                future.set_result(_slice(reply, group.inputs, start, count))

    async def _alone(
        self, group: _Group, start: int, count: int, future: asyncio.Future[Reply]
    ) -> None:
        """One caller's inputs of a refused batch, sent on their own."""
        if future.done():  # the caller is gone: nothing to send
            return
        inputs = group.inputs[start : start + count]
        try:
            reply = await self._exchange(group, inputs)
        except UPSTREAM_ERRORS as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(_slice(reply, inputs, 0, count))

    async def _exchange(self, group: _Group, inputs: list[str]) -> Reply:
        """One upstream call for ``inputs`` with the group's model, options and credential."""
        self._metrics.upstream_batch_size.labels("openai.embeddings").observe(len(inputs))
        body = json.dumps({**group.template, "input": inputs}).encode()
        async with send(group.client, "POST", group.url, body, group.headers) as up:
            payload = await up.read()
            return Reply(up.status, _plain(up.headers), payload)


def _group_key(url: str, headers: list[tuple[str, str]], template: Json) -> str:
    given = {name.lower(): value for name, value in headers}
    h = hashlib.sha256(url.encode())
    for name in CREDENTIALS:
        h.update(b"\0" + given.get(name, "").encode())
    h.update(json.dumps(template, sort_keys=True).encode())
    return h.hexdigest()


def _plain(headers: MultiMapping[str]) -> CIMultiDict[str]:
    skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in skip)


def _slice(reply: Reply, inputs: list[str], start: int, count: int) -> Reply:
    """One caller's share of a successful batch; errors go to every caller unchanged, and a
    reply without exactly one vector per input becomes a 502 for every caller."""
    if reply.status != 200:
        return reply
    try:
        doc: dict[str, Any] = json.loads(reply.payload)
        data = doc["data"]
    except (ValueError, KeyError, TypeError):
        data = None
    if not isinstance(data, list) or not matches_inputs(data, len(inputs)):
        got = len(data) if isinstance(data, list) else "no"
        log.warning("embeddings upstream sent %s vectors for %d inputs", got, len(inputs))
        return _mismatch(reply, f"upstream returned {got} embeddings for {len(inputs)} inputs")
    data = sorted(data, key=lambda d: d["index"])
    mine = [{**d, "index": i} for i, d in enumerate(data[start : start + count])]
    usage = doc.get("usage") or {}
    total = sum(len(t) for t in inputs) or 1
    share = sum(len(t) for t in inputs[start : start + count]) / total
    tokens = {k: round(v * share) for k, v in usage.items() if isinstance(v, int)}
    out = {**doc, "data": mine, "usage": {**usage, **tokens}}
    return Reply(reply.status, reply.headers, json.dumps(out, separators=(",", ":")).encode())


def _mismatch(reply: Reply, message: str) -> Reply:
    """A 502 in OpenAI's error shape, keeping the upstream's headers (e.g. its request id)."""
    error = {"message": f"llmcache: {message}", "type": "api_error", "param": None, "code": None}
    headers = CIMultiDict(reply.headers)
    headers["content-type"] = "application/json"
    return Reply(502, headers, json.dumps({"error": error}).encode())
