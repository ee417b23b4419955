"""Tests for exporter.config: good and bad config tables, env expansion, secrets, the example."""

from __future__ import annotations

import ssl
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trustme

from exporter.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    MAX_CA_FILE_SIZE,
    MAX_CONFIG_FILE_SIZE,
    MAX_SECRET_FILE_SIZE,
    AkSkAuth,
    Config,
    ConfigError,
    ConfigProblem,
    Filters,
    MetadataAuth,
    MetricOptions,
    PasswordAuth,
    TargetConfig,
    TlsClientConfig,
    load_config,
    parse_config,
    parse_duration,
)
from exporter.secret import Secret

REPO = Path(__file__).resolve().parent.parent
ENV_SK = "env-sk-VERY-SECRET"
ENV = {"HUAWEICLOUD_SDK_AK": "env-ak", "HUAWEICLOUD_SDK_SK": ENV_SK}

# A minimal valid target, used as the base of the tables below.
TARGET = "name: t\n    region: cn-north-4\n    project_id: p1\n"


def parse(text: str, env: dict[str, str] | None = None, **kwargs: Any) -> Config:
    return parse_config(textwrap.dedent(text), "test.yaml", ENV if env is None else env, **kwargs)


def problems_of(text: str, env: dict[str, str] | None = None, **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        parse(text, env, **kwargs)
    return list(info.value.problems)


def one_target(body: str, top: str = "") -> str:
    """A config with ``top`` keys and one target made of TARGET plus ``body`` (4-space indented)."""
    return f"{top}targets:\n  - {TARGET}" + textwrap.indent(textwrap.dedent(body), "    ")


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1y", 365 * 86400.0),
        ("1h0m5s250ms", 3605.25),
        ("0", 0.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration_good(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "30", "1.5s", "s", "5 m", " 5m", "5m ", "-5s", "30sec", "1s1m", "5m5m", "1H", "٣s", "ms"],
)
def test_parse_duration_bad(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


# --------------------------------------------------------------------------- good configs

GOOD: list[tuple[str, str, dict[str, Any]]] = [
    (
        "minimal",
        one_target(""),
        {
            "name": "t",
            "region": "cn-north-4",
            "project_id": "p1",
            "endpoint": "https://dli.cn-north-4.myhuaweicloud.com",
            "auth": AkSkAuth("env-ak", Secret(ENV_SK)),
            "poll_interval": DEFAULT_POLL_INTERVAL,
            "timeout": DEFAULT_TIMEOUT,
            "concurrency": DEFAULT_CONCURRENCY,
            "rate_limit": DEFAULT_RATE_LIMIT,
            "filters": Filters(),
        },
    ),
    (
        "top-level defaults apply",
        one_target("", "poll_interval: 2m\ntimeout: 500ms\nconcurrency: 3\nrate_limit: 2.5\n"),
        {"poll_interval": 120.0, "timeout": 0.5, "concurrency": 3, "rate_limit": 2.5},
    ),
    (
        "target overrides top level",
        one_target(
            "poll_interval: 1m30s\ntimeout: 20s\nconcurrency: 1\nrate_limit: 100\n",
            "poll_interval: 2m\ntimeout: 5s\nconcurrency: 3\nrate_limit: 2.5\n",
        ),
        {"poll_interval": 90.0, "timeout": 20.0, "concurrency": 1, "rate_limit": 100.0},
    ),
    (
        "integer rate_limit becomes float",
        one_target("rate_limit: 7\n"),
        {"rate_limit": 7.0},
    ),
    (
        "endpoint trailing slash removed",
        one_target("endpoint: http://127.0.0.1:8080/\n"),
        {"endpoint": "http://127.0.0.1:8080"},
    ),
    (
        "endpoint with path prefix",
        one_target("endpoint: https://proxy.example.com/dli/\n"),
        {"endpoint": "https://proxy.example.com/dli"},
    ),
    (
        "explicit aksk with security token",
        one_target(
            """\
            auth:
              type: aksk
              access_key: AK1
              secret_key: SK1
              security_token: TOKEN1
            """
        ),
        {"auth": AkSkAuth("AK1", Secret("SK1"), Secret("TOKEN1"))},
    ),
    (
        "aksk without type",
        one_target("auth: {access_key: AK1, secret_key: SK1}\n"),
        {"auth": AkSkAuth("AK1", Secret("SK1"), None)},
    ),
    (
        "password auth with default iam endpoint",
        one_target(
            """\
            auth:
              type: password
              username: bob
              password: pw
              domain_name: acme
            """
        ),
        {
            "auth": PasswordAuth(
                "bob", Secret("pw"), "acme", "https://iam.cn-north-4.myhuaweicloud.com"
            )
        },
    ),
    (
        "password auth with iam endpoint",
        one_target(
            "auth: {type: password, username: bob, password: pw, domain_name: acme,"
            " iam_endpoint: 'https://iam.example.com/'}\n"
        ),
        {"auth": PasswordAuth("bob", Secret("pw"), "acme", "https://iam.example.com")},
    ),
    (
        "filters",
        one_target(
            """\
            filters:
              job_types:
                [flink_sql_job, flink_opensource_sql_job, flink_jar_job, flink_sql_edge_job]
              queue_names: [q1, q2]
              tags: [k=v]
            """
        ),
        {
            "filters": Filters(
                job_types=(
                    "flink_sql_job",
                    "flink_opensource_sql_job",
                    "flink_jar_job",
                    "flink_sql_edge_job",
                ),
                queue_names=("q1", "q2"),
                tags=("k=v",),
            )
        },
    ),
    (
        "empty filters and null sections",
        one_target("filters: {}\nauth:\nendpoint:\n"),
        {"filters": Filters(), "auth": AkSkAuth("env-ak", Secret(ENV_SK))},
    ),
    (
        "null filter lists",
        one_target("filters: {job_types: , tags: []}\n"),
        {"filters": Filters()},
    ),
    (
        "unicode name",
        "targets:\n  - {name: 'prod 北京', region: cn-north-4, project_id: p}\n",
        {"name": "prod 北京"},
    ),
    (
        "yaml anchors and merge keys",
        """\
        targets:
          - &base {name: a, region: cn-north-4, project_id: p, timeout: 3s}
          - {<<: *base, name: b}
        """,
        {"timeout": 3.0},
    ),
    (
        "timeout just below poll_interval",
        one_target("poll_interval: 1s\ntimeout: 999ms\n"),
        {"poll_interval": 1.0, "timeout": 0.999},
    ),
]


@pytest.mark.parametrize(("text", "expected"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_configs(text: str, expected: dict[str, Any]) -> None:
    config = parse(text)
    target = config.targets[0]
    assert {k: getattr(target, k) for k in expected} == expected
    assert config.source == "test.yaml"


def test_defaults_build_whole_target() -> None:
    config = parse(one_target(""))
    assert config == Config(
        targets=(
            TargetConfig(
                name="t",
                region="cn-north-4",
                project_id="p1",
                endpoint="https://dli.cn-north-4.myhuaweicloud.com",
                auth=AkSkAuth("env-ak", Secret(ENV_SK), None),
                poll_interval=60.0,
                timeout=10.0,
                concurrency=8,
                rate_limit=20.0,
                filters=Filters(),
            ),
        ),
        source="test.yaml",
    )
    assert isinstance(config.targets[0].poll_interval, float)


def test_env_auth_uses_security_token() -> None:
    env = {**ENV, "HUAWEICLOUD_SDK_SECURITY_TOKEN": "tok"}
    assert parse(one_target(""), env).targets[0].auth == AkSkAuth(
        "env-ak", Secret(ENV_SK), Secret("tok")
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUAWEICLOUD_SDK_AK": "ak"}, "environment HUAWEICLOUD_SDK_SK is not set or empty"),
        ({"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": ""}, "HUAWEICLOUD_SDK_SK is not set"),
    ],
)
def test_missing_auth_and_env(env: dict[str, str], message: str) -> None:
    problems = problems_of(one_target(""), env)
    assert [p.key for p in problems] == ["targets[0].auth"]
    assert message in problems[0].message


def test_nothing_set_falls_back_to_the_metadata_service_as_the_sdk_does(tmp_path: Path) -> None:
    """No auth, no AK/SK variables, no profile file, not in a pod: the ECS metadata service."""
    env = {"HOME": str(tmp_path)}  # no ~/.huaweicloud/credentials there
    (target,) = parse(one_target(""), env).targets
    assert target.auth == MetadataAuth()


def test_several_targets_keep_order_and_inherit() -> None:
    config = parse(
        """\
        poll_interval: 15s
        targets:
          - {name: a, region: cn-north-4, project_id: p}
          - {name: b, region: ap-southeast-1, project_id: q, poll_interval: 20s}
        """
    )
    assert [(t.name, t.region, t.poll_interval) for t in config.targets] == [
        ("a", "cn-north-4", 15.0),
        ("b", "ap-southeast-1", 20.0),
    ]
    assert config.targets[1].endpoint == "https://dli.ap-southeast-1.myhuaweicloud.com"


def test_dataclasses_are_frozen() -> None:
    target = parse(one_target("")).targets[0]
    with pytest.raises(AttributeError):
        target.name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- bad configs

T0 = "targets[0]"


def auth(body: str) -> str:
    """One target whose auth mapping is ``{body}``."""
    return one_target(f"auth: {{{body}}}\n")


def replaced(old: str, new: str) -> str:
    """The minimal one-target config with ``old`` replaced by ``new``."""
    return one_target("").replace(old, new)


PW = "type: password, username: u, password: p, domain_name: d"

# (id, yaml, exact problem key, message fragment); each config has exactly one problem.
BAD: list[tuple[str, str, str, str]] = [
    ("empty file", "", "", "file is empty"),
    ("only comments", "# nothing\n", "", "file is empty"),
    ("top level list", "- a\n", "", "top level must be a mapping, not list"),
    ("syntax error line", "targets:\n  - name: [a\n  - b: c\n", "", "line 3"),
    ("tab indentation", "targets:\n\t- a\n", "", "invalid YAML at line 2"),
    ("two documents", "targets: []\n---\ntargets: []\n", "", "expected a single document"),
    ("custom tag", "targets: !env X\n", "", "could not determine a constructor"),
    (
        "duplicate top key",
        one_target("", "poll_interval: 1m\n") + "poll_interval: 1m\n",
        "poll_interval",
        "duplicate key (line 6)",
    ),
    ("duplicate nested key", one_target("region: cn-east-3\n"), f"{T0}.region", "duplicate key"),
    ("missing targets", "poll_interval: 30s\n", "targets", "is required"),
    ("targets not a list", "targets: {name: a}\n", "targets", "must be a list, not mapping"),
    ("targets empty", "targets: []\n", "targets", "at least one target"),
    ("target not a mapping", "targets: [a]\n", T0, "must be a mapping, not string"),
    (
        "unknown top key",
        one_target("", "pol_interval: 1m\n"),
        "pol_interval",
        'mean "poll_interval"',
    ),
    ("unknown top key no hint", one_target("", "zzz: 1\n"), "zzz", "unknown key"),
    ("target key at top", one_target("", "region: x\n"), "region", "under an entry of targets"),
    ("unknown target key", one_target("projectid: x\n"), f"{T0}.projectid", 'mean "project_id"'),
    ("auth key on target", one_target("secret_key: x\n"), f"{T0}.secret_key", "belongs under auth"),
    ("filter key on target", one_target("tags: []\n"), f"{T0}.tags", "belongs under filters"),
    ("non-string key", one_target("1: x\n"), f"{T0}.1", "keys must be strings, not integer"),
    ("missing name", "targets: [{region: cn-north-4, project_id: p}]\n", f"{T0}.name", "required"),
    ("empty name", replaced("name: t", "name: ''"), f"{T0}.name", "must not be empty"),
    ("blank name", replaced("name: t", "name: '  '"), f"{T0}.name", "must not be empty"),
    ("numeric name", replaced("name: t", "name: 12"), f"{T0}.name", "not integer (quote it)"),
    ("boolean name", replaced("name: t", "name: yes"), f"{T0}.name", "not boolean"),
    (
        "duplicate target name",
        "targets:\n  - {name: a, region: cn-north-4, project_id: p}\n"
        "  - {name: a, region: cn-north-4, project_id: q}\n",
        "targets[1].name",
        "duplicate target name 'a' (also targets[0])",
    ),
    ("missing region", "targets: [{name: a, project_id: p}]\n", f"{T0}.region", "is required"),
    ("bad region", replaced("cn-north-4", "CN North"), f"{T0}.region", "lowercase"),
    (
        "project_id missing with password auth",
        "targets: [{name: a, region: x, auth: {type: password, username: u, password: p, "
        "domain_name: d}}]\n",
        f"{T0}.project_id",
        "is required with auth type password",
    ),
    ("empty project_id", replaced("project_id: p1", "project_id: ''"), f"{T0}.project_id", ""),
    ("numeric project_id", replaced("p1", "0123"), f"{T0}.project_id", "quote it"),
    ("endpoint scheme", one_target("endpoint: ftp://x.com\n"), f"{T0}.endpoint", "http:// or"),
    ("endpoint no host", one_target("endpoint: 'https://'\n"), f"{T0}.endpoint", "with a host"),
    (
        "endpoint bad port",
        one_target("endpoint: 'http://h:99999'\n"),
        f"{T0}.endpoint",
        "valid URL",
    ),
    ("endpoint creds", one_target("endpoint: 'https://u:pw@h'\n"), f"{T0}.endpoint", "credentials"),
    ("endpoint query", one_target("endpoint: 'https://h/?a=1'\n"), f"{T0}.endpoint", "query"),
    ("endpoint not string", one_target("endpoint: [a]\n"), f"{T0}.endpoint", "string, not list"),
    (
        "duration number",
        one_target("poll_interval: 30\n"),
        f"{T0}.poll_interval",
        'must be a duration string like "30s", not integer',
    ),
    ("duration garbage", one_target("timeout: 3x\n"), f"{T0}.timeout", "invalid duration '3x'"),
    ("top duration garbage", one_target("", "poll_interval: soon\n"), "poll_interval", "invalid"),
    (
        "poll_interval too small",
        one_target("poll_interval: 999ms\ntimeout: 1ms\n"),
        f"{T0}.poll_interval",
        "must be at least 1s, not 999ms",
    ),
    ("timeout zero", one_target("timeout: 0s\n"), f"{T0}.timeout", "must be greater than 0"),
    (
        "timeout equals poll",
        one_target("poll_interval: 10s\ntimeout: 10s\n"),
        f"{T0}.timeout",
        "timeout (10s) must be shorter than poll_interval (10s)",
    ),
    (
        "timeout above poll",
        one_target("timeout: 2m\n"),
        f"{T0}.timeout",
        "timeout (120s) must be shorter than poll_interval (60s)",
    ),
    (
        "timeout above poll, fractions",
        one_target("poll_interval: 1s\ntimeout: 1s500ms\n"),
        f"{T0}.timeout",
        "timeout (1.5s) must be shorter than poll_interval (1s)",
    ),
    (
        "top timeout above top poll",
        one_target("", "poll_interval: 5s\ntimeout: 5s\n"),
        "timeout",
        "must be shorter than poll_interval (5s)",
    ),
    ("concurrency zero", one_target("concurrency: 0\n"), f"{T0}.concurrency", "at least 1"),
    ("concurrency bool", one_target("concurrency: on\n"), f"{T0}.concurrency", "not boolean"),
    ("concurrency float", one_target("concurrency: 2.0\n"), f"{T0}.concurrency", "not number"),
    ("concurrency string", one_target("concurrency: '4'\n"), f"{T0}.concurrency", "not string"),
    ("rate_limit zero", one_target("rate_limit: 0\n"), f"{T0}.rate_limit", "greater than 0"),
    ("rate_limit negative", one_target("", "rate_limit: -1.5\n"), "rate_limit", "greater than 0"),
    ("rate_limit inf", one_target("rate_limit: .inf\n"), f"{T0}.rate_limit", "finite"),
    ("rate_limit nan", one_target("rate_limit: .nan\n"), f"{T0}.rate_limit", "finite"),
    ("rate_limit bool", one_target("rate_limit: false\n"), f"{T0}.rate_limit", "not boolean"),
    ("filters not mapping", one_target("filters: [a]\n"), f"{T0}.filters", "mapping, not list"),
    (
        "unknown filter",
        one_target("filters: {job_type: [flink_sql_job]}\n"),
        f"{T0}.filters.job_type",
        'did you mean "job_types"',
    ),
    (
        "filter list a string",
        one_target("filters: {job_types: flink_sql_job}\n"),
        f"{T0}.filters.job_types",
        "must be a list of strings, not string",
    ),
    (
        "filter item not string",
        one_target("filters: {queue_names: [q, 3]}\n"),
        f"{T0}.filters.queue_names[1]",
        "must be a string, not integer",
    ),
    (
        "filter item empty",
        one_target("filters: {tags: ['']}\n"),
        f"{T0}.filters.tags[0]",
        "must not be empty",
    ),
    (
        "unknown job type hint",
        one_target("filters: {job_types: [flink_sql_job, flink_jar]}\n"),
        f"{T0}.filters.job_types[1]",
        "unknown job type 'flink_jar' (did you mean \"flink_jar_job\"?)",
    ),
    (
        "unknown job type",
        one_target("filters: {job_types: [spark]}\n"),
        f"{T0}.filters.job_types[0]",
        "expected one of flink_jar_job, flink_opensource_sql_job",
    ),
    ("auth not mapping", one_target("auth: aksk\n"), f"{T0}.auth", "mapping, not string"),
    ("auth bad type", auth("type: token"), f"{T0}.auth.type", 'must be "aksk" or "password"'),
    ("auth type not string", auth("type: 1"), f"{T0}.auth.type", "string, not integer"),
    ("aksk missing access_key", auth("secret_key: s"), f"{T0}.auth.access_key", "is required"),
    (
        "aksk missing secret",
        auth("access_key: a"),
        f"{T0}.auth.secret_key",
        "is required (or secret_key_file)",
    ),
    ("aksk null secret", auth("access_key: a, secret_key: "), f"{T0}.auth.secret_key", "required"),
    (
        "aksk both secret forms",
        auth("access_key: a, secret_key: s, secret_key_file: /f"),
        f"{T0}.auth.secret_key",
        "set only one of secret_key and secret_key_file",
    ),
    (
        "aksk both token forms",
        auth("access_key: a, secret_key: s, security_token: t, security_token_file: /f"),
        f"{T0}.auth.security_token",
        "set only one of security_token and security_token_file",
    ),
    (
        "aksk secret not string",
        auth("access_key: a, secret_key: 123"),
        f"{T0}.auth.secret_key",
        "must be a string, not integer",
    ),
    (
        "aksk secret empty",
        auth("access_key: a, secret_key: ''"),
        f"{T0}.auth.secret_key",
        "must not be empty",
    ),
    (
        "aksk typo",
        auth("access_key: a, secret_key: s, secrt_key_file: f"),
        f"{T0}.auth.secrt_key_file",
        'did you mean "secret_key_file"',
    ),
    (
        "password key with aksk",
        auth("access_key: a, secret_key: s, domain_name: d"),
        f"{T0}.auth.domain_name",
        "set type: password to use it",
    ),
    (
        "password missing domain",
        auth("type: password, username: u, password: p"),
        f"{T0}.auth.domain_name",
        "is required",
    ),
    (
        "password missing password",
        auth("type: password, username: u, domain_name: d"),
        f"{T0}.auth.password",
        "is required (or password_file)",
    ),
    (
        "password with aksk key",
        auth(f"{PW}, access_key: a"),
        f"{T0}.auth.access_key",
        "only for type: aksk",
    ),
    (
        "password bad iam endpoint",
        auth(f"{PW}, iam_endpoint: iam.example.com"),
        f"{T0}.auth.iam_endpoint",
        "must be an http:// or https:// URL",
    ),
    (
        "missing secret file",
        auth("access_key: a, secret_key_file: /nonexistent/sk"),
        f"{T0}.auth.secret_key_file",
        "cannot read '/nonexistent/sk': No such file or directory",
    ),
    (
        "unset variable",
        replaced("project_id: p1", "project_id: ${NOPE}"),
        f"{T0}.project_id",
        "environment variable NOPE is not set",
    ),
    (
        "bad reference",
        replaced("region: cn-north-4", "region: '${1X}'"),
        f"{T0}.region",
        "invalid ${...} reference",
    ),
    (
        "unterminated reference",
        replaced("region: cn-north-4", "region: '${X'"),
        f"{T0}.region",
        "invalid ${...} reference",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_configs(text: str, key: str, fragment: str) -> None:
    problems = problems_of(text)
    assert [(p.key, fragment in p.message) for p in problems] == [(key, True)], problems
    assert all(p.source == "test.yaml" for p in problems)


# --------------------------------------------------------------------------- timeout vs interval

#: (top poll_interval, top timeout, target poll_interval, target timeout); None = not set.
_TIMING = [
    (top_poll, top_timeout, poll, timeout)
    for top_poll in (None, "5s")
    for top_timeout in (None, "7s")
    for poll in (None, "3s", "30s")
    for timeout in (None, "2s", "40s")
]


def _timing_config(top_poll: str | None, top_timeout: str | None, *target: str | None) -> str:
    poll, timeout = target
    top = "".join(
        f"{key}: {value}\n"
        for key, value in (("poll_interval", top_poll), ("timeout", top_timeout))
        if value
    )
    body = "".join(
        f"{key}: {value}\n"
        for key, value in (("poll_interval", poll), ("timeout", timeout))
        if value
    )
    return one_target(body, top)


def _seconds(text: str | None) -> float | None:
    return None if text is None else parse_duration(text)


@pytest.mark.parametrize(("top_poll", "top_timeout", "poll", "timeout"), _TIMING)
def test_timeout_follows_prometheus_scrape_timeout_rule(
    top_poll: str | None, top_timeout: str | None, poll: str | None, timeout: str | None
) -> None:
    """An unset timeout is min(10s, the target's interval); only a set one can be too long."""
    text = _timing_config(top_poll, top_timeout, poll, timeout)
    interval = _seconds(poll) or _seconds(top_poll) or 60.0
    explicit = _seconds(timeout) or _seconds(top_timeout)
    if explicit is not None and explicit >= interval:
        where = f"{T0}.timeout" if timeout else "timeout"
        problems = problems_of(text)
        assert [p.key for p in problems] == [where], problems
        assert "of target 't'" in problems[0].message
        assert f"poll_interval ({interval:g}s)" in problems[0].message
        return
    target = parse(text).targets[0]
    assert target.poll_interval == interval
    assert target.timeout == (explicit if explicit is not None else min(10.0, interval))


def test_a_short_interval_needs_no_timeout() -> None:
    target = parse(one_target("poll_interval: 5s\n")).targets[0]
    assert (target.poll_interval, target.timeout) == (5.0, 5.0)


def test_top_level_values_that_every_target_overrides_are_not_checked() -> None:
    text = one_target("timeout: 2s\n", "poll_interval: 3s\ntimeout: 5s\n")
    target = parse(text).targets[0]
    assert (target.poll_interval, target.timeout) == (3.0, 2.0)


def test_an_inherited_timeout_is_reported_once_per_target_it_is_too_long_for() -> None:
    text = (
        "timeout: 8s\ntargets:\n"
        "  - {name: fast, region: cn-north-4, project_id: p1, poll_interval: 5s}\n"
        "  - {name: slow, region: cn-north-4, project_id: p2, poll_interval: 30s}\n"
        "  - {name: faster, region: cn-north-4, project_id: p3, poll_interval: 8s}\n"
    )
    problems = problems_of(text)
    assert [str(p) for p in problems] == [
        "test.yaml: timeout: timeout (8s) must be shorter than poll_interval (5s) of target "
        "'fast' (targets[0]), which inherits this timeout",
        "test.yaml: timeout: timeout (8s) must be shorter than poll_interval (8s) of target "
        "'faster' (targets[2]), which inherits this timeout",
    ]


def test_all_problems_reported_at_once() -> None:
    text = """\
    poll_interval: 30
    targets:
      - name: a
        region: cn-north-4
        project_id: p
        concurency: 2
        auth: {access_key: a, secret_key: "${MISSING_SK}"}
      - name: a
        project_id: 7
        filters: {job_types: [flink_sql]}
      - 42
    """
    problems = problems_of(text)
    assert [p.key for p in problems] == [
        "targets[0].auth.secret_key",
        "poll_interval",
        "targets[0].concurency",
        "targets[1].name",
        "targets[1].region",
        "targets[1].project_id",
        "targets[1].filters.job_types[0]",
        "targets[2]",
    ]


def test_duplicate_keys_reported_with_lines_and_rest_still_validated() -> None:
    problems = problems_of("timeout: 1s\ntimeout: 2s\ntargets:\n  - {name: a, name: b}\n")
    assert [(p.key, p.message) for p in problems[:2]] == [
        ("timeout", "duplicate key (line 2)"),
        ("targets[0].name", "duplicate key (line 4)"),
    ]
    assert {p.key for p in problems[2:]} == {"targets[0].region"}  # project_id is optional


def test_config_error_str_has_one_line_per_problem() -> None:
    with pytest.raises(ConfigError) as info:
        parse("zzz: 1\ntargets: []\n")
    assert str(info.value).splitlines() == [
        "test.yaml: zzz: unknown key",
        "test.yaml: targets: must list at least one target",
    ]
    with pytest.raises(ConfigError) as info:
        parse("")
    assert str(info.value) == ("test.yaml: file is empty (expected a mapping with a targets list)")


# --------------------------------------------------------------------------- ${VAR} expansion


def test_env_expansion_in_strings() -> None:
    env = {**ENV, "REGION": "cn-east-3", "PID": "abc", "SUFFIX": "1"}
    config = parse(
        """\
        targets:
          - name: "t-${SUFFIX}-${SUFFIX}"
            region: ${REGION}
            project_id: "${PID}"
            filters: {queue_names: ["q-${SUFFIX}", "$${SUFFIX}", "$$x", "$SUFFIX"]}
        """,
        env,
    )
    target = config.targets[0]
    assert (target.name, target.region, target.project_id) == ("t-1-1", "cn-east-3", "abc")
    assert target.filters.queue_names == ("q-1", "${SUFFIX}", "$$x", "$SUFFIX")


def test_env_values_are_not_expanded_again() -> None:
    env = {**ENV, "A": "${B}", "B": "nope"}
    config = parse(one_target("filters: {tags: ['${A}']}\n"), env)
    assert config.targets[0].filters.tags == ("${B}",)


def test_env_expansion_only_in_string_scalars() -> None:
    # An expanded value stays a string: it never turns into a number.
    problems = problems_of(one_target("concurrency: ${N}\n"), {**ENV, "N": "4"})
    assert [(p.key, p.message) for p in problems] == [
        ("targets[0].concurrency", "must be an integer, not string")
    ]


def test_env_expansion_empty_value_is_set() -> None:
    problems = problems_of(one_target("endpoint: '${E}'\n"), {**ENV, "E": ""})
    assert [(p.key, p.message) for p in problems] == [("targets[0].endpoint", "must not be empty")]


def test_env_expansion_every_unset_variable_reported() -> None:
    problems = problems_of(
        one_target("auth: {access_key: '${AK_X}', secret_key: '${SK_X}${SK_Y}'}\n")
    )
    assert [(p.key, p.message) for p in problems] == [
        ("targets[0].auth.access_key", "environment variable AK_X is not set"),
        ("targets[0].auth.secret_key", "environment variable SK_X is not set"),
        ("targets[0].auth.secret_key", "environment variable SK_Y is not set"),
    ]


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "os-ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "os-sk")
    monkeypatch.setenv("DLI_TEST_REGION", "la-south-2")
    text = "targets: [{name: a, region: '${DLI_TEST_REGION}', project_id: p}]\n"
    config = parse_config(text, "x.yaml")
    assert config.targets[0].region == "la-south-2"
    assert config.targets[0].auth == AkSkAuth("os-ak", Secret("os-sk"))


# --------------------------------------------------------------------------- *_file secrets


def test_secret_files_are_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "sk").write_text("file-sk\n")
    (tmp_path / "token").write_text("file-token \r\n")
    env = {**ENV, "SK_FILE": str(tmp_path / "sk")}
    config = parse(
        one_target(
            f"auth: {{access_key: a, secret_key_file: '${{SK_FILE}}',"
            f" security_token_file: '{tmp_path / 'token'}'}}\n"
        ),
        env,
    )
    assert config.targets[0].auth == AkSkAuth("a", Secret("file-sk"), Secret("file-token"))


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2\n")
    config = parse(
        one_target("auth: {type: password, username: u, password_file: pw, domain_name: d}\n"),
        base_dir=tmp_path,
    )
    auth = config.targets[0].auth
    assert isinstance(auth, PasswordAuth)
    assert auth.password.reveal() == "hunter2"


def test_relative_secret_file_resolves_against_config_dir(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "sk").write_text("rel-sk")
    config_file = tmp_path / "dli.yaml"
    config_file.write_text(one_target("auth: {access_key: a, secret_key_file: secrets/sk}\n"))
    config = load_config(config_file, ENV)
    assert config.targets[0].auth == AkSkAuth("a", Secret("rel-sk"))
    assert config.source == str(config_file)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "is empty"), (b" \n", "is empty"), (b"\xff\xfesk", "is not valid UTF-8")],
)
def test_bad_secret_file_content(tmp_path: Path, content: bytes, fragment: str) -> None:
    (tmp_path / "sk").write_bytes(content)
    problems = problems_of(
        one_target(f"auth: {{access_key: a, secret_key_file: '{tmp_path / 'sk'}'}}\n")
    )
    assert [p.key for p in problems] == ["targets[0].auth.secret_key_file"]
    assert fragment in problems[0].message
    assert str(tmp_path / "sk") in problems[0].message


def test_secret_file_is_a_directory(tmp_path: Path) -> None:
    problems = problems_of(one_target(f"auth: {{access_key: a, secret_key_file: '{tmp_path}'}}\n"))
    assert [p.key for p in problems] == ["targets[0].auth.secret_key_file"]
    assert f"cannot read '{tmp_path}'" in problems[0].message


# --------------------------------------------------------------------------- load_config


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == f"{path}: cannot read file: No such file or directory"


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"targets: \xff\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert [(p.key, p.message) for p in info.value.problems] == [("", "file is not valid UTF-8")]


def test_load_config_names_file_in_problems(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("targets: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), ENV)
    assert str(info.value) == f"{path}: targets: must list at least one target"


def test_example_config_loads(tmp_path: Path) -> None:
    sk_file = tmp_path / "analytics-sk"
    sk_file.write_text("example-file-sk\n")
    env = {
        "HUAWEICLOUD_SDK_AK": "example-ak",
        "HUAWEICLOUD_SDK_SK": "example-env-sk",
        "DLI_SK_FILE": str(sk_file),
    }
    config = load_config(REPO / "config.example.yaml", env)
    prod, analytics = config.targets
    assert prod.name == "prod-bj4"
    assert prod.auth == AkSkAuth("example-ak", Secret("example-env-sk"))
    assert (prod.poll_interval, prod.timeout, prod.concurrency) == (30.0, 10.0, 16)
    assert prod.filters.queue_names == ("prod_streaming",)
    assert analytics.name == "analytics-sh"
    assert analytics.auth == AkSkAuth("ANALYTICSACCESSKEY0001", Secret("example-file-sk"))
    assert (analytics.timeout, analytics.rate_limit, analytics.poll_interval) == (5.0, 5.5, 60.0)
    assert analytics.endpoint == "https://dli.cn-east-3.myhuaweicloud.com"


# --------------------------------------------------------------------------- secrets stay hidden


def test_repr_and_str_of_config_hide_secrets(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("FILE-PASSWORD-123")
    config = parse(
        """\
        targets:
          - {name: a, region: cn-north-4, project_id: p}
          - name: b
            region: cn-north-4
            project_id: p
            auth: {access_key: ak, secret_key: INLINE-SK-456, security_token: TOKEN-789}
          - name: c
            region: cn-north-4
            project_id: p
            auth: {type: password, username: u, password_file: pw, domain_name: d}
        """,
        base_dir=tmp_path,
    )
    for text in (repr(config), str(config), f"{config}"):
        for secret in (ENV_SK, "INLINE-SK-456", "TOKEN-789", "FILE-PASSWORD-123"):
            assert secret not in text
        assert "<redacted>" in text


def test_problems_never_contain_secret_values(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("FILE-PASSWORD-123")
    env = {**ENV, "SK": "ENV-SK-SECRET-1"}
    text = """\
    targets:
      - name: a
        region: cn-north-4
        project_id: p
        auth: {access_key: ak, secret_key: "${SK}", secret_key_file: /x, extra: "${SK}"}
      - name: b
        region: cn-north-4
        project_id: p
        timeout: 99m
        auth: {type: password, username: u, password_file: pw, domain_name: d, pasword: INLINE-PW}
      - name: c
        region: cn-north-4
        project_id: p
        auth: {access_key: ak, secret_key: [INLINE-LIST-SK]}
    """
    problems = problems_of(text, env, base_dir=tmp_path)
    assert [p.key for p in problems] == [
        "targets[0].auth.extra",
        "targets[0].auth.secret_key",
        "targets[1].auth.pasword",
        "targets[1].timeout",
        "targets[2].auth.secret_key",
    ]
    rendered = str(ConfigError(problems)) + repr(problems)
    for secret in ("ENV-SK-SECRET-1", "FILE-PASSWORD-123", "INLINE-PW", "INLINE-LIST-SK", ENV_SK):
        assert secret not in rendered


def test_yaml_error_does_not_echo_the_line() -> None:
    problems = problems_of("targets:\n  - auth: {secret_key: 'SYNTAX-SECRET\n")
    assert len(problems) == 1
    assert "SYNTAX-SECRET" not in str(problems[0])
    assert problems[0].message.startswith("invalid YAML at line")


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ("", MetricOptions()),
        ("metrics: {job_info_labels: false}", MetricOptions(job_info_labels=False)),
        ("metrics: {state_sets: current}", MetricOptions(state_sets="current")),
    ],
)
def test_metric_options(metrics: str, expected: MetricOptions) -> None:
    text = f"{metrics}\ntargets: [{{name: a, region: cn-north-4, project_id: p}}]\n"
    config = parse_config(text, "m.yaml", {"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk"})
    assert config.metrics == expected


@pytest.mark.parametrize(
    ("metrics", "key", "fragment"),
    [
        ("metrics: {state_sets: some}", "metrics.state_sets", "must be one of all, current"),
        ("metrics: {job_info_labels: 'no'}", "metrics.job_info_labels", "must be true or false"),
        ("metrics: {labels: false}", "metrics.labels", "unknown key"),
        ("metrics: [1]", "metrics", "must be a mapping"),
    ],
)
def test_bad_metric_options(metrics: str, key: str, fragment: str) -> None:
    text = f"{metrics}\ntargets: [{{name: a, region: cn-north-4, project_id: p}}]\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "m.yaml", {"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk"})
    problems = {(p.key, p.message) for p in caught.value.problems}
    assert any(k == key and fragment in m for k, m in problems), problems


# --------------------------------------------------------------------------- bounds

# (id, yaml, exact problem key, message fragment); each config has exactly one problem.
OUT_OF_BOUNDS: list[tuple[str, str, str, str]] = [
    ("poll 2d", one_target("poll_interval: 2d\n"), f"{T0}.poll_interval", "at most 1d, not 2d"),
    (
        "poll in years",
        one_target("poll_interval: 99999999999y\n"),
        f"{T0}.poll_interval",
        "must be at most 1d, not 99999999999y",
    ),
    ("top poll", one_target("", "poll_interval: 1d1s\n"), "poll_interval", "at most 1d"),
    ("timeout 11m", one_target("poll_interval: 1h\ntimeout: 11m\n"), f"{T0}.timeout", "most 10m"),
    (
        "timeout huge",
        one_target("timeout: 10000000000000000000000s\n"),
        f"{T0}.timeout",
        "must be at most 10m, not 10000000000000000000000s",
    ),
    (
        "duration with 400 digits",
        one_target(f"timeout: {'1' * 400}s\n"),
        f"{T0}.timeout",
        "invalid duration: longer than 32 characters",
    ),
    (
        "concurrency 1001",
        one_target("concurrency: 1001\n"),
        f"{T0}.concurrency",
        "must be at most 1000, not 1001",
    ),
    (
        "concurrency 10**30",
        one_target(f"concurrency: {10**30}\n"),
        f"{T0}.concurrency",
        f"must be at most 1000, not {10**30}",
    ),
    ("concurrency top", one_target("", "concurrency: 5000\n"), "concurrency", "at most 1000"),
    (
        "concurrency -10**30",
        one_target(f"concurrency: {-(10**30)}\n"),
        f"{T0}.concurrency",
        "must be at least 1",
    ),
    (
        "rate_limit 1e308",
        one_target("rate_limit: 1.0e+308\n"),
        f"{T0}.rate_limit",
        "must be at most 10000 per second, not 1e+308",
    ),
    (
        "rate_limit 10001",
        one_target("rate_limit: 10001\n"),
        f"{T0}.rate_limit",
        "at most 10000 per second",
    ),
    (
        "rate_limit a 99-digit integer",
        one_target(f"rate_limit: {'9' * 99}\n"),
        f"{T0}.rate_limit",
        "at most 10000 per second, not 9999999999",
    ),
    (
        "rate_limit 0x hex",
        one_target(f"rate_limit: 0x{'f' * 90}\n"),
        f"{T0}.rate_limit",
        "at most 10000 per second",
    ),
    (
        "rate_limit tiny",
        one_target("rate_limit: 1.0e-300\n"),
        f"{T0}.rate_limit",
        "must be at least 0.01 per second, not 1e-300",
    ),
    ("rate_limit top", one_target("", "rate_limit: 0.001\n"), "rate_limit", "at least 0.01"),
]


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [b[1:] for b in OUT_OF_BOUNDS],
    ids=[b[0] for b in OUT_OF_BOUNDS],
)
def test_numbers_out_of_bounds(text: str, key: str, fragment: str) -> None:
    problems = problems_of(text)
    assert [(p.key, fragment in p.message) for p in problems] == [(key, True)], problems
    assert all(len(p.message) < 200 for p in problems)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("poll_interval: 1d\ntimeout: 10m\n", {"poll_interval": 86400.0, "timeout": 600.0}),
        ("concurrency: 1000\n", {"concurrency": 1000}),
        ("rate_limit: 10000\n", {"rate_limit": 10000.0}),
        ("rate_limit: 0.01\n", {"rate_limit": 0.01}),
        ("poll_interval: 1s\ntimeout: 1ms\n", {"poll_interval": 1.0, "timeout": 0.001}),
    ],
)
def test_numbers_at_the_bounds(settings: str, expected: dict[str, Any]) -> None:
    for text in (one_target(settings), one_target("", settings)):
        target = parse(text).targets[0]
        assert {k: getattr(target, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("99999999999y", 99999999999 * 365 * 86400.0), ("1000000000000000000000s", 1e21)],
)
def test_parse_duration_large_is_exact_not_an_overflow(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_too_long() -> None:
    with pytest.raises(ValueError, match="invalid duration: longer than 32 characters"):
        parse_duration("1" * 5000 + "s")


def test_long_bad_values_are_cut_short_in_messages() -> None:
    long_type = "flink_" + "x" * 100_000
    problems = problems_of(one_target(f"filters: {{job_types: [{long_type}]}}\n"))
    assert [p.key for p in problems] == [f"{T0}.filters.job_types[0]"]
    assert len(problems[0].message) < 200
    problems = problems_of(one_target("auth: {type: " + "t" * 100_000 + "}\n"))
    assert [p.key for p in problems] == [f"{T0}.auth.type"]
    assert len(problems[0].message) < 200


# --------------------------------------------------------------------------- YAML limits


def test_recursive_alias_is_a_problem_not_a_crash() -> None:
    problems = problems_of("x: &a [*a]\n")
    assert [(p.key, p.message) for p in problems] == [
        ("", "recursive YAML alias at line 1, column 8")
    ]


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    problems = problems_of("targets: " + "[" * 3000 + "]" * 3000 + "\n")
    assert [p.key for p in problems] == [""]
    assert "nested more than 100 levels" in problems[0].message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("targets: !!int abc\n", "not a valid int value"),
        ("targets: !!bool abc\n", "not a valid bool value"),
        ("targets: !!timestamp abc\n", "not a valid timestamp value"),
        ("targets: 2001-12-14 21:59:43.10 +99:00\n", "not a valid timestamp value"),
        (f"concurrency: {'1' * 5000}\ntargets: []\n", "number longer than 100 characters"),
        ("targets: [a\x01]\n", "unacceptable character #x0001"),
    ],
)
def test_unbuildable_yaml_values_are_problems_not_crashes(text: str, fragment: str) -> None:
    problems = problems_of(text)
    assert [p.key for p in problems] == [""]
    assert fragment in problems[0].message


