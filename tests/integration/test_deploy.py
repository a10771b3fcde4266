"""Deployment files: alert rules under promtool, dashboard queries, compose and container wiring."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from stream.config import Settings
from stream.metrics import MembersByStatus, Metrics
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
PROMTOOL = shutil.which("promtool") or "promtool"


@pytest.mark.prometheus
def test_the_alert_rules_are_valid_and_their_promtool_unit_tests_pass() -> None:
    """`promtool check rules` and `promtool test rules` both succeed."""
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(DEPLOY / "prometheus/alerts.yaml")], capture_output=True, check=False
    )
    test = subprocess.run(
        [PROMTOOL, "test", "rules", str(DEPLOY / "prometheus/tests/alerts_test.yaml")], capture_output=True, check=False
    )

    assert 0 == check.returncode, check.stdout + check.stderr
    assert 0 == test.returncode, test.stdout + test.stderr


def exported_metric_names() -> set[str]:
    """Return the metric names a worker exports (as Prometheus sees them)."""
    registry = CollectorRegistry()
    Metrics(registry)
    registry.register(MembersByStatus(list))
    names = {sample.name for family in registry.collect() for sample in family.samples}
    return names | {family.name for family in registry.collect()} | {"up"}


def test_every_dashboard_query_names_a_metric_the_worker_exports() -> None:
    """A renamed metric breaks this test, not a panel in production."""
    dashboard = json.loads((DEPLOY / "grafana/dashboards/statusflow.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\b(statusflow_[a-z_]+|up)\b", expr)}

    assert len(exprs) >= 12
    assert set() == used - exported_metric_names()


def test_every_alert_names_a_metric_the_worker_exports() -> None:
    """Alert expressions only use exported metrics."""
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yaml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"\b(statusflow_[a-z_]+|up)\b", expr)}

    assert set() == used - exported_metric_names()


def test_compose_wiring_agrees_with_the_worker_settings() -> None:
    """Ports, broker address and scrape target line up across compose, Prometheus and the image."""
    compose = yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())
    scrape = yaml.safe_load((DEPLOY / "compose/prometheus.yml").read_text())
    local_scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    dockerfile = (DEPLOY / "docker/Dockerfile").read_text()
    worker = compose["services"]["worker"]
    port = Settings().web_port

    assert {"kafka", "worker", "prometheus", "grafana"} == set(compose["services"])
    assert f"worker:{port}" in scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert f"127.0.0.1:{port}" in local_scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert str(port) == worker["environment"]["STATUSFLOW_WEB_PORT"]
    assert (
        worker["environment"]["STATUSFLOW_BROKER"]
        in compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert f"EXPOSE {port}" in dockerfile
    assert "USER statusflow" in dockerfile
    assert (ROOT / worker["build"]["context"].replace("../..", ".") / "deploy/docker/Dockerfile").exists()
    for mount in compose["services"]["prometheus"]["volumes"] + compose["services"]["grafana"]["volumes"]:
        assert (DEPLOY / "compose" / mount.split(":")[0]).resolve().exists(), mount


def test_grafana_provisioning_points_at_the_dashboard_folder_compose_mounts() -> None:
    """The file provider's path is where compose mounts the dashboards."""
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/statusflow.yaml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())
    mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"])

    assert provider["providers"][0]["options"]["path"] == mounts["../grafana/dashboards"]
    assert Path(DEPLOY / "grafana/dashboards/statusflow.json").exists()


def test_make_run_names_missing_packages_to_a_user_who_cannot_install_them() -> None:
    """Not root and a tool missing: the packages and the command to install them, not apt's lock error."""
    command = [str(ROOT / "deploy" / "tools.sh"), "java:openjdk-17-jre-headless", "no-such-tool:no-such-package"]
    if os.getuid() == 0:  # CI runs as root; be somebody else for this
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]

    result = subprocess.run(command, capture_output=True, timeout=30, check=False)

    assert 1 == result.returncode
    assert b"sudo apt-get update && sudo apt-get install -y no-such-package\n" in result.stderr
    assert b"openjdk" not in result.stderr  # java is there: only what is missing is named
