"""Tests for exporter.files: bounded reads of real files, symlinks, FIFOs, devices, directories."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from exporter.files import FileReadError, format_size, read_bounded

#: Generous: a read that should return at once but blocks fails the test instead of hanging it.
BLOCKED_AFTER = 20.0


def refused(path: str | Path, limit: int = 1024) -> FileReadError:
    with pytest.raises(FileReadError) as info:
        read_bounded(path, limit)
    assert info.value.path == str(path)
    assert str(info.value) == info.value.reason
    return info.value


def test_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"content\n")
    assert read_bounded(path, 1024) == b"content\n"
    assert read_bounded(str(path), 8) == b"content\n"  # exactly the limit is fine


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    assert read_bounded(tmp_path / "f", 1024) == b""


def test_larger_than_the_chunk_size(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    assert read_bounded(tmp_path / "f", len(data)) == data


def test_symlinks_to_a_file_as_kubernetes_secret_mounts_use(tmp_path: Path) -> None:
    # A secret volume: key -> ..data/key, ..data -> ..2024_01_01_00_00_00.123/
    version = tmp_path / "..2024_01_01_00_00_00.123"
    version.mkdir()
    (version / "sk").write_bytes(b"secret\n")
    (tmp_path / "..data").symlink_to(version.name)
    (tmp_path / "sk").symlink_to("..data/sk")
    assert read_bounded(tmp_path / "sk", 64) == b"secret\n"


def test_too_large(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 65537)
    assert refused(tmp_path / "f", 65536).reason == "is larger than 64 KiB"


def test_too_large_without_a_size_is_cut_off() -> None:
    # /proc files report st_size 0: the limit must hold on what is read, not on fstat.
    assert os.stat("/proc/self/status").st_size == 0
    assert refused("/proc/self/status", 16).reason == "is larger than 16 bytes"
    assert b"Name:" in read_bounded("/proc/self/status", 1 << 20)


def test_missing_file(tmp_path: Path) -> None:
    assert refused(tmp_path / "absent").reason == "No such file or directory"


def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "absent")
    assert refused(tmp_path / "link").reason == "No such file or directory"


def test_directory(tmp_path: Path) -> None:
    assert refused(tmp_path).reason == "is not a regular file (a directory)"


def test_dev_zero_is_refused_not_read() -> None:
    assert refused("/dev/zero", 1 << 30).reason == "is not a regular file (a character device)"


def test_symlink_to_a_device(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/dev/zero")
    assert refused(tmp_path / "link").reason == "is not a regular file (a character device)"


def test_socket(tmp_path: Path) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert refused(path).reason == "is not a regular file (a socket)"


@pytest.mark.parametrize("through_symlink", [False, True])
def test_fifo_without_a_writer_is_refused_without_blocking(
    tmp_path: Path, through_symlink: bool
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = fifo
    if through_symlink:
        path = tmp_path / "link"
        path.symlink_to(fifo)
    outcome: list[BaseException | bytes] = []

    def read() -> None:
        try:
            outcome.append(read_bounded(path, 1024))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(BLOCKED_AFTER)
    if reader.is_alive():  # blocked in open() or read(): release it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(BLOCKED_AFTER)
        pytest.fail("read_bounded blocked on a FIFO without a writer")
    [result] = outcome
    assert isinstance(result, FileReadError)
    assert result.reason == "is not a regular file (a FIFO)"


def test_no_descriptor_leaks(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 100)
    (tmp_path / "ok").write_bytes(b"x")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        read_bounded(tmp_path / "ok", 10)
        for path in (tmp_path / "big", tmp_path, tmp_path / "absent"):
            with pytest.raises(FileReadError):
                read_bounded(path, 10)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1000, "1000 bytes"),
        (1024, "1 KiB"),
        (65536, "64 KiB"),
        (1536, "1536 bytes"),
        (1 << 20, "1 MiB"),
        (16 << 20, "16 MiB"),
        (1 << 30, "1 GiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
