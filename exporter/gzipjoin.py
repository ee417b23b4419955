"""One gzip stream from separately compressed pieces, joined without decompressing them.

The exposition is made of one piece per (family, target). Each is compressed once, when its
target's data changes, into a `Segment`: raw deflate blocks ended by a full flush, so that it
refers to no earlier data, ends on a byte boundary and is not final. Segments in any order,
then an empty final block, make a valid deflate stream; `gzip_join` wraps them in a single gzip
member (as pigz does), so every gzip reader accepts it, not only those that read concatenated
members. The member's CRC-32 is combined from the segments' own without their text (see
`Segment.crc_term`), so a join costs a copy of the compressed bytes and a CRC-32 pass over a
zero buffer as long as the plain text, not a compression of it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["EMPTY", "GZIP_LEVEL", "Segment", "SegmentCompressor", "gzip_join"]

#: Compression level: each target's text is compressed once per poll of it, and ~10x smaller.
GZIP_LEVEL: Final = 6

#: Deflate's window bits for a raw stream (no zlib or gzip wrapper).
_RAW_WBITS: Final = -zlib.MAX_WBITS
#: gzip's header: magic, deflate, no flags, no mtime, no extra flags, OS unknown (RFC 1952).
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: An empty final block with fixed Huffman codes: ends the deflate stream.
_FINAL_BLOCK: Final = b"\x03\x00"
_ZEROS: Final = memoryview(bytes(1 << 16))


def _crc_of_zeros(count: int, crc: int) -> int:
    """zlib's CRC-32 of ``count`` zero bytes, continued from ``crc``."""
    while count > 0:
        step = min(count, len(_ZEROS))
        crc = zlib.crc32(_ZEROS[:step], crc)
        count -= step
    return crc


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of text compressed so that it can be joined to others (see the module doc)."""

    #: Raw deflate blocks, the last one ended by a full flush.
    deflated: bytes
    #: The length of the text.
    size: int
    #: ``crc32(text) ^ crc32(zeros(size))``: CRC-32 is affine, so for any CRC ``c`` of what
    #: comes before, ``crc32(text, c) == crc32(zeros(size), c) ^ crc_term``.
    crc_term: int

    @property
    def empty(self) -> bool:
        """True for a segment of no text."""
        return self.size == 0


#: The segment of no text.
EMPTY: Final = Segment(b"", 0, 0)


class SegmentCompressor:
    """Compresses texts one after the other into independent segments, with one deflate state.

    Not thread-safe: one per thread or per render.
    """

    def __init__(self, level: int) -> None:
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, _RAW_WBITS)

    def segment(self, text: bytes) -> Segment:
        """``text`` as a segment; `EMPTY` for no text."""
        if not text:
            return EMPTY
        deflated = self._deflate.compress(text) + self._deflate.flush(zlib.Z_FULL_FLUSH)
        crc_term = zlib.crc32(text) ^ _crc_of_zeros(len(text), 0)
        return Segment(deflated, len(text), crc_term)


def gzip_join(segments: Iterable[Segment]) -> bytes:
    """One gzip member whose content is the segments' texts in order."""
    parts = [_GZIP_HEADER]
    crc = size = 0
    for segment in segments:
        if segment.size:
            parts.append(segment.deflated)
            crc = _crc_of_zeros(segment.size, crc) ^ segment.crc_term
            size += segment.size
    parts.append(_FINAL_BLOCK)
    parts.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(parts)
