"""The Helm chart (charts/dli-exporter): lint, render, validate, and what the manifests say.

Rendering and linting use Helm's Go SDK through helm-python-sdk (no helm binary, no cluster);
built-in kinds are checked against Kubernetes' schemas with kubernetes-validate; the Prometheus
Operator's kinds, which it has no schemas for, are checked structurally here; promtool checks
the rendered rules; yamllint lints the chart's plain YAML files and the rendered output.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

import exporter
from tests.conftest import promtool_path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "dli-exporter"
ALL_ENABLED = CHART / "ci" / "all-enabled-values.yaml"
RELEASE = "dli-exporter"
NAMESPACE = "monitoring"
#: The Kubernetes version the manifests are validated against (CCE runs 1.28 to 1.31).
KUBERNETES = "1.30.0"
#: Custom resources kubernetes-validate has no schema for: checked structurally below.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


@dataclass(frozen=True)
class Rendering:
    """The chart rendered with one set of values: every template's text and the manifests."""

    texts: dict[str, str]
    manifests: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [m for m in self.of_kind(kind) if name is None or m["metadata"]["name"] == name]
        assert len(found) == 1, f"{len(found)} {kind} named {name}"
        return found[0]

    def workload(self) -> dict[str, Any]:
        (found,) = [m for m in self.manifests if m["kind"] in ("Deployment", "StatefulSet")]
        return found

    def container(self) -> dict[str, Any]:
        (container,) = self.workload()["spec"]["template"]["spec"]["containers"]
        return container

    def yaml_text(self) -> str:
        """The manifests as `helm template` prints them (NOTES.txt left out)."""
        return "".join(
            f"---\n# Source: {name}\n{text.strip()}\n"
            for name, text in sorted(self.texts.items())
            if name.endswith(".yaml") and text.strip()
        )


def render(values: dict[str, Any] | None = None, *, name: str = RELEASE) -> Rendering:
    with helm.Chart.load(CHART) as chart:
        texts = chart.render(values or {}, name=name, namespace=NAMESPACE)
    manifests = [
        document
        for template, text in sorted(texts.items())
        if template.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]
    return Rendering(texts, manifests)


def all_enabled_values() -> dict[str, Any]:
    return helm.values_from_yaml(ALL_ENABLED.read_text())


@pytest.fixture(scope="module")
def defaults() -> Rendering:
    return render()


@pytest.fixture(scope="module")
def all_enabled() -> Rendering:
    return render(all_enabled_values())


@pytest.fixture(scope="module", params=["defaults", "all-enabled"])
def rendering(request: pytest.FixtureRequest) -> Rendering:
    return request.getfixturevalue("defaults" if request.param == "defaults" else "all_enabled")


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmRenderError) as caught:
        render(values)
    return str(caught.value)


# --- lint and validation --------------------------------------------------------------------


@pytest.mark.parametrize("values_file", [None, ALL_ENABLED], ids=["defaults", "all-enabled"])
def test_helm_lint_passes_strictly(values_file: Path | None) -> None:
    values = helm.values_from_yaml(values_file.read_text()) if values_file else None
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=KUBERNETES)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_chart_app_version_is_the_exporters() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == exporter.__version__