def test_env_expansion_is_bounded() -> None:
    big = "v" * (600 * 1024)
    text = one_target("filters: {tags: ['${BIG}', '${BIG}']}\n")
    problems = problems_of(text, {**ENV, "BIG": big})
    assert [(p.key, p.message) for p in problems] == [
        (f"{T0}.filters.tags[1]", "${VAR} values would add more than 1 MiB of text to the file")
    ]
    assert (
        parse(text, {**ENV, "BIG": "v" * (500 * 1024)}).targets[0].filters.tags[0] == big[:512000]
    )


def test_env_expansion_through_aliases_is_bounded() -> None:
    # 2,000 aliases of one string that names a 1 KiB variable: 2 MiB of copies.
    text = "x: &v '${V}'\n" + one_target("filters: {tags: [" + ", ".join(["*v"] * 2000) + "]}\n")
    problems = problems_of(text, {**ENV, "V": "v" * 1024})
    assert [p.message for p in problems if p.key != "x"] == [
        "${VAR} values would add more than 1 MiB of text to the file"
    ]


# --------------------------------------------------------------------------- files the config reads


def test_config_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# padding\n" * (MAX_CONFIG_FILE_SIZE // 10 + 1))
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == f"{path}: cannot read file: is larger than 4 MiB"


def test_config_file_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, ENV)
    assert str(info.value) == f"{tmp_path}: cannot read file: is not a regular file (a directory)"


