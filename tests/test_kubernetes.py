"""The Kubernetes manifests in deploy/kubernetes validate against the Kubernetes API schemas
(offline: kubernetes-validate ships them) and agree with the service they run: probe paths that
answer, the port it listens on, settings it knows, the image's user, a grace period longer than
its shutdown timeout. The fleet's RayCluster (a custom resource, with no schema there) is
checked in tests/test_kubernetes_fleet.py; the pods it describes are validated here."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.support.manifests import (
    MANIFESTS,
    RESOURCES,
    SETTING_VARIABLES,
    environment,
    image_user,
    image_writes_to,
    kustomizations,
    load,
    main_container,
    of_kind,
    pod_specs,
    ray_groups,
    settings_from,
)

KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
# Custom resources: their operators' schemas are not in kubernetes-validate.
CUSTOM_KINDS = {"RayCluster"}
CORE = sorted(name for name, doc in RESOURCES.items() if doc["kind"] not in CUSTOM_KINDS)
DEPLOYMENTS = of_kind("Deployment")
PODS = pod_specs()


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_every_manifest_file_is_applied_by_a_kustomization() -> None:
    files = {p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml"}
    listed = {
        (k.parent / entry).resolve() for k in kustomizations() for entry in load(k)[0]["resources"]
    }
    assert files == listed
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
        "RayCluster",
    } <= {doc["kind"] for doc in RESOURCES.values()}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", CORE)
def test_resource_validates_against_the_kubernetes_schema(name: str, version: str) -> None:
    kubernetes_validate.validate(RESOURCES[name], version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("cluster", of_kind("RayCluster"), ids=lambda c: c["metadata"]["name"])
def test_ray_pod_templates_validate_against_the_kubernetes_schema(
    cluster: dict[str, Any], version: str
) -> None:
    """KubeRay makes each group's pods from a core PodTemplateSpec: validated as one."""
    for group, spec in ray_groups(cluster).items():
        template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{cluster['metadata']['name']}-{group}"},
            "template": spec["template"],
        }
        kubernetes_validate.validate(template, version, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    broken = yaml.safe_load(yaml.safe_dump(RESOURCES["Deployment/loss-service"]))
    container(broken)["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


SETTINGS_SOURCES = [*of_kind("ConfigMap"), *of_kind("Secret")]


@pytest.mark.parametrize(
    "source", SETTINGS_SOURCES, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_config_maps_and_secrets_hold_valid_settings(source: dict[str, Any]) -> None:
    values = source.get("data") or source.get("stringData") or {}
    assert set(values) <= SETTING_VARIABLES, set(values) - SETTING_VARIABLES
    settings_from(values)


@pytest.mark.parametrize("name", sorted(PODS))
def test_every_service_variable_a_pod_gets_is_a_setting(name: str) -> None:
    for spec in PODS[name]["containers"]:
        variables = environment(spec)
        named = {key for key in variables if key.startswith("LOSS_SERVICE_")}
        assert named <= SETTING_VARIABLES, named - SETTING_VARIABLES
        settings_from(variables)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_probes_and_port_match_the_service(deployment: dict[str, Any], client: TestClient) -> None:
    spec = container(deployment)
    (port,) = spec["ports"]
    assert port["containerPort"] == settings_from(environment(spec)).port == Settings().port
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (service,) = [
        svc for svc in of_kind("Service") if svc["spec"]["selector"].items() <= labels.items()
    ]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = spec[probe]["httpGet"]
        assert get["port"] in (port["name"], port["containerPort"])
        assert client.get(get["path"]).status_code == 200, f"{probe} {get['path']}"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("name", sorted(PODS))
def test_the_pod_runs_as_the_image_does(name: str) -> None:
    pod = PODS[name]
    uid, gid = image_user()
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["runAsGroup"] == gid
    assert pod["securityContext"]["runAsNonRoot"] is True
    spec = main_container(pod)
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    # A read-only root needs every folder the service writes to mounted.
    writable = {mount["mountPath"] for mount in spec["volumeMounts"]}
    emptied = {var["name"] for var in spec.get("env", []) if var.get("value") == ""}
    for variable, folder in image_writes_to().items():
        if variable in emptied:
            continue
        assert any(folder == path or folder.startswith(path + "/") for path in writable), (
            variable,
            writable,
        )


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])
def test_the_grace_period_outlasts_the_shutdown(deployment: dict[str, Any]) -> None:
    shutdown = settings_from(environment(container(deployment))).shutdown_timeout_s
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > shutdown + 5


def test_the_gpu_variant_asks_for_a_gpu() -> None:
    gpu = RESOURCES["Deployment/loss-service-gpu"]
    assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["spec"]["template"]["spec"]["nodeSelector"]
