"""The default chain when a target has no ``auth``, in the SDK's order: workload identity,
environment, profile file, pod identity, and the metadata service when nothing else is set
(it cannot be probed while the config loads; see README)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path

import aiohttp
import pytest

from exporter.auth import credentials_for, describe_credentials
from exporter.config import AkSkAuth, ConfigError, ProfileAuth, parse_config
from exporter.secret import Secret

TEXT = "targets:\n  - {name: a, region: cn-north-4, project_id: p}\n"
ENV_SK = "env-sk-do-not-log-1a2b"
FILE_SK = "file-sk-do-not-log-3c4d"
ENV = {"HUAWEICLOUD_SDK_AK": "env-ak", "HUAWEICLOUD_SDK_SK": ENV_SK}
OIDC = {
    "HUAWEICLOUD_OIDC_PROVIDER_URN": "iam::1:identityprovider:p",
    "HUAWEICLOUD_OIDC_AGENCY_URN": "iam::1:agency:a",
    "HUAWEICLOUD_OIDC_TOKEN_FILE": "/t",
    "HUAWEICLOUD_SDK_STS_ENDPOINT": "http://127.0.0.1:1",
}
POD = {
    "HC_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:2/c",
    "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/p",
}
OIDC_CHOSEN = "workload identity (agency iam::1:agency:a via http://127.0.0.1:1)"
POD_CHOSEN = "CCE pod identity (http://127.0.0.1:2/c, token file /p)"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def with_profile(home: Path) -> Path:
    path = home / ".huaweicloud" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text(f"[basic]\nak = file-ak\nsk = {FILE_SK}\n")
    return path


@pytest.mark.parametrize(
    ("env", "profile", "expected"),
    [
        ({}, False, "ECS instance metadata (http://169.254.169.254)"),
        ({"HUAWEICLOUD_SDK_AK": "env-ak"}, False, None),  # half a pair is a mistake
        (ENV, False, "AK/SK (access key env-ak)"),
        (
            {**ENV, "HUAWEICLOUD_SDK_SECURITY_TOKEN": "t"},
            False,
            "temporary AK/SK (access key env-ak)",
        ),
        ({}, True, "profile file {path} (AK/SK, access key file-ak)"),
        (ENV, True, "AK/SK (access key env-ak)"),  # the environment comes first
        ({"HUAWEICLOUD_SDK_AK": "env-ak"}, True, "profile file {path} (AK/SK, access key file-ak)"),
        ({**OIDC, **ENV, **POD}, True, OIDC_CHOSEN),  # workload identity comes first
        ({**ENV, **POD}, True, "AK/SK (access key env-ak)"),
        (POD, True, "profile file {path} (AK/SK, access key file-ak)"),
        (POD, False, POD_CHOSEN),  # pod identity comes last
    ],
    ids=[
        "nothing",
        "env-half",
        "env",
        "env-temporary",
        "profile",
        "env-before-profile",
        "env-incomplete",
        "oidc-first",
        "env-before-pod",
        "profile-before-pod",
        "pod-last",
    ],
)
def test_chain_order(home: Path, env: dict[str, str], profile: bool, expected: str | None) -> None:
    path = with_profile(home) if profile else home / ".huaweicloud" / "credentials"
    environ = {**env, "HOME": str(home)}
    if expected is None:
        with pytest.raises(ConfigError) as caught:
            parse_config(TEXT, "c.yaml", environ)
        [problem] = caught.value.problems
        assert problem.key == "targets[0].auth"
        assert "not set or empty" in problem.message and str(path) in problem.message
        return
    target = parse_config(TEXT, "c.yaml", environ).targets[0]
    assert describe_credentials(target) == expected.format(path=path)
    if expected.startswith("profile"):
        assert target.auth == ProfileAuth(str(path), "file-ak", Secret(FILE_SK))
    elif expected.startswith(("AK/SK", "temporary")):
        assert isinstance(target.auth, AkSkAuth) and target.auth.access_key == "env-ak"


def test_the_credentials_file_variable_is_honoured(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "custom"
    path.write_text(f"[basic]\nak = custom-ak\nsk = {FILE_SK}\n")
    environ = {"HOME": str(home), "HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(path)}
    target = parse_config(TEXT, "c.yaml", environ).targets[0]
    assert target.auth == ProfileAuth(str(path), "custom-ak", Secret(FILE_SK))


async def test_the_choice_is_logged_without_secrets(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with_profile(home)
    target = parse_config(TEXT, "c.yaml", {"HOME": str(home)}).targets[0]
    caplog.set_level(logging.INFO, logger="exporter.auth")
    async with aiohttp.ClientSession() as session:
        credentials_for(target, session)
    [record] = [r for r in caplog.records if r.getMessage() == "credentials chosen"]
    fields = record.__dict__["fields"]
    assert fields == {"target": "a", "credentials": describe_credentials(target)}
    assert FILE_SK not in caplog.text + str(record.__dict__)


def test_the_chain_never_probes_the_network(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a config without ``auth`` opens no socket (so never 169.254.169.254)."""
    opened: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        opened.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    for env in ({}, dict(os.environ, HOME=str(home)), ENV):
        with contextlib.suppress(ConfigError):
            parse_config(TEXT, "c.yaml", {**env, "HOME": str(home)})
    assert opened == []
