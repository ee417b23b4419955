"""Joined segments are one standard gzip member, whatever the texts and their order."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.gzipjoin import EMPTY, GZIP_LEVEL, SegmentCompressor, gzip_join

texts = st.lists(
    st.one_of(
        st.binary(max_size=300),
        # long texts cross the CRC helper's 64 KiB zero buffer and deflate's 32 KiB window
        st.builds(
            lambda unit, count: unit * count,
            st.binary(min_size=1, max_size=40),
            st.integers(min_value=1, max_value=5000),
        ),
    ),
    max_size=12,
)


def single_member(body: bytes) -> bytes:
    """The content of ``body``, asserting it is exactly one gzip member."""
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    content = reader.decompress(body) + reader.flush()
    assert reader.eof and reader.unused_data == b"", "not exactly one gzip member"
    return content


@settings(max_examples=60, deadline=None)
@given(texts=texts, order=st.randoms(use_true_random=False), level=st.sampled_from([1, 6, 9]))
def test_segments_joined_in_any_order_are_their_texts(
    texts: list[bytes], order: object, level: int
) -> None:
    compressor = SegmentCompressor(level)
    segments = [compressor.segment(text) for text in texts]  # one state, written in this order
    picked = list(range(len(texts)))
    order.shuffle(picked)  # type: ignore[attr-defined]

    body = gzip_join(segments[i] for i in picked)

    expected = b"".join(texts[i] for i in picked)
    assert single_member(body) == expected
    assert gzip.decompress(body) == expected  # Python's reader checks CRC-32 and size too


def test_a_segment_may_be_joined_more_than_once_and_empty_ones_add_nothing() -> None:
    compressor = SegmentCompressor(GZIP_LEVEL)
    header, lines = compressor.segment(b"# TYPE x gauge\n"), compressor.segment(b"x 1.0\n" * 9000)

    body = gzip_join([header, EMPTY, lines, compressor.segment(b""), lines, header])

    assert single_member(body) == b"# TYPE x gauge\n" + b"x 1.0\n" * 18000 + b"# TYPE x gauge\n"
    assert single_member(gzip_join([])) == b""
    assert len(body) < 1000  # still compressed: the joins do not store the text


def test_a_corrupted_join_is_refused_by_the_crc_check() -> None:
    """The CRC written is the real one: flipping a byte of the text's CRC makes readers fail."""
    body = bytearray(gzip_join([SegmentCompressor(GZIP_LEVEL).segment(b"x 1.0\n" * 10)]))
    body[-8] ^= 0x01

    with pytest.raises(gzip.BadGzipFile, match="CRC"):
        gzip.decompress(bytes(body))


@pytest.mark.skipif(shutil.which("gzip") is None, reason="needs the gzip command")
def test_the_gzip_command_reads_a_join(tmp_path: Path) -> None:
    compressor = SegmentCompressor(GZIP_LEVEL)
    parts = [b"a" * 70_000, b"", b"b\n" * 1000, bytes(range(256)) * 300]
    path = tmp_path / "joined.gz"
    path.write_bytes(gzip_join(compressor.segment(part) for part in reversed(parts)))

    result = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True)

    assert result.stdout == b"".join(reversed(parts))
