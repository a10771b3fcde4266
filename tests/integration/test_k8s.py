"""Kubernetes manifests: valid against the Kubernetes schemas (offline), and consistent with the worker."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stream.config import Settings
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"  # a release managed clusters run today; the schemas ship with kubernetes-validate
MANIFESTS = sorted(K8S.glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    """Return the YAML documents of one manifest file."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def by_kind() -> dict[str, dict[str, Any]]:
    """Return every manifest document by its kind."""
    return {document["kind"]: document for path in MANIFESTS for document in documents(path)}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_each_manifest_is_valid_against_the_kubernetes_schemas_in_strict_mode(path: Path) -> None:
    """Strict: an unknown or misspelt field (which kubectl would drop silently) fails too."""
    for document in documents(path):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_pod_runs_locked_down_and_probes_the_workers_health_endpoints() -> None:
    """Non-root, read-only root filesystem, no privilege escalation; liveness /healthz, readiness /readyz."""
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    (worker,) = pod["containers"]

    assert pod["securityContext"]["runAsNonRoot"]
    assert worker["securityContext"]["readOnlyRootFilesystem"]
    assert not worker["securityContext"]["allowPrivilegeEscalation"]
    assert ("/healthz", "/readyz") == (
        worker["livenessProbe"]["httpGet"]["path"],
        worker["readinessProbe"]["httpGet"]["path"],
    )
    assert {"memory"} <= set(worker["resources"]["limits"])


def test_every_setting_in_the_config_map_is_one_the_worker_reads() -> None:
    """A misspelt STATUSFLOW_ variable would be ignored in silence; each key must name a setting."""
    known = {f"STATUSFLOW_{field.name.upper()}" for field in fields(Settings)}
    config = by_kind()["ConfigMap"]["data"]

    assert set() == set(config) - known


def test_the_worker_port_and_data_dir_agree_across_config_map_deployment_and_service() -> None:
    """The probes, the Service and the web server name the same port; the data dir is a writable mount."""
    kinds = by_kind()
    config = kinds["ConfigMap"]["data"]
    (worker,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    (port,) = worker["ports"]

    assert int(config["STATUSFLOW_WEB_PORT"]) == port["containerPort"]
    assert port["name"] == kinds["Service"]["spec"]["ports"][0]["targetPort"]
    assert config["STATUSFLOW_DATA_DIR"] in {mount["mountPath"] for mount in worker["volumeMounts"]}
