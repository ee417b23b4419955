"""``/-/config``: the effective configuration as YAML, with every secret redacted, behind the
same basic auth as the other endpoints."""

from __future__ import annotations

import dataclasses
from base64 import b64encode
from pathlib import Path

import aiohttp
import bcrypt
import yaml

from exporter.config import (
    AkSkAuth,
    AssumeAgencyAuth,
    Config,
    PasswordAuth,
    ProfileAuth,
    WorkloadIdentityAuth,
    load_config,
)
from exporter.config.web import WebConfig
from exporter.configview import REDACTED, config_yaml
from exporter.secret import Secret
from exporter.web import create_app
from tests.conftest import ACCESS_KEY, SECRET_KEY, make_target
from tests.exporting import serve_app

TOKEN = "security-token-value-0123456789"
PASSWORD = "iam-password-value-9876543210"
WEB_PASSWORD = "scrape-pass"
HASH = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(rounds=4))


def every_auth(endpoint: str) -> Config:
    temporary = AkSkAuth(ACCESS_KEY, Secret(SECRET_KEY), Secret(TOKEN))
    auths = {
        "aksk": temporary,
        "password": PasswordAuth("bob", Secret(PASSWORD), "acme", "https://iam.example.com"),
        "profile": ProfileAuth("/etc/hw/credentials", ACCESS_KEY, Secret(SECRET_KEY)),
        "oidc": WorkloadIdentityAuth("urn:p", "urn:a", "/var/run/token", "https://sts.example"),
        "agency": AssumeAgencyAuth(temporary, "ops", "https://iam.example.com", "other"),
    }
    return Config(
        targets=tuple(make_target(name, endpoint, auth=auth) for name, auth in auths.items()),
        source="<test>",
    )


def test_every_target_and_auth_type_is_shown_with_no_secret() -> None:
    config = every_auth("http://127.0.0.1:1")
    text = config_yaml(config, WebConfig(users={"prometheus": HASH}))

    for secret in (SECRET_KEY, TOKEN, PASSWORD, HASH.decode(), WEB_PASSWORD):
        assert secret not in text
    shown = yaml.safe_load(text)
    targets = {target["name"]: target for target in shown["targets"]}
    assert targets["aksk"]["auth"] == {
        "type": "aksk",
        "access_key": ACCESS_KEY,
        "secret_key": REDACTED,
        "security_token": REDACTED,
    }
    assert targets["password"]["auth"]["password"] == REDACTED
    assert targets["password"]["auth"]["username"] == "bob"
    assert targets["profile"]["auth"]["type"] == "profile"
    assert targets["oidc"]["auth"]["id_token_file"] == "/var/run/token"
    assert targets["agency"]["auth"]["assume_agency"]["agency_name"] == "ops"
    assert targets["agency"]["auth"]["secret_key"] == REDACTED
    resolved = targets["aksk"]
    assert resolved["poll_interval"] == "1m" and resolved["timeout"] == "5s"
    assert resolved["iam_endpoint"] == "https://iam.cn-north-4.myhuaweicloud.com"
    assert resolved["sources"]["cloud_eye"] == {"enabled": True, "max_age": "5m"}
    assert shown["web_config"]["basic_auth_users"] == {"prometheus": REDACTED}


def test_a_new_secret_field_would_be_redacted_too() -> None:
    """Anything in an auth section that is not plain text (a `Secret`) is never shown."""
    for target in every_auth("http://127.0.0.1:1").targets:
        auth = target.auth.base if isinstance(target.auth, AssumeAgencyAuth) else target.auth
        secrets = [
            getattr(auth, f.name)
            for f in dataclasses.fields(auth)
            if isinstance(getattr(auth, f.name), Secret)
        ]
        text = config_yaml(Config(targets=(target,), source="<test>"))
        assert all(secret.reveal() not in text for secret in secrets)


def test_a_config_file_with_a_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "sk").write_text(SECRET_KEY + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n"
        "  - name: prod\n"
        "    region: cn-north-4\n"
        '    project_id: "0123456789abcdef0123456789abcdef"\n'
        "    auth:\n"
        f"      access_key: {ACCESS_KEY}\n"
        "      secret_key_file: sk\n"
        f"      security_token: {TOKEN}\n"
        "    sources: {queues: false}\n"
    )
    text = config_yaml(load_config(path))

    assert SECRET_KEY not in text and TOKEN not in text
    target = yaml.safe_load(text)["targets"][0]
    assert target["endpoint"] == "https://dli.cn-north-4.myhuaweicloud.com"
    assert target["ces_endpoint"] == "https://ces.cn-north-4.myhuaweicloud.com"
    assert target["sources"]["queues"] is False


async def test_the_config_page_needs_the_same_credentials_as_the_others() -> None:
    config = every_auth("http://127.0.0.1:1")
    app = create_app(config, web_config=WebConfig(users={"prometheus": HASH}))
    async with serve_app(app) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/-/config") as response:
            refused = response.status
        login = {
            "Authorization": "Basic " + b64encode(f"prometheus:{WEB_PASSWORD}".encode()).decode()
        }
        async with session.get(f"{url}/-/config", headers=login) as response:
            status, kind, text = response.status, response.content_type, await response.text()
        async with session.get(url, headers=login) as response:
            page = await response.text()

    assert refused == 401
    assert status == 200 and kind == "text/plain"
    assert [t["name"] for t in yaml.safe_load(text)["targets"]] == [
        "aksk",
        "password",
        "profile",
        "oidc",
        "agency",
    ]
    for secret in (SECRET_KEY, TOKEN, PASSWORD, HASH.decode()):
        assert secret not in text
        assert secret not in page
    assert 'href="-/config"' in page
