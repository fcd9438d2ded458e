"""Entry ↔ bytes for the shared L2.

Values carry a magic and a format version and are zlib-compressed JSON: a sidecar that
meets a value it cannot read (older or newer format, corruption, something else written
under our prefix) treats it as a miss instead of serving garbage.
"""

from __future__ import annotations

import json
import zlib

from .layers import Entry

MAGIC = b"LLMC"
VERSION = 1
_HEADER = MAGIC + bytes([VERSION])


class CorruptValue(ValueError):
    pass


def encode(entry: Entry) -> bytes:
    doc = {"r": entry.response, "m": entry.model, "c": entry.created, "t": list(entry.tags)}
    return _HEADER + zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 1)


def decode(raw: bytes) -> Entry:
    if raw[:5] != _HEADER:
        raise CorruptValue("unknown magic or format version")
    try:
        doc = json.loads(zlib.decompress(raw[5:]))
        response, model, created, tags = doc["r"], doc["m"], doc["c"], doc["t"]
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptValue(str(exc)) from exc
    if not isinstance(response, dict) or not isinstance(model, str):
        raise CorruptValue("malformed entry")
    return Entry(response=response, model=model, created=float(created), tags=tuple(tags))
