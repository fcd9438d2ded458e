"""Entry ↔ bytes for the shared L2.

A value is a 16-byte header, then meta JSON (model, creation and expiry time, tags, token
usage), then the response body exactly as it is sent to clients, zlib-compressed when it is
large enough to be worth it. The header (big-endian) is ``LLMC``, the format version (1
byte), flags (1 byte; ``0x01``: body compressed), the meta length (2 bytes), the stored body
length (4 bytes) and a CRC-32 of meta and stored body (4 bytes).

A hit never parses the body: it sends it, so every value is checked before it is served,
compressed or not (a truncated or scrambled small body would otherwise reach the client as
invalid JSON). A sidecar that meets a value it cannot read (another format version, a length
or checksum that does not match, something else written under our prefix) treats it as a
miss instead of serving garbage.
"""

from __future__ import annotations

import struct
import zlib

import orjson

from .layers import Entry
from .providers.base import Usage

MAGIC = b"LLMC"
VERSION = 3  # 3: lengths and CRC-32 in the header
COMPRESSED = 0x01
COMPRESS_FROM = 1024  # bytes; below this zlib costs more time than it saves space
_HEAD = struct.Struct(">4sBBHII")


class CorruptValue(ValueError):
    pass


def encode(entry: Entry) -> bytes:
    u = entry.usage or Usage()
    meta = orjson.dumps(
        {
            "m": entry.model,
            "c": entry.created,
            "x": entry.expires,
            "t": list(entry.tags),
            "u": [u.input, u.output, u.cache_read, u.cache_write],
        }
    )
    body, flags = entry.encoded(), 0
    if len(body) >= COMPRESS_FROM:
        body, flags = _deflate(body), COMPRESSED
    checksum = zlib.crc32(body, zlib.crc32(meta))
    return _HEAD.pack(MAGIC, VERSION, flags, len(meta), len(body), checksum) + meta + body


def _deflate(body: bytes) -> bytes:
    """Raw deflate, level 1, 4 KiB window, smallest memory level: on answer-sized bodies
    this compresses within a few percent of ``zlib.compress(body, 1)`` in a seventh of the
    time (most of which is allocating zlib's default 256 KiB state)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, -12, 1)
    return compressor.compress(body) + compressor.flush()


def decode(raw: bytes) -> Entry:
    try:
        magic, version, flags, size, stored, checksum = _HEAD.unpack_from(raw)
    except struct.error as exc:
        raise CorruptValue("value too short") from exc
    if magic != MAGIC or version != VERSION:
        raise CorruptValue("unknown magic or format version")
    start = _HEAD.size
    if len(raw) != start + size + stored:
        raise CorruptValue("length does not match the header")
    if zlib.crc32(memoryview(raw)[start:]) != checksum:
        raise CorruptValue("checksum does not match")
    try:
        meta = orjson.loads(raw[start : start + size])
        body = raw[start + size :]
        if flags & COMPRESSED:
            body = zlib.decompress(body, -15)
        model, created, tags, usage = meta["m"], meta["c"], meta["t"], meta["u"]
        entry = Entry(
            body=body,
            model=model,
            created=float(created),
            expires=float(meta["x"]),
            tags=tuple(tags),
            usage=Usage(*(int(n) for n in usage)),
        )
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise CorruptValue(str(exc)) from exc
    if not isinstance(model, str) or not body.startswith(b"{"):
        raise CorruptValue("malformed entry")
    return entry
