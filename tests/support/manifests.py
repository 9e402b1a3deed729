"""The Kubernetes manifests of deploy/kubernetes as the kustomizations apply them, and what a
container of theirs is given: its environment, its settings, the image's user and folders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from service.settings import ENV_PREFIX, Settings, variable_name

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SETTING_VARIABLES = {variable_name(field) for field in Settings.model_fields}

Resource = dict[str, Any]


def load(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomizations() -> list[Path]:
    return sorted(MANIFESTS.rglob("kustomization.yaml"))


def rendered() -> dict[str, Resource]:
    """Every resource the kustomizations apply, by ``kind/name``."""
    resources: dict[str, Resource] = {}
    for kustomization in kustomizations():
        for entry in load(kustomization)[0]["resources"]:
            for doc in load(kustomization.parent / entry):
                key = f"{doc['kind']}/{doc['metadata']['name']}"
                assert key not in resources, f"{key} is defined twice"
                resources[key] = doc
    return resources


RESOURCES = rendered()


def of_kind(kind: str) -> list[Resource]:
    return [doc for doc in RESOURCES.values() if doc["kind"] == kind]


def ray_groups(cluster: Resource) -> dict[str, Resource]:
    """A RayCluster's node groups by name (``head``, then each worker group's name)."""
    spec = cluster["spec"]
    groups = {"head": spec["headGroupSpec"]}
    groups.update({group["groupName"]: group for group in spec.get("workerGroupSpecs", [])})
    return groups


def pod_specs() -> dict[str, Resource]:
    """Every pod the manifests make, by ``Deployment/name`` or ``RayCluster/name/group``."""
    pods = {
        f"Deployment/{doc['metadata']['name']}": doc["spec"]["template"]["spec"]
        for doc in of_kind("Deployment")
    }
    for cluster in of_kind("RayCluster"):
        for group, spec in ray_groups(cluster).items():
            pods[f"RayCluster/{cluster['metadata']['name']}/{group}"] = spec["template"]["spec"]
    return pods


def main_container(pod: Resource) -> Resource:
    """The service's container (KubeRay too takes a Ray pod's first container for Ray's)."""
    return pod["containers"][0]


def environment(container: Resource) -> dict[str, str]:
    """The variables the container gets: its ConfigMaps' and Secrets' keys, then its own."""
    variables: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            variables.update(RESOURCES[f"ConfigMap/{source['configMapRef']['name']}"]["data"])
        if "secretRef" in source:
            secret = RESOURCES[f"Secret/{source['secretRef']['name']}"]
            variables.update(secret.get("stringData", {}))
    for variable in container.get("env", []):
        variables[variable["name"]] = variable.get("value", "")
    return variables


def settings_from(variables: dict[str, str]) -> Settings:
    return Settings(
        **{
            name.removeprefix(ENV_PREFIX).lower(): value
            for name, value in variables.items()
            if name.startswith(ENV_PREFIX)
        }
    )


def image_user() -> tuple[int, int]:
    found = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE, re.MULTILINE)
    assert found is not None
    return int(found[1]), int(found[2])


def image_writes_to() -> dict[str, str]:
    """The folders the image's environment sends the service's writes to."""
    folders = {}
    for variable in ("PROMETHEUS_MULTIPROC_DIR", "LOSS_SERVICE_STATE_DIR"):
        found = re.search(rf"{variable}=(\S+)", DOCKERFILE)
        assert found is not None, variable
        folders[variable] = found[1]
    return folders
