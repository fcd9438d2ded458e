"""Server-sent events with the latency model's pacing and injected stream faults."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .text import dumps


class StreamCut(Exception):
    """The connection was cut on purpose (``x-sim-stream-fault: disconnect``)."""


class SSE:
    """Writes events; counts content deltas so a fault can strike after a few of them."""

    def __init__(
        self, request: web.Request, response: web.StreamResponse, fault: str | None, after: int
    ) -> None:
        self._request = request
        self._response = response
        self.fault = fault if fault in {"disconnect", "error"} else None
        self._after = max(1, after)
        self.deltas = 0

    @classmethod
    async def open(cls, request: web.Request, headers: dict[str, str], after: int) -> SSE:
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                **headers,
            },
        )
        await response.prepare(request)
        fault = request.headers.get("x-sim-stream-fault", "").strip().lower() or None
        return cls(request, response, fault, after)

    @property
    def response(self) -> web.StreamResponse:
        return self._response

    async def event(self, name: str | None, data: Any) -> None:
        payload = data if isinstance(data, str) else dumps(data)
        head = f"event: {name}\n" if name else ""
        await self._response.write(f"{head}data: {payload}\n\n".encode())

    def fault_due(self) -> str | None:
        """Count one content delta; the fault to inject now, if any."""
        self.deltas += 1
        return self.fault if self.fault and self.deltas > self._after else None

    async def cut(self) -> None:
        """Drop the connection mid-body: no terminal event, no final chunk."""
        transport = self._request.transport
        if transport is not None:
            transport.abort()
        await asyncio.sleep(0)
        raise StreamCut

    async def finish(self) -> web.StreamResponse:
        await self._response.write_eof()
        return self._response