def test_config_file_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text(one_target(""))
    (tmp_path / "config.yaml").symlink_to("real.yaml")
    assert load_config(tmp_path / "config.yaml", ENV).targets[0].name == "t"


def test_secret_file_through_kubernetes_style_symlinks(tmp_path: Path) -> None:
    (tmp_path / "..2024_01_01").mkdir()
    (tmp_path / "..2024_01_01" / "sk").write_text("mounted-sk\n")
    (tmp_path / "..data").symlink_to("..2024_01_01")
    (tmp_path / "sk").symlink_to("..data/sk")
    config = parse(one_target("auth: {access_key: a, secret_key_file: sk}\n"), base_dir=tmp_path)
    assert config.targets[0].auth == AkSkAuth("a", Secret("mounted-sk"))


def test_secret_file_size_limit(tmp_path: Path) -> None:
    (tmp_path / "sk").write_bytes(b"k" * MAX_SECRET_FILE_SIZE)
    auth = parse(one_target("auth: {access_key: a, secret_key_file: sk}\n"), base_dir=tmp_path)
    assert auth.targets[0].auth == AkSkAuth("a", Secret("k" * MAX_SECRET_FILE_SIZE))
    (tmp_path / "sk").write_bytes(b"k" * (MAX_SECRET_FILE_SIZE + 1))
    problems = problems_of(
        one_target("auth: {access_key: a, secret_key_file: sk}\n"), base_dir=tmp_path
    )
    assert [(p.key, p.message) for p in problems] == [
        (
            f"{T0}.auth.secret_key_file",
            f"cannot read '{tmp_path / 'sk'}': is larger than 64 KiB",
        )
    ]


