"""``auth.type: profile`` and the SDK's profile file (``[basic]``: ak, sk, security_token)."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from exporter.auth import credentials_for, describe_credentials
from exporter.config import ConfigError, ProfileAuth, parse_config
from exporter.secret import Secret
from exporter.simulator import Simulator, serve
from tests.conftest import ACCESS_KEY, PROJECT, SECRET_KEY, make_api, make_target

TOKEN = "profile-token-do-not-log-5e4d"
TARGET = "targets:\n  - {name: a, region: cn-north-4, project_id: p, auth: %s}\n"


def write_profile(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def basic(ak: str = ACCESS_KEY, sk: str = SECRET_KEY, extra: str = "") -> str:
    return f"[basic]\nak = {ak}\nsk = {sk}\nproject_id = {PROJECT}\n{extra}"


def problems(text: str, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml", environ)
    return [f"{p.key}: {p.message}" for p in caught.value.problems]


def test_explicit_path(tmp_path: Path) -> None:
    path = write_profile(tmp_path / "creds", basic(extra=f"security_token = {TOKEN}\n"))
    config = parse_config(TARGET % f"{{type: profile, path: {path}}}", "c.yaml", {})
    auth = config.targets[0].auth
    assert auth == ProfileAuth(str(path), ACCESS_KEY, Secret(SECRET_KEY), Secret(TOKEN))
    description = describe_credentials(config.targets[0])
    assert description == f"profile file {path} (temporary AK/SK, access key {ACCESS_KEY})"
    assert SECRET_KEY not in repr(auth) and TOKEN not in repr(auth)


def test_the_sdk_locations(tmp_path: Path) -> None:
    home = tmp_path / "home"
    default = write_profile(home / ".huaweicloud" / "credentials", basic(ak="home-ak"))
    other = write_profile(tmp_path / "elsewhere", basic(ak="env-file-ak"))
    text = TARGET % "{type: profile}"
    config = parse_config(text, "c.yaml", {"HOME": str(home)})
    assert config.targets[0].auth == ProfileAuth(str(default), "home-ak", Secret(SECRET_KEY))
    env = {"HOME": str(home), "HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(other)}
    config = parse_config(text, "c.yaml", env)
    assert config.targets[0].auth == ProfileAuth(str(other), "env-file-ak", Secret(SECRET_KEY))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (f"[global]\nak = a\nsk = {SECRET_KEY}\n", "has no [basic] section"),
        ("[basic]\nak = a\n", "[basic] needs both ak and sk"),
        (f"[basic]\nsk = {SECRET_KEY}\n", "[basic] needs both ak and sk"),
        (f"sk = {SECRET_KEY}\n[basic]\n", "is not a valid INI profile file"),
        (f"[basic]\nsk = {SECRET_KEY}\nsk = again\n", "is not a valid INI profile file"),
        ("[basic]\nidp_id = idp\nid_token_file = /t\n", "federated profiles"),
    ],
)
def test_bad_profiles_name_the_problem_not_the_values(
    tmp_path: Path, body: str, fragment: str
) -> None:
    path = write_profile(tmp_path / "creds", body)
    [problem] = problems(TARGET % f"{{type: profile, path: {path}}}", {})
    assert problem.startswith("targets[0].auth.path: ") and fragment in problem
    assert SECRET_KEY not in problem


def test_the_file_is_read_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # read_bounded refuses it instead of blocking
    [problem] = problems(TARGET % f"{{type: profile, path: {fifo}}}", {})
    assert "is not a regular file (a FIFO)" in problem
    [problem] = problems(TARGET % f"{{type: profile, path: {tmp_path / 'none'}}}", {})
    assert "cannot read" in problem and "No such file" in problem


async def test_a_poll_signs_with_the_profile_keys(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    sim = Simulator(credentials={ACCESS_KEY: SECRET_KEY}, lifecycle=False)
    sim.add_job(PROJECT)
    path = write_profile(tmp_path / "creds", basic())
    config = parse_config(TARGET % f"{{type: profile, path: {path}}}", "c.yaml", {})
    async with serve(sim) as url:
        target = make_target("a", url, auth=config.targets[0].auth)
        creds = credentials_for(target, session)
        client = make_api(session, endpoint=url, project_id=PROJECT, credentials=creds, timeout=5)
        assert len(await client.list_jobs()) == 1
    assert [(r.status, r.access_key) for r in sim.request_log] == [(200, ACCESS_KEY)]
