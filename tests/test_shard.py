"""Sharding targets between replicas with --shard INDEX/COUNT."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from exporter.config import Config
from exporter.shard import ENV_SHARD_COUNT, Shard, parse_shard, stable_bucket
from tests.conftest import make_target

NAMES = [f"project-{i:04d}" for i in range(600)] + ["prod-bj4", "analytics-sh", "边缘-gz"]


def test_three_shards_cover_every_target_exactly_once() -> None:
    config = Config(targets=tuple(make_target(n, "http://x") for n in NAMES), source="<test>")

    owners = Counter(
        target.name for index in range(3) for target in Shard(index, 3).select(config).targets
    )

    assert set(owners) == set(NAMES)
    assert set(owners.values()) == {1}
    sizes = [len(Shard(index, 3).select(config).targets) for index in range(3)]
    assert min(sizes) > len(NAMES) / 3 * 0.8  # a hash, not a skewed split


def test_the_bucket_is_stable_across_processes() -> None:
    script = "from exporter.shard import stable_bucket; print(stable_bucket('prod-bj4', 7))"
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert int(other.stdout) == stable_bucket("prod-bj4", 7)


def test_one_shard_keeps_the_config_as_is() -> None:
    config = Config(targets=(make_target("a", "http://x"),), source="<test>")
    assert Shard().select(config) is config


@pytest.mark.parametrize(
    "text", ["3", "1/", "a/3", "3/3", "0/0", "-1/2", "\u00b2/3", "0/\u0663", "0/" + "9" * 5000]
)
def test_bad_shards_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_config_check_reports_the_shards_share(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n"
        + "".join(f"  - {{name: t{i}, region: cn-north-4, project_id: p{i}}}\n" for i in range(9))
    )
    env = {"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk", "PATH": "/usr/bin:/bin"}
    shares = []
    for index in range(3):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.check",
                f"--config.file={path}",
                f"--shard={index}/3",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        shares.append(int(result.stdout.split(", ")[1].split()[0]))
    assert sum(shares) == 9

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "--config.check",
            f"--config.file={path}",
            "--shard=3/3",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "shard" in bad.stderr


@pytest.mark.parametrize(
    ("text", "hostname", "environ", "expected"),
    [
        ("auto/3", "dli-exporter-2", {}, Shard(2, 3)),
        ("auto/3", "dli-exporter-0", {}, Shard(0, 3)),
        ("auto/1", "exporter-with-dashes-0", {}, Shard(0, 1)),
        ("auto", "dli-exporter-1", {ENV_SHARD_COUNT: "4"}, Shard(1, 4)),
        ("auto/2", "  dli-exporter-1\n", {ENV_SHARD_COUNT: "9"}, Shard(1, 2)),  # the flag wins
    ],
)
def test_auto_takes_the_index_from_the_pod_name(
    text: str, hostname: str, environ: dict[str, str], expected: Shard
) -> None:
    assert parse_shard(text, hostname=hostname, environ=environ) == expected


@pytest.mark.parametrize(
    ("text", "hostname", "environ", "problem"),
    [
        ("auto/3", "dli-exporter-3", {}, "not below the replica count 3"),
        ("auto/3", "dli-exporter", {}, "does not end in -<ordinal>"),
        ("auto/3", "laptop.local", {}, "does not end in -<ordinal>"),
        ("auto", "dli-exporter-0", {}, "DLI_EXPORTER_SHARD_COUNT"),
        ("auto", "dli-exporter-0", {ENV_SHARD_COUNT: "three"}, "invalid shard count"),
        ("auto/0", "dli-exporter-0", {}, "invalid shard count"),
        ("auto/3", "dli-exporter-\u0663", {}, "does not end in -<ordinal>"),
    ],
)
def test_auto_without_a_usable_ordinal_or_count_is_refused(
    text: str, hostname: str, environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match="shard") as caught:
        parse_shard(text, hostname=hostname, environ=environ)
    assert problem in str(caught.value)


def test_auto_reads_the_pod_name_from_hostname_and_exits_2_when_it_has_no_ordinal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n"
        + "".join(f"  - {{name: t{i}, region: cn-north-4, project_id: p{i}}}\n" for i in range(9))
    )
    env = {"HUAWEICLOUD_SDK_AK": "ak", "HUAWEICLOUD_SDK_SK": "sk", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "exporter", "--config.check", f"--config.file={path}"]
    shares = []
    for index in range(3):
        pod = {**env, "HOSTNAME": f"dli-exporter-{index}", ENV_SHARD_COUNT: "3"}
        result = subprocess.run(
            [*command, "--shard=auto"], capture_output=True, text=True, env=pod, check=False
        )
        assert result.returncode == 0, result.stderr
        assert f"on shard {index}/3" in result.stdout
        shares.append(int(result.stdout.split(", ")[1].split()[0]))
    assert sum(shares) == 9
    bad = subprocess.run(
        [*command, "--shard=auto/3"],
        capture_output=True,
        text=True,
        env={**env, "HOSTNAME": "dli-exporter"},
        check=False,
    )
    assert bad.returncode == 2 and "does not end in -<ordinal>" in bad.stderr