@pytest.mark.parametrize(
    ("key", "auth_body"),
    [
        ("secret_key_file", "access_key: a, secret_key_file: /dev/null"),
        ("security_token_file", "access_key: a, secret_key: s, security_token_file: /dev/null"),
        ("password_file", "type: password, username: u, password_file: /dev/null, domain_name: d"),
    ],
)
def test_every_secret_file_refuses_a_device(key: str, auth_body: str) -> None:
    # /dev/null, not /dev/zero: a regression reads nothing instead of filling memory. FIFOs and
    # /dev/zero are tried on the real command line (tests/faults/test_files.py).
    problems = problems_of(auth(auth_body))
    assert [(p.key, p.message) for p in problems] == [
        (
            f"{T0}.auth.{key}",
            "cannot read '/dev/null': is not a regular file (a character device)",
        )
    ]


# --------------------------------------------------------------------------- tls


@pytest.fixture(scope="module")
def ca_pem() -> bytes:
    return trustme.CA().cert_pem.bytes()


def test_tls_defaults() -> None:
    for body in ("", "tls: {}\n", "tls:\n", "tls: {insecure_skip_verify: false}\n"):
        assert parse(one_target(body)).targets[0].tls == TlsClientConfig()


def test_tls_insecure_skip_verify() -> None:
    tls = parse(one_target("tls: {insecure_skip_verify: true}\n")).targets[0].tls
    assert tls == TlsClientConfig(insecure_skip_verify=True)