def test_default_and_all_enabled_render_what_they_should(
    defaults: Rendering, all_enabled: Rendering
) -> None:
    assert sorted(m["kind"] for m in defaults.manifests) == [
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    kinds = sorted({m["kind"] for m in all_enabled.manifests})
    assert kinds == [
        "ConfigMap",
        "NetworkPolicy",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "StatefulSet",
    ]


def test_every_builtin_manifest_validates_against_the_kubernetes_schema(
    rendering: Rendering,
) -> None:
    checked = 0
    for manifest in rendering.manifests:
        if manifest["kind"] in OPERATOR_KINDS:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:  # pragma: no cover - the message
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {path}: {error}")
        checked += 1
    assert checked >= 4


def test_every_manifest_is_namespaced_and_labelled(rendering: Rendering) -> None:
    for manifest in rendering.manifests:
        metadata = manifest["metadata"]
        assert metadata["namespace"] == NAMESPACE, metadata["name"]
        assert metadata["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert metadata["labels"]["app.kubernetes.io/name"] == "dli-exporter"
        assert metadata["labels"]["helm.sh/chart"] == "dli-exporter-0.1.0"


def test_the_service_monitor_selects_the_metrics_service_only(all_enabled: Rendering) -> None:
    monitor = all_enabled.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"namespaceSelector", "selector", "endpoints"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s
        for s in all_enabled.of_kind("Service")
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in selected] == [RELEASE]  # not the headless one
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "60s" and endpoint["scrapeTimeout"] == "30s"
    # webConfig has TLS and basic auth: the scrape uses https with the given secrets.
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "dli-exporter-tls", "key": "ca.crt"}
    assert endpoint["basicAuth"]["password"] == {"name": "dli-exporter-scrape", "key": "password"}
    # The shipped alerts need job="dli"; the user's relabelings follow.
    assert endpoint["relabelings"][0] == {
        "action": "replace",
        "targetLabel": "job",
        "replacement": "dli",
    }
    assert endpoint["relabelings"][1]["targetLabel"] == "pod"
    assert endpoint["metricRelabelings"][0]["action"] == "drop"
    # kube-prometheus-stack selects ServiceMonitors and PrometheusRules by release=<its release>.
    assert monitor["metadata"]["labels"]["release"] == RELEASE
    assert monitor["metadata"]["labels"]["team"] == "data"
    for known in ("scheme", "interval", "scrapeTimeout", "port", "path", "honorLabels"):
        assert isinstance(endpoint[known], str | bool)


