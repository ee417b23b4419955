"""Soak only: hostile scrapers and hostile config files thrown at the running exporter.

Each attack runs against the exporter process of a soak, checks that the exporter answered as
it must, and returns ``None`` when it did or a short text saying what it did instead:

- ``half_open``: more connections than ``--web.max-connections``, each sending part of a request's
  headers and then nothing. The exporter must close every one of them (evicted or timed out)
  within its header timeout, while the soak's own scrapes keep being answered;
- ``bcrypt_flood``: concurrent logins with wrong passwords from several loopback addresses, more
  than ``--web.max-connections``; each must be answered 401 or 429 (or refused at the connection
  limit: 503 or a reset), never 200, while the soak's cached login keeps working;
- ``cross_origin_reload``: ``POST /-/reload`` with a foreign ``Origin`` (403) and without
  credentials (401);
- ``alias_bomb``, ``recursive_alias``, ``expansion_bomb``, ``oversized_config``,
  ``dev_zero_secret``, ``fifo_secret``: the config file replaced by a hostile one and reloaded
  through ``/-/reload``, which must fail with the config problem (not hang, not crash), leave
  ``dli_config_last_reload_successful`` at 0 and the old config serving; then the good file is
  restored and reloaded;
- ``sighup_bad_config``: the same through SIGHUP, judged by the reload metric.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import re
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

ATTACK_KINDS: Final = (
    "half_open",
    "bcrypt_flood",
    "cross_origin_reload",
    "alias_bomb",
    "recursive_alias",
    "expansion_bomb",
    "oversized_config",
    "dev_zero_secret",
    "fifo_secret",
    "sighup_bad_config",
)
#: Seconds to wait for the exporter to answer a reload or close a connection.
ANSWER_TIMEOUT: Final = 10.0
#: How long after a burst of partial connections the exporter's fds are counted again.
SETTLE_SECONDS: Final = 0.5
FLOOD_ADDRESSES: Final = 8
FLOOD_PER_ADDRESS: Final = 6
#: The "status" of a login whose connection was refused (reset) at the connection limit.
REFUSED: Final = 0
_PARTIAL_REQUEST: Final = b"GET /metrics HTTP/1.1\r\nHost: soak\r\nUser-Agent: slow"
_RELOAD_METRIC: Final = re.compile(rb"^dli_config_last_reload_successful (\S+)$", re.MULTILINE)
_SECRET_LINE: Final = "      secret_key: ${SOAK_SECRET_KEY}"


def alias_bomb() -> str:
    """ "Billion laughs": nine levels of nine aliases each, about 10^8 strings if expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous = f"*l{level - 1}"
        lines.append(f"l{level}: &l{level} [{','.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class AttackStats:
    """What the attacks did and what the exporter answered."""

    runs: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: Connections the exporter closed during ``half_open`` attacks, and how.
    half_open_closed: int = 0
    #: Wrong logins answered, by status.
    flood_statuses: dict[int, int] = field(default_factory=dict)
    slowest_reload_seconds: float = 0.0
    #: The exporter's open fds right after a ``half_open`` burst was accepted (evicted
    #: connections are closed on the next turns of its event loop), and `SETTLE_SECONDS` later
    #: with the attack still holding its connections open.
    peak_fds_after_burst: int = 0
    peak_fds_under_flood: int = 0


@dataclass(slots=True)
class Attacker:
    """Attacks one running exporter; `run` picks one at random."""

    base_url: str
    pid: int
    config_path: Path
    good_config: str
    user: str
    password: str
    max_connections: int
    header_timeout: float
    workdir: Path
    count_fds: Callable[[], Awaitable[int]]
    stats: AttackStats = field(default_factory=AttackStats)

    async def run(self, kind: str, rng: random.Random) -> None:
        """Run the attack ``kind`` (one of `ATTACK_KINDS`) and record its outcome."""
        self.stats.runs[kind] = self.stats.runs.get(kind, 0) + 1
        try:
            problem = await self._attack(kind, rng)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self.stats.problems.append(f"{kind}: {problem}")

    async def _attack(self, kind: str, rng: random.Random) -> str | None:
        if kind == "half_open":
            return await self._half_open(rng)
        if kind == "bcrypt_flood":
            return await self._bcrypt_flood()
        if kind == "cross_origin_reload":
            return await self._cross_origin_reload()
        if kind == "sighup_bad_config":
            return await self._sighup_bad_config()
        return await self._bad_reload(self._hostile_config(kind))

    # --- scrapers ----------------------------------------------------------------------------

    async def _half_open(self, rng: random.Random) -> str | None:
        host, port = _host_port(self.base_url)
        count = self.max_connections + rng.randint(8, 32)
        streams = []
        try:
            for _ in range(count):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(_PARTIAL_REQUEST)
                streams.append((reader, writer))
            burst_fds = await self.count_fds()
            await asyncio.sleep(SETTLE_SECONDS)
            self.stats.peak_fds_after_burst = max(self.stats.peak_fds_after_burst, burst_fds)
            self.stats.peak_fds_under_flood = max(
                self.stats.peak_fds_under_flood, await self.count_fds()
            )
            deadline = time.monotonic() + self.header_timeout + ANSWER_TIMEOUT
            left_open = 0
            for reader, _writer in streams:
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        while await reader.read(65536):
                            pass
                except TimeoutError:
                    left_open += 1
                except ConnectionError:
                    pass  # reset: closed too
            self.stats.half_open_closed += count - left_open
            if left_open:
                return f"{left_open} of {count} partial connections still open after the timeout"
            return None
        finally:
            for _reader, writer in streams:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _bcrypt_flood(self) -> str | None:
        host, _port = _host_port(self.base_url)
        first = int(host.rpartition(".")[2])

        async def attempts(address: str) -> list[int]:
            connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
            timeout = aiohttp.ClientTimeout(total=ANSWER_TIMEOUT * 3)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

                async def one() -> int:
                    wrong = basic_auth(self.user, secrets.token_urlsafe(12))
                    try:
                        async with session.get(
                            f"{self.base_url}/metrics", headers=wrong
                        ) as response:
                            return response.status
                    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                        return REFUSED  # over --web.max-connections: refused and closed

                return await asyncio.gather(*(one() for _ in range(FLOOD_PER_ADDRESS)))

        addresses = [f"127.0.0.{(first + offset) % 250 + 2}" for offset in range(FLOOD_ADDRESSES)]
        statuses = [s for batch in await asyncio.gather(*map(attempts, addresses)) for s in batch]
        for status in statuses:
            self.stats.flood_statuses[status] = self.stats.flood_statuses.get(status, 0) + 1
        unexpected = sorted({s for s in statuses if s not in (401, 429, 503, REFUSED)})
        return f"wrong logins answered {unexpected}" if unexpected else None

    async def _cross_origin_reload(self) -> str | None:
        async with aiohttp.ClientSession() as session:
            foreign = {"Origin": "http://attacker.example", **self._auth()}
            async with session.post(f"{self.base_url}/-/reload", headers=foreign) as response:
                if response.status != 403:
                    return f"cross-origin reload answered {response.status}"
            async with session.post(f"{self.base_url}/-/reload") as response:
                if response.status != 401:
                    return f"reload without credentials answered {response.status}"
        return None

    # --- config files ------------------------------------------------------------------------

    def _hostile_config(self, kind: str) -> tuple[str, str]:
        """The file for ``kind`` and what the reload's answer must say about it."""
        if kind == "alias_bomb":
            return alias_bomb(), "more than 100,000 YAML nodes"
        if kind == "recursive_alias":
            return "x: &a [*a]\n", "recursive YAML alias at line 1"
        if kind == "expansion_bomb":
            # Each reference adds the secret's length; together far past the expansion bound.
            reference = '"' + "${SOAK_SECRET_KEY}" * 100 + '"'
            bomb = self.good_config + f"expansion: [{', '.join([reference] * 400)}]\n"
            return bomb, "${VAR} values would add more than 1 MiB"
        if kind == "oversized_config":
            return self.good_config + ("#" * 1023 + "\n") * 5 * 1024, "is larger than 4 MiB"
        if kind == "dev_zero_secret":
            return self._with_secret_file("/dev/zero"), "(a character device)"
        if kind == "fifo_secret":
            fifo = self.workdir / "secret.fifo"
            if not fifo.exists():
                os.mkfifo(fifo)
            return self._with_secret_file(str(fifo)), "(a FIFO)"
        raise ValueError(f"unknown attack {kind!r}")

    def _with_secret_file(self, path: str) -> str:
        assert _SECRET_LINE in self.good_config
        return self.good_config.replace(_SECRET_LINE, f"      secret_key_file: {path}")

    async def _bad_reload(self, hostile: tuple[str, str]) -> str | None:
        content, expected = hostile
        await asyncio.to_thread(_replace_file, self.config_path, content)
        try:
            async with aiohttp.ClientSession() as session:
                started = time.monotonic()
                async with session.post(
                    f"{self.base_url}/-/reload",
                    headers=self._auth(),
                    timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT),
                ) as response:
                    text = await response.text()
                    self._reload_took(time.monotonic() - started)
                    if response.status != 500 or expected not in text:
                        return f"bad reload answered {response.status}: {text[:200]!r}"
                if await self._reload_successful(session) != 0:
                    return "dli_config_last_reload_successful is not 0 after a failed reload"
        finally:
            problem = await self._restore()
        return problem

    async def _sighup_bad_config(self) -> str | None:
        await asyncio.to_thread(_replace_file, self.config_path, "x: &a [*a]\n")
        try:
            os.kill(self.pid, signal.SIGHUP)
            async with aiohttp.ClientSession() as session:
                if not await self._await_reload_metric(session, 0):
                    return "dli_config_last_reload_successful did not drop to 0 after SIGHUP"
        finally:
            await asyncio.to_thread(_replace_file, self.config_path, self.good_config)
        os.kill(self.pid, signal.SIGHUP)
        async with aiohttp.ClientSession() as session:
            if not await self._await_reload_metric(session, 1):
                return "dli_config_last_reload_successful did not return to 1 after SIGHUP"
        return None

    async def _restore(self) -> str | None:
        await asyncio.to_thread(_replace_file, self.config_path, self.good_config)
        async with aiohttp.ClientSession() as session:
            started = time.monotonic()
            async with session.post(
                f"{self.base_url}/-/reload",
                headers=self._auth(),
                timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT),
            ) as response:
                self._reload_took(time.monotonic() - started)
                if response.status != 200:
                    return f"reload of the good config answered {response.status}"
            if await self._reload_successful(session) != 1:
                return "dli_config_last_reload_successful is not 1 after a good reload"
        return None

    def _auth(self) -> dict[str, str]:
        return basic_auth(self.user, self.password)

    def _reload_took(self, seconds: float) -> None:
        self.stats.slowest_reload_seconds = max(self.stats.slowest_reload_seconds, seconds)

    async def _reload_successful(self, session: aiohttp.ClientSession) -> float | None:
        async with session.get(
            f"{self.base_url}/metrics",
            headers={"Accept-Encoding": "identity", **self._auth()},
        ) as response:
            match = _RELOAD_METRIC.search(await response.read())
        return float(match[1]) if match else None

    async def _await_reload_metric(self, session: aiohttp.ClientSession, value: float) -> bool:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            if await self._reload_successful(session) == value:
                return True
            await asyncio.sleep(0.1)
        return False


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The ``Authorization`` header for HTTP basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _host_port(base_url: str) -> tuple[str, int]:
    host, _, port = base_url.removeprefix("http://").partition(":")
    return host, int(port)


def _replace_file(path: Path, content: str) -> None:
    """Replace ``path`` atomically, so the exporter never reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(content)
    os.replace(partial, path)