def test_tls_ca_file_relative_to_the_config_file(tmp_path: Path, ca_pem: bytes) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "c.yaml").write_text(one_target("tls: {ca_file: certs/ca.pem}\n"))
    tls = load_config(tmp_path / "c.yaml", ENV).targets[0].tls
    assert tls.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert tls.ca_pem is not None
    assert tls.ca_pem.strip() == ca_pem.decode().strip()
    assert not tls.insecure_skip_verify
    ssl.create_default_context(cadata=tls.ca_pem)  # usable as is
    assert "BEGIN CERTIFICATE" not in repr(tls)


def test_tls_ca_bundle_keeps_only_the_certificates(tmp_path: Path, ca_pem: bytes) -> None:
    other = trustme.CA()
    key = other.private_key_pem.bytes()
    bundle = b"# Issuer: CN=Gr\xc3\xbcn\n" + ca_pem + b"\n# second\n" + other.cert_pem.bytes() + key
    (tmp_path / "bundle.pem").write_bytes(bundle.replace(b"\n", b"\r\n"))
    tls = parse(one_target("tls: {ca_file: bundle.pem}\n"), base_dir=tmp_path).targets[0].tls
    assert tls.ca_pem is not None
    assert tls.ca_pem.count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE KEY" not in tls.ca_pem
    context = ssl.create_default_context(cadata=tls.ca_pem)
    assert context.cert_store_stats()["x509_ca"] == 2


