"""Bounded reads of the files the exporter is pointed at (config, secrets, certificates).

Such a path may name anything: a FIFO without a writer (an ``open`` that blocks forever), a
device such as ``/dev/zero`` or ``/dev/random`` (endless or blocking), a directory or a file far
larger than any sane config. :func:`read_bounded` only reads regular files (symlinks to them are
fine, as Kubernetes secret mounts use), never blocks in ``open``, and reads at most a limit.
"""

from __future__ import annotations

import os
import stat

__all__ = ["FileReadError", "format_size", "read_bounded"]

_CHUNK = 64 * 1024
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileReadError(Exception):
    """A file could not be read; ``reason`` says why, for ``cannot read '<path>': <reason>``.

    The reason never contains any of the file's content.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(reason)


def format_size(size: int) -> str:
    """``65536`` -> ``64 KiB``, ``1048576`` -> ``1 MiB``; other sizes in bytes."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "an unusual kind of file")


def _check_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise FileReadError(path, f"is not a regular file ({_kind(mode)})")


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """Return the content of the regular file at ``path``, at most ``limit`` bytes.

    Raises :class:`FileReadError` when the file is missing or unreadable, is not a regular file
    (FIFO, device, directory, socket) or is larger than ``limit``. Never blocks on a FIFO.
    """
    name = os.fspath(path)
    try:
        # stat first so that a device is refused without being opened (opening some has effects).
        _check_regular(name, os.stat(name).st_mode)
        # O_NONBLOCK: should the path be swapped for a FIFO meanwhile, open still returns at once.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise FileReadError(name, exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        _check_regular(name, info.st_mode)
        too_large = f"is larger than {format_size(limit)}"
        if info.st_size > limit:
            raise FileReadError(name, too_large)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # grew after the fstat, or a size-less file such as /proc's
            raise FileReadError(name, too_large)
        return b"".join(chunks)
    except OSError as exc:
        raise FileReadError(name, exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)
