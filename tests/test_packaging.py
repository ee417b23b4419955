"""The container image's pieces, tested without a Docker engine (none runs on our machines).

The Dockerfile's build stage runs scripts/build-venv.sh; running that script here proves the
image's install steps produce a working exporter from a regular (non-editable) install. The
compose file must mount exactly the configuration files the other tests check.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)  # join continuation lines
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_non_root_and_runs_the_console_script() -> None:
    instructions = dockerfile_instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build")
    final = instructions[[op for op, _ in instructions].index("FROM", 1) :]
    ops = dict(final)
    assert ops["USER"].split(":")[0] not in ("root", "0")
    assert ops["EXPOSE"] == "9469"
    assert ops["ENTRYPOINT"] == '["/opt/dli-exporter/bin/dli-exporter"]'
    assert "--config.file=" in ops["CMD"]
    assert "curl" not in ops["HEALTHCHECK"] and "/-/healthy" in ops["HEALTHCHECK"]
    copies = [arg for op, arg in final if op == "COPY"]
    assert copies == ["--from=build /opt/dli-exporter /opt/dli-exporter"]
    build_runs = [arg for op, arg in instructions[: len(instructions) - len(final)] if op == "RUN"]
    assert build_runs == ["./scripts/build-venv.sh /opt/dli-exporter ."]


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv the image's build stage would produce, built by the same script."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    result = subprocess.run(
        [str(ROOT / "scripts/build-venv.sh"), str(venv), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dli-exporter" in result.stdout
    return venv


def test_the_image_venv_holds_the_whole_package(image_venv: Path) -> None:
    check = subprocess.run(
        [
            str(image_venv / "bin/python"),
            "-c",
            "import exporter.simulator, exporter.cli, exporter.web; print(exporter.__file__)",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert check.returncode == 0, check.stderr
    assert str(image_venv) in check.stdout  # the installed copy, not this checkout


def test_the_image_venv_checks_the_example_config(image_venv: Path, tmp_path: Path) -> None:
    secret = tmp_path / "sk"
    secret.write_text("example-secret\n")
    env = {
        "HUAWEICLOUD_SDK_AK": "AKEXAMPLE",
        "HUAWEICLOUD_SDK_SK": "example",
        "DLI_SK_FILE": str(secret),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [
            str(image_venv / "bin/dli-exporter"),
            "--config.check",
            f"--config.file={ROOT / 'config.example.yaml'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert "OK (2 targets)" in result.stdout


def test_compose_mounts_the_checked_config_files() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["dli-exporter"]["build"] == "."
    assert "--demo" in services["dli-exporter"]["command"]
    mounted = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
    }
    assert mounted == {
        "./prometheus/prometheus.yml",
        "./prometheus/alerts.yml",
        "./prometheus/rules.yml",
        "./prometheus/alertmanager.yml",
        "./grafana/provisioning",
        "./grafana/dashboards",
    }
    for path in mounted:
        assert (ROOT / path).exists(), f"{path} is mounted but missing"
    scrape = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    targets = [
        target
        for job in scrape["scrape_configs"]
        if job["job_name"] == "dli"
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["dli-exporter:9469"]  # the compose service name and the EXPOSEd port


def test_python_in_the_image_matches_the_supported_version() -> None:
    stages = [arg for op, arg in dockerfile_instructions() if op == "FROM"]
    assert all(stage.startswith("python:3.11") for stage in stages)