def test_tls_ca_file_from_env(tmp_path: Path, ca_pem: bytes) -> None:
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    env = {**ENV, "CA": str(tmp_path / "ca.pem")}
    tls = parse(one_target("tls: {ca_file: '${CA}'}\n"), env).targets[0].tls
    assert tls.ca_file == str(tmp_path / "ca.pem")


def bad_tls(body: str, tmp_path: Path) -> list[tuple[str, str]]:
    return [(p.key, p.message) for p in problems_of(one_target(body), base_dir=tmp_path)]


def test_tls_both_ca_file_and_insecure(tmp_path: Path, ca_pem: bytes) -> None:
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    assert bad_tls("tls: {ca_file: ca.pem, insecure_skip_verify: true}\n", tmp_path) == [
        (f"{T0}.tls", "set only one of ca_file and insecure_skip_verify: true")
    ]
    both_ok = "tls: {ca_file: ca.pem, insecure_skip_verify: false}\n"
    assert parse(one_target(both_ok), base_dir=tmp_path).targets[0].tls.ca_pem is not None


TLS_BAD: list[tuple[str, str, bytes | None, str, str]] = [
    # (id, tls section, content of "f" in tmp_path or None, key under tls, message)
    ("typo", "{ca_fil: f}", None, "ca_fil", 'unknown key (did you mean "ca_file"?)'),
    (
        "typo insecure",
        "{insecure_skip_verfy: true}",
        None,
        "insecure_skip_verfy",
        'unknown key (did you mean "insecure_skip_verify"?)',
    ),
    (
        "client certificate",
        "{cert_file: f}",
        None,
        "cert_file",
        "unknown key (not supported: only ca_file and insecure_skip_verify are)",
    ),
    ("server_name", "{server_name: x}", None, "server_name", "unknown key (not supported"),
    (
        "insecure string",
        "{insecure_skip_verify: 'yes'}",
        None,
        "insecure_skip_verify",
        "must be true or false, not string",
    ),
    ("ca_file number", "{ca_file: 1}", None, "ca_file", "must be a string, not integer"),
    ("ca_file empty", "{ca_file: ''}", None, "ca_file", "must not be empty"),
    ("ca_file missing", "{ca_file: f}", None, "ca_file", "': No such file or directory"),
    ("not PEM", "{ca_file: f}", b"hello\n", "ca_file", "' does not contain a PEM certificate"),
    (
        "only a key",
        "{ca_file: f}",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "ca_file",
        "' does not contain a PEM certificate",
    ),
    (
        "no END",
        "{ca_file: f}",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n",
        "ca_file",
        "' does not contain a PEM certificate",
    ),
    (
        "garbage certificate",
        "{ca_file: f}",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "ca_file",
        "' contains a certificate that cannot be used",
    ),
    (
        "too large",
        "{ca_file: f}",
        b"#" * (MAX_CA_FILE_SIZE + 1),
        "ca_file",
        "': is larger than 1 MiB",
    ),
]


