"""The status page in a real browser: headless Chromium loads ``/`` of the ``incident`` demo.

What a person would see is checked on the DOM Chromium built (the failing job with its reason,
the restart loop, the stalled and back-pressured jobs in the attention list, the healthy job
not in it, no secret anywhere), and a phone-width screenshot is kept in ``test-artifacts/``.
Chromium is Debian's ``chromium-headless-shell`` (``scripts/install-tools.sh`` installs it);
without it these tests skip.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from exporter.config import AkSkAuth
from exporter.demo import demo_config
from exporter.web import create_app
from tests.exporting import serve_app
from tests.processes import exporter_process

CHROMIUM = "/usr/bin/chromium-headless-shell"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: What the incident scenario's jobs show once every problem is there (job name -> text).
EXPECTED = {
    "payments_dedup": ("failed", "job_running_exception: JobException", "Recovery is suppressed"),
    "clickstream_sink": ("restart loop", "restarts in 15 min"),
    "fraud_scoring": ("stalled", "reads 0 records/s (Cloud Eye)"),
    "sessionize": ("back-pressured", "backpressure level 100 (high)"),
}
HEALTHY = "orders_enrich"
#: The shape of the demo's throwaway secret key (``secrets.token_urlsafe(30)``).
DEMO_SECRET_SHAPE = re.compile(r"(?<![\w-])[\w-]{40}(?![\w-])")


def chromium() -> str:
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium-headless-shell")
    if path is None:
        pytest.skip(
            "chromium-headless-shell not found: install Debian's 'chromium-headless-shell' "
            "package (make tools)"
        )
    return path


async def run_chromium(url: str, profile: Path, *extra: str) -> bytes:
    """Chromium's stdout for ``url`` (a fresh profile; no network but the exporter)."""
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *extra,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


class Page(HTMLParser):
    """The text a person reads: the attention list's rows by job name, and each section's."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.sections: dict[str, str] = {}
        self.text: list[str] = []
        self._section: str | None = None
        self._depth = 0
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if self._section is None and tag == "div" and found.get("id"):
            self._section, self._depth = found["id"], 0
        if self._section is not None and tag == "div":
            self._depth += 1
        if tag == "tr" and "job" in (found.get("class") or "").split():
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            text = " ".join(" ".join(self._row).split())
            self.rows[text.split(" ", 1)[0]] = text
            self._row = None
        if self._section is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self._section = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row is not None:
            self._row.append(data)
        if self._section is not None:
            self.sections[self._section] = self.sections.get(self._section, "") + data


def read(dom: str) -> Page:
    page = Page()
    page.feed(dom)
    return page


async def wait_for_every_problem(url: str) -> None:
    """Until the failing job has failed and every other problem shows (about 10 s)."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            async with session.get(url) as response:
                rows = read(await response.text()).rows
            if all(all(t in rows.get(name, "") for t in texts) for name, texts in EXPECTED.items()):
                return
            await asyncio.sleep(0.5)


async def look_at(url: str, tmp_path: Path, screenshot: Path) -> Page:
    """Load ``url`` in Chromium: its DOM, and a phone-width screenshot at ``screenshot``."""
    dom = (await run_chromium(url, tmp_path / "dom-profile", "--dump-dom")).decode()
    screenshot.parent.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    await run_chromium(
        url,
        tmp_path / "shot-profile",
        f"--screenshot={screenshot}",
        "--window-size=412,2000",
        "--hide-scrollbars",
    )
    picture = screenshot.read_bytes()
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(picture) > 20_000  # a rendered page, not a blank one
    return read(dom)


def check_what_a_person_sees(page: Page) -> None:
    attention = page.sections["attention"]
    for name, texts in EXPECTED.items():
        assert name in page.rows, f"{name} is not in the attention list: {attention}"
        for text in texts:
            assert text in page.rows[name], f"{name}: {text!r} not in {page.rows[name]!r}"
    assert HEALTHY not in attention
    assert "demo-incident" in attention
    assert "jobs need attention" in "".join(page.text)


@pytest.fixture
def chromium_path() -> str:
    return chromium()


async def test_the_incident_page_shows_every_problem_in_chromium(
    chromium_path: str, tmp_path: Path
) -> None:
    async with exporter_process("--demo", "--demo.scenario", "incident") as (url, _, _):
        await wait_for_every_problem(f"{url}/")
        page = await look_at(f"{url}/", tmp_path, ARTIFACTS / "status-page-phone.png")
        config = read(
            (await run_chromium(f"{url}/-/config", tmp_path / "c", "--dump-dom")).decode()
        )

    check_what_a_person_sees(page)
    text = "".join(page.text)
    assert not DEMO_SECRET_SHAPE.search(text)  # the demo's secret key, whatever it is
    shown = "".join(config.text)
    assert "secret_key: <secret>" in shown and not DEMO_SECRET_SHAPE.search(shown)


@pytest.fixture
async def incident() -> AsyncIterator[tuple[str, str]]:
    """The incident demo served from this process: its URL and its (known) secret key."""
    async with demo_config(scenario="incident") as config:
        auth = config.targets[0].auth
        assert isinstance(auth, AkSkAuth)
        async with serve_app(create_app(config, grafana_url="https://grafana.example")) as url:
            yield url, auth.secret_key.reveal()


async def test_no_secret_reaches_the_browser_and_jobs_link_to_grafana(
    chromium_path: str, incident: tuple[str, str], tmp_path: Path
) -> None:
    url, secret_key = incident
    await wait_for_every_problem(f"{url}/")
    dom = (await run_chromium(f"{url}/", tmp_path / "p", "--dump-dom")).decode()
    config = (await run_chromium(f"{url}/-/config", tmp_path / "q", "--dump-dom")).decode()

    check_what_a_person_sees(read(dom))
    assert secret_key not in dom and secret_key not in config
    assert "<secret>" in config or "&lt;secret&gt;" in config
    assert 'href="https://grafana.example/d/dli-job-detail?var-target=demo-incident&amp;' in dom
