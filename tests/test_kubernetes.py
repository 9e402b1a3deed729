"""The Kubernetes manifests in deploy/kubernetes validate against the Kubernetes API schemas
(offline: kubernetes-validate ships them) and agree with the service they run: probe paths that
answer, the port it listens on, settings it knows, the image's user, a grace period longer than
its shutdown timeout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def rendered() -> dict[str, dict[str, Any]]:
    """Every resource the two kustomizations apply, by ``kind/name``."""
    resources: dict[str, dict[str, Any]] = {}
    for kustomization in sorted(MANIFESTS.rglob("kustomization.yaml")):
        for entry in load(kustomization)[0]["resources"]:
            for doc in load(kustomization.parent / entry):
                resources[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return resources


RESOURCES = rendered()
CONFIG = RESOURCES["ConfigMap/loss-service"]["data"]
DEPLOYMENTS = [doc for doc in RESOURCES.values() if doc["kind"] == "Deployment"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_every_manifest_file_is_applied_by_a_kustomization() -> None:
    files = {p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml"}
    listed = {
        (k.parent / entry).resolve()
        for k in MANIFESTS.rglob("kustomization.yaml")
        for entry in load(k)[0]["resources"]
    }
    assert files == listed
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    } <= {doc["kind"] for doc in RESOURCES.values()}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_resource_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    kubernetes_validate.validate(RESOURCES[name], version, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    broken = yaml.safe_load(yaml.safe_dump(RESOURCES["Deployment/loss-service"]))
    container(broken)["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_config_map_holds_valid_settings() -> None:
    fields = {f"LOSS_SERVICE_{name.upper()}" for name in Settings.model_fields}
    assert set(CONFIG) <= fields, set(CONFIG) - fields
    Settings(**{key.removeprefix("LOSS_SERVICE_").lower(): value for key, value in CONFIG.items()})


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_probes_and_port_match_the_service(deployment: dict[str, Any], client: TestClient) -> None:
    spec = container(deployment)
    (port,) = spec["ports"]
    assert port["containerPort"] == int(CONFIG["LOSS_SERVICE_PORT"]) == Settings().port
    service_port = RESOURCES["Service/loss-service"]["spec"]["ports"][0]
    assert service_port["targetPort"] == port["name"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = spec[probe]["httpGet"]
        assert get["port"] in (port["name"], port["containerPort"])
        assert client.get(get["path"]).status_code == 200, f"{probe} {get['path']}"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_the_pod_runs_as_the_image_does(deployment: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert uid is not None
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid[1])
    assert pod["securityContext"]["runAsNonRoot"] is True
    spec = container(deployment)
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    # A read-only root needs every folder the service writes to mounted.
    writable = {mount["mountPath"] for mount in spec["volumeMounts"]}
    for variable in ("PROMETHEUS_MULTIPROC_DIR", "LOSS_SERVICE_STATE_DIR"):
        found = re.search(rf"{variable}=(\S+)", dockerfile)
        assert found is not None, variable
        assert any(found[1] == path or found[1].startswith(path + "/") for path in writable), (
            variable,
            writable,
        )
    shutdown = float(CONFIG["LOSS_SERVICE_SHUTDOWN_TIMEOUT_S"])
    assert pod["terminationGracePeriodSeconds"] > shutdown + 5


def test_the_gpu_variant_asks_for_a_gpu() -> None:
    gpu = RESOURCES["Deployment/loss-service-gpu"]
    assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["spec"]["template"]["spec"]["nodeSelector"]