@pytest.mark.parametrize(
    ("section", "content", "key", "fragment"),
    [b[1:] for b in TLS_BAD],
    ids=[b[0] for b in TLS_BAD],
)
def test_bad_tls(
    tmp_path: Path, section: str, content: bytes | None, key: str, fragment: str
) -> None:
    if content is not None:
        (tmp_path / "f").write_bytes(content)
    problems = bad_tls(f"tls: {section}\n", tmp_path)
    assert [(k, fragment in m) for k, m in problems] == [(f"{T0}.tls.{key}", True)], problems


def test_tls_malformed_block_next_to_a_good_one(tmp_path: Path, ca_pem: bytes) -> None:
    (tmp_path / "f").write_bytes(ca_pem + b"-----BEGIN CERTIFICATE-----\n!!!\n")
    assert bad_tls("tls: {ca_file: f}\n", tmp_path) == [
        (f"{T0}.tls.ca_file", f"'{tmp_path / 'f'}' contains a malformed PEM certificate")
    ]


def test_tls_ca_file_device(tmp_path: Path) -> None:
    # /dev/null, not /dev/zero: a regression reads nothing instead of filling memory. FIFOs and
    # /dev/zero are tried on the real command line (tests/faults/test_files.py).
    assert bad_tls("tls: {ca_file: /dev/null}\n", tmp_path) == [
        (f"{T0}.tls.ca_file", "cannot read '/dev/null': is not a regular file (a character device)")
    ]


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ("tls: [a]\n", f"{T0}.tls", "must be a mapping, not list"),
        ("tls_config: {}\n", f"{T0}.tls_config", 'unknown key (the section is called "tls" here)'),
        ("ca_file: x\n", f"{T0}.ca_file", "unknown key (it belongs under tls)"),
        ("insecure_skip_verify: true\n", f"{T0}.insecure_skip_verify", "belongs under tls"),
    ],
)
def test_tls_section_shape(body: str, key: str, fragment: str) -> None:
    problems = problems_of(one_target(body))
    assert [(p.key, fragment in p.message) for p in problems] == [(key, True)], problems


