"""Reading HTTP response bodies with a size limit (shared by the DLI and IAM calls)."""

from __future__ import annotations

import aiohttp


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, however many reads it takes; refuse one larger than ``limit`` bytes.

    A body announced (``Content-Length``) or found to be larger is refused before or while it
    is read, so a runaway response cannot exhaust memory.
    """
    if resp.content_length is not None and resp.content_length > limit:
        raise aiohttp.ClientPayloadError(f"body of {resp.content_length} bytes is too large")
    body = bytearray()
    async for chunk in resp.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise aiohttp.ClientPayloadError(f"body larger than {limit} bytes is too large")
    return bytes(body)