def test_the_service_monitor_scrapes_http_without_web_config() -> None:
    monitor = render({"serviceMonitor": {"enabled": True}}).one("ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "http"
    assert "release" not in monitor["metadata"]["labels"]
    assert "tlsConfig" not in endpoint and "basicAuth" not in endpoint


def test_the_prometheus_rule_is_a_well_formed_custom_resource(all_enabled: Rendering) -> None:
    rule = all_enabled.one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert list(rule["spec"]) == ["groups"]
    assert rule["metadata"]["labels"]["release"] == RELEASE
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        for entry in group["rules"]:
            assert ("alert" in entry) != ("record" in entry)
            assert isinstance(entry["expr"], str)
            assert set(entry) <= {"alert", "record", "expr", "for", "labels", "annotations"}


def test_yamllint_passes_on_the_plain_yaml_files_and_the_rendered_output(
    defaults: Rendering, all_enabled: Rendering
) -> None:
    config = YamlLintConfig(file=str(ROOT / "charts" / ".yamllint"))
    sources = {
        str(path.relative_to(ROOT)): path.read_text()
        for path in [CHART / "Chart.yaml", CHART / "values.yaml", *sorted(CHART.glob("ci/*.yaml"))]
    }
    # The rendered rules and dashboards are prometheus/ and grafana/ verbatim, long PromQL lines
    # included: the rendered output is linted for everything but line length.
    settings = yaml.safe_load((ROOT / "charts" / ".yamllint").read_text())
    settings["rules"]["line-length"] = "disable"
    rendered = YamlLintConfig(yaml.safe_dump(settings))
    outputs = {"rendered with defaults": defaults, "rendered all-enabled": all_enabled}
    problems = [
        f"{name}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})"
        for name, text in sources.items()
        for problem in linter.run(text, config)
    ] + [
        f"{name}:{problem.line}:{problem.column}: {problem.desc} ({problem.rule})"
        for name, rendering in outputs.items()
        for problem in linter.run(rendering.yaml_text(), rendered)
    ]
    assert problems == []


# --- rules and dashboards: the same files as prometheus/ and grafana/ -----------------------


def copies() -> Iterator[tuple[Path, Path]]:
    for name in ("alerts.yml", "rules.yml"):
        yield ROOT / "prometheus" / name, CHART / "files" / "prometheus" / name
    for source in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        yield source, CHART / "files" / "dashboards" / source.name


def test_the_charts_rule_and_dashboard_files_are_identical_to_the_originals() -> None:
    stale = [
        str(copy.relative_to(ROOT))
        for source, copy in copies()
        if not copy.exists() or copy.read_bytes() != source.read_bytes()
    ]
    assert stale == [], "run `make chart-files` to refresh the chart's copies"
    shipped = sorted(p.name for p in (CHART / "files" / "dashboards").glob("*"))
    assert shipped == sorted(p.name for p in (ROOT / "grafana" / "dashboards").glob("*.json"))


def test_the_rendered_rules_are_the_prometheus_files_and_pass_promtool(
    all_enabled: Rendering, tmp_path: Path
) -> None:
    groups = all_enabled.one("PrometheusRule")["spec"]["groups"]
    expected = [
        group
        for name in ("alerts.yml", "rules.yml")
        for group in yaml.safe_load((ROOT / "prometheus" / name).read_text())["groups"]
    ]
    assert groups == expected
    path = tmp_path / "rendered-rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run(
        [promtool_path(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_config_maps_hold_the_exact_json(all_enabled: Rendering) -> None:
    maps = [
        m
        for m in all_enabled.of_kind("ConfigMap")
        if m["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    sources = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
    assert len(maps) == len(sources) == 3
    by_file = {key: value for m in maps for key, value in m["data"].items()}
    for source in sources:
        assert by_file[source.name] == source.read_text(), source.name
        json.loads(by_file[source.name])
    for config_map in maps:
        assert len(config_map["data"]) == 1
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "DLI"
        assert config_map["metadata"]["labels"]["team"] == "data"


def test_the_dashboard_label_is_configurable() -> None:
    rendering = render(
        {"grafanaDashboards": {"enabled": True, "label": "dashboards", "labelValue": "dli"}}
    )
    maps = [m for m in rendering.of_kind("ConfigMap") if "dashboards" in m["metadata"]["labels"]]
    assert len(maps) == 3
    assert {m["metadata"]["labels"]["dashboards"] for m in maps} == {"dli"}
    assert all("annotations" not in m["metadata"] for m in maps)


# --- the pod --------------------------------------------------------------------------------


def test_the_pod_is_hardened(rendering: Rendering) -> None:
    pod = rendering.workload()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    container = rendering.container()
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_one_replica_is_a_deployment_without_shard(defaults: Rendering) -> None:
    assert defaults.of_kind("StatefulSet") == []
    deployment = defaults.one("Deployment")
    assert deployment["spec"]["replicas"] == 1
    args = defaults.container()["args"]
    assert not any(a.startswith("--shard") for a in args)
    assert args == [
        "--config.file=/etc/dli-exporter/config/config.yaml",
        "--web.listen-address=:9469",
        "--log.level=info",
        "--log.format=json",
    ]
    assert "env" not in defaults.container()
    assert [s["metadata"]["name"] for s in defaults.of_kind("Service")] == [RELEASE]


def test_three_replicas_are_a_statefulset_sharding_by_ordinal() -> None:
    rendering = render({"replicas": 3})
    assert rendering.of_kind("Deployment") == []
    statefulset = rendering.one("StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    headless = rendering.one("Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    container = rendering.container()
    assert "--shard=auto/3" in container["args"]
    assert {
        "name": "HOSTNAME",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    } in container["env"]


def test_web_config_adds_the_flag_https_probes_and_a_secret(all_enabled: Rendering) -> None:
    container = all_enabled.container()
    assert "--web.config.file=/etc/dli-exporter/web/web-config.yml" in container["args"]
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    secret = all_enabled.one("Secret", f"{RELEASE}-web-config")
    web_config = yaml.safe_load(base64.b64decode(secret["data"]["web-config.yml"]))
    assert web_config == all_enabled_values()["webConfig"]["config"]
    volumes = {v["name"]: v for v in all_enabled.workload()["spec"]["template"]["spec"]["volumes"]}
    assert volumes["web-config"]["secret"]["secretName"] == f"{RELEASE}-web-config"
    assert volumes["web-tls"]["secret"]["secretName"] == "dli-exporter-tls"


def test_an_existing_web_config_secret_is_mounted_not_created() -> None:
    rendering = render({"webConfig": {"enabled": True, "existingSecret": "my-web"}})
    assert rendering.of_kind("Secret") == []
    volumes = rendering.workload()["spec"]["template"]["spec"]["volumes"]
    assert {"name": "web-config", "secret": {"secretName": "my-web", "defaultMode": 0o440}} in (
        volumes
    )
    assert "scheme" not in rendering.container()["livenessProbe"]["httpGet"]


# --- config and credentials -----------------------------------------------------------------


def test_the_config_map_keeps_var_references_for_the_exporter() -> None:
    config = {
        "poll_interval": "30s",
        "targets": [
            {
                "name": "prod",
                "region": "cn-north-4",
                "project_id": "0123456789",
                "auth": {
                    "access_key": "${HUAWEICLOUD_SDK_AK}",
                    "secret_key": "${HUAWEICLOUD_SDK_SK}",
                },
                "filters": {"tags": ["team={{ .Release.Name }}", "literal=$${not-a-var}"]},
            }
        ],
    }
    rendering = render({"config": config})
    text = rendering.one("ConfigMap", RELEASE)["data"]["config.yaml"]
    assert "${HUAWEICLOUD_SDK_AK}" in text and "${HUAWEICLOUD_SDK_SK}" in text
    assert yaml.safe_load(text) == config  # nothing expanded, "0123456789" still a string


def test_a_values_config_replaces_the_default_instead_of_merging(defaults: Rendering) -> None:
    text = defaults.one("ConfigMap", RELEASE)["data"]["config.yaml"]
    assert yaml.safe_load(text) == {
        "poll_interval": "60s",
        "targets": [{"name": "example", "region": "cn-north-4"}],
    }


def run_config_check(config_text: str, tmp_path: Path, env: dict[str, str]) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(config_text)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check", f"--config.file={path}"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_rendered_configs_pass_config_check(
    defaults: Rendering, all_enabled: Rendering, tmp_path: Path
) -> None:
    keys = {"HUAWEICLOUD_SDK_AK": "TESTAK", "HUAWEICLOUD_SDK_SK": "test-sk"}
    run_config_check(defaults.one("ConfigMap", RELEASE)["data"]["config.yaml"], tmp_path, keys)
    secret_file = tmp_path / "analytics-sk"
    secret_file.write_text("analytics-sk\n")
    text = all_enabled.one("ConfigMap", RELEASE)["data"]["config.yaml"]
    text = text.replace("/etc/dli-exporter/analytics/secret_key", str(secret_file))
    run_config_check(text, tmp_path, {**keys, "ANALYTICS_AK": "ANALYTICSAK"})


def test_created_credentials_become_env_vars_from_a_secret(all_enabled: Rendering) -> None:
    secret = all_enabled.one("Secret", f"{RELEASE}-credentials")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "access_key": "TESTAKEXAMPLE0000001",
        "secret_key": "test-sk-not-real",
        "security_token": "test-token-not-real",
    }
    env = {e["name"]: e for e in all_enabled.container()["env"]}
    assert env["HUAWEICLOUD_SDK_AK"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-credentials",
        "key": "access_key",
    }
    assert env["HUAWEICLOUD_SDK_SK"]["valueFrom"]["secretKeyRef"]["key"] == "secret_key"
    token = env["HUAWEICLOUD_SDK_SECURITY_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["optional"] is True
    for manifest in all_enabled.manifests:
        if manifest["kind"] != "Secret":
            assert "test-sk-not-real" not in json.dumps(manifest), manifest["kind"]


def test_an_existing_credentials_secret_is_referenced_and_may_be_mounted_as_files() -> None:
    rendering = render({"credentials": {"existingSecret": "dli-keys"}})
    assert rendering.of_kind("Secret") == []
    env = {e["name"]: e for e in rendering.container()["env"]}
    assert env["HUAWEICLOUD_SDK_SK"]["valueFrom"]["secretKeyRef"]["name"] == "dli-keys"
    files = render({"credentials": {"existingSecret": "dli-keys", "mode": "files"}})
    assert "env" not in files.container()
    assert {
        "name": "credentials",
        "mountPath": "/etc/dli-exporter/credentials",
        "readOnly": True,
    } in files.container()["volumeMounts"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"credentials": {"existingSecret": "dli-keys", "accessKey": "AK", "secretKey": "SK"}},
            "set either credentials.existingSecret or credentials.accessKey",
        ),
        ({"credentials": {"accessKey": "AK"}}, "needs both credentials.accessKey"),
        ({"credentials": {"existingSecret": "k", "mode": "inline"}}, "credentials.mode"),
        (
            {"webConfig": {"enabled": True, "existingSecret": "w", "config": {"a": 1}}},
            "set either webConfig.existingSecret or webConfig.config",
        ),
        ({"webConfig": {"enabled": True}}, "webConfig.enabled needs"),
        ({"replicas": 2, "fullnameOverride": "x" * 53}, "at most 52 characters"),
    ],
)
def test_contradictory_values_fail_the_render_with_a_clear_message(
    values: dict[str, Any], message: str
) -> None:
    assert message in render_error(values)


def test_a_config_change_rolls_the_pods(defaults: Rendering) -> None:
    def checksum(rendering: Rendering) -> str:
        annotations = rendering.workload()["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    changed = render({"config": {"targets": [{"name": "other", "region": "cn-east-3"}]}})
    assert checksum(changed) != checksum(defaults)
    assert checksum(render()) == checksum(defaults)


def test_the_service_account_carries_its_annotations(all_enabled: Rendering) -> None:
    account = all_enabled.one("ServiceAccount")
    assert account["metadata"]["name"] == "dli-exporter-sa"
    assert account["metadata"]["annotations"] == {"cce.io/pod-identity": "true"}
    pod = all_enabled.workload()["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dli-exporter-sa"
    unmanaged = render({"serviceAccount": {"create": False, "name": "shared"}})
    assert unmanaged.of_kind("ServiceAccount") == []
    assert unmanaged.workload()["spec"]["template"]["spec"]["serviceAccountName"] == "shared"


def test_extras_reach_the_pod(all_enabled: Rendering) -> None:
    container = all_enabled.container()
    assert container["args"][-1] == "--web.enable-lifecycle"
    assert container["image"] == "swr.cn-north-4.myhuaweicloud.com/monitoring/dli-exporter:0.1.0"
    assert "ANALYTICS_AK" in {e["name"] for e in container["env"]}
    assert container["envFrom"] == [
        {"configMapRef": {"name": "dli-exporter-proxy", "optional": True}}
    ]
    assert {"name": "analytics", "mountPath": "/etc/dli-exporter/analytics", "readOnly": True} in (
        container["volumeMounts"]
    )
    template = all_enabled.workload()["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "data"
    assert template["metadata"]["annotations"]["example.com/team"] == "data"
    assert template["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert template["spec"]["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in template["spec"]["affinity"]


def test_the_image_tag_defaults_to_the_app_version_and_a_digest_wins(defaults: Rendering) -> None:
    assert defaults.container()["image"] == f"dli-exporter:{exporter.__version__}"
    digest = "sha256:" + "0" * 64
    pinned = render({"image": {"registry": "r.example", "digest": digest}})
    assert pinned.container()["image"] == f"r.example/dli-exporter@{digest}"


def test_the_network_policy_opens_the_metrics_port_to_the_peers(all_enabled: Rendering) -> None:
    policy = all_enabled.one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    dns, https = policy["egress"]
    assert {"port": 53, "protocol": "UDP"} in dns["ports"]
    assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
    open_ingress = render({"networkPolicy": {"enabled": True}}).one("NetworkPolicy")["spec"]
    assert open_ingress["policyTypes"] == ["Ingress"]
    assert "from" not in open_ingress["ingress"][0] and "egress" not in open_ingress


def test_notes_tell_how_to_reach_the_exporter(defaults: Rendering, all_enabled: Rendering) -> None:
    notes = defaults.texts[f"{RELEASE}/templates/NOTES.txt"]
    assert "port-forward svc/dli-exporter 9469" in notes
    assert "No credentials Secret" in notes
    sharded = all_enabled.texts[f"{RELEASE}/templates/NOTES.txt"]
    assert "--shard=auto/3" in sharded and "https://" in sharded