# --------------------------------------------------------------------------- project_id


def test_project_id_absent_is_looked_up_at_the_regional_iam_endpoint() -> None:
    target = parse("targets: [{name: a, region: cn-east-3}]\n").targets[0]
    assert target.project_id is None
    assert target.iam_endpoint == "https://iam.cn-east-3.myhuaweicloud.com"


def test_project_id_lookup_endpoint_from_the_target_else_the_sdk_variable() -> None:
    env = {**ENV, "HUAWEICLOUD_SDK_IAM_ENDPOINT": "https://iam.example.com"}
    text = "targets: [{name: a, region: cn-east-3}, {name: b, region: x, iam_endpoint: 'http://i:1'}]\n"
    a, b = parse(text, env).targets
    assert (a.iam_endpoint, b.iam_endpoint) == ("https://iam.example.com", "http://i:1")


def test_project_id_present_needs_no_iam_endpoint() -> None:
    target = parse(one_target("")).targets[0]
    assert (target.project_id, target.iam_endpoint) == ("p1", None)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("7", "quote it"), ("''", ""), ("[a]", ""), ("{a: 1}", "")],
)
def test_project_id_invalid_when_given(value: str, fragment: str) -> None:
    problems = problems_of(f"targets: [{{name: a, region: x, project_id: {value}}}]\n")
    assert [p.key for p in problems] == ["targets[0].project_id"]
    assert fragment in problems[0].message


def test_target_iam_endpoint_is_checked() -> None:
    problems = problems_of("targets: [{name: a, region: x, iam_endpoint: 'ftp://i'}]\n")
    assert [p.key for p in problems] == ["targets[0].iam_endpoint"]
