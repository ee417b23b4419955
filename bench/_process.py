"""Starting the exporter for a benchmark: a bench-only wrapper script around the normal CLI."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


async def start_wrapped_exporter(
    wrapper: Path, config: Path, env: Mapping[str, str], extra_args: Sequence[str] = ()
) -> asyncio.subprocess.Process:
    """Run ``wrapper`` (which calls ``exporter.cli.main``) on an ephemeral loopback port.

    It logs JSON lines on stderr (read them for the ``listening`` address); stdout is dropped.
    """
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(wrapper),
        "--config.file",
        str(config),
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "json",
        *extra_args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        limit=1 << 20,
    )
