"""Server-sent events: an incremental parser for upstream bytes and an encoder for replays.

The parser follows the WHATWG event-stream rules (lines end in ``\\n``, ``\\r\\n`` or ``\\r``;
``data`` lines of one event are joined with ``\\n``; ``:`` starts a comment; a blank line ends
the event) and accepts bytes split anywhere, even inside a ``\\r\\n`` or a UTF-8 sequence.
It also hands back each event's exact bytes so the proxy can forward what the upstream sent
without re-encoding it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

SSEEvent = tuple[str | None, str, bytes]  # (event name, data, the event's raw bytes)

_EOL = re.compile(rb"\r\n|\r|\n")
_TEXT_EOL = re.compile(r"\r\n|\r|\n")


class SSEParser:
    """Feed chunks as they arrive; get back every event completed so far.

    Blocks without data (comments, keep-alives) are yielded too, as ``(None or name, "",
    raw)``, so a proxy forwards them byte for byte; consumers ignore an empty ``data``.
    An event left unterminated when the stream ends is never yielded (as the spec says).
    """

    __slots__ = ("_buf", "_data", "_event", "_pos", "_start")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # where the next unparsed line begins
        self._start = 0  # where the current event's bytes begin
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        buf = self._buf
        buf += chunk
        pos = self._pos
        size = len(buf)
        while pos < size:
            m = _EOL.search(buf, pos)
            if m is None:
                break
            end = m.end()
            if m.group() == b"\r" and end == size:
                break  # may be the first half of a \r\n split across chunks
            line = buf[pos : m.start()]
            pos = end
            if line:
                self._field(line)
                continue
            raw = bytes(buf[self._start : end])
            self._start = end
            event, data = self._event, self._data
            self._event, self._data = None, []
            yield event, "\n".join(data), raw
        self._pos = pos
        if self._start:
            del buf[: self._start]
            self._pos -= self._start
            self._start = 0

    def _field(self, line: bytearray) -> None:
        if line[0] == 0x3A:  # ":" comment
            return
        text = line.decode("utf-8", "replace")
        name, sep, value = text.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id" and "retry" matter to reconnecting browsers only.

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished event are buffered (an interrupted stream)."""
        return bool(self._buf)

    def remainder(self) -> bytes:
        """The buffered bytes of the unfinished event, for a proxy that wants to pass an
        upstream's last, unterminated bytes on verbatim when the stream ends."""
        return bytes(self._buf)


def encode(event: str | None, data: str) -> bytes:
    """One event; ``data`` containing newlines becomes several ``data:`` lines."""
    head = f"event: {event}\n" if event else ""
    if "\n" in data or "\r" in data:
        body = "".join(f"data: {line}\n" for line in _TEXT_EOL.split(data))
    else:
        body = f"data: {data}\n"
    return f"{head}{body}\n".encode()
