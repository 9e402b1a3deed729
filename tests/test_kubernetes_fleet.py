"""deploy/kubernetes/fleet: API replicas on PostgreSQL that train on a KubeRay RayCluster.

The RayCluster is a custom resource without a schema here, so what the service depends on is
checked field by field: the head Service KubeRay will create and the GCS port it will expose are
what LOSS_SERVICE_RAY_ADDRESS names, Ray's nodes run the service's image and get its settings,
`rayStartParams` are strings and real `ray start` options, and every Ray container brings
probes that pass on the image's minimal Ray (KubeRay's own need the dashboard agent)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from service.state import DATA_NAME
from tests.support.manifests import (
    RESOURCES,
    ROOT,
    environment,
    image_writes_to,
    main_container,
    of_kind,
    ray_groups,
    settings_from,
)

FLEET = RESOURCES["Deployment/loss-service-fleet"]
API = main_container(FLEET["spec"]["template"]["spec"])
API_SETTINGS = settings_from(environment(API))
(CLUSTER,) = of_kind("RayCluster")
GROUPS = ray_groups(CLUSTER)
HEAD = GROUPS["head"]
DEFAULT_GCS_PORT = 6379  # KubeRay's and Ray's, when rayStartParams name no port


def ray_container(group: dict[str, Any]) -> dict[str, Any]:
    return main_container(group["template"]["spec"])


def head_service() -> tuple[str, int]:
    """The head Service KubeRay creates for the cluster, and the GCS port it serves."""
    spec = CLUSTER["spec"]["headGroupSpec"]
    name = spec.get("headService", {}).get("metadata", {}).get("name")
    port = int(spec["rayStartParams"].get("port", DEFAULT_GCS_PORT))
    return name or f"{CLUSTER['metadata']['name']}-head-svc", port


def test_the_api_runs_two_replicas_on_ray_and_postgresql() -> None:
    assert FLEET["spec"]["replicas"] == 2
    assert API_SETTINGS.jobs_executor == "ray"
    assert API_SETTINGS.database_url is not None
    assert API_SETTINGS.database_url.startswith("postgresql://")
    # The database's password is a Secret's, never a ConfigMap's.
    for source in API["envFrom"]:
        if "configMapRef" in source:
            config = RESOURCES[f"ConfigMap/{source['configMapRef']['name']}"]["data"]
            assert "LOSS_SERVICE_DATABASE_URL" not in config


def test_the_api_reaches_the_head_service_kuberay_creates() -> None:
    host, _, port = API_SETTINGS.ray_address.rpartition(":")
    assert (host, int(port)) == head_service()
    gcs_ports = {p["containerPort"] for p in ray_container(HEAD)["ports"]}
    assert int(port) in gcs_ports, "KubeRay's head Service exposes the head container's ports"


def test_the_api_joins_the_cluster_as_a_node_that_trains_nothing() -> None:
    """A Ray driver needs a Ray node on its own host: the replica starts one, with no CPUs
    or GPUs, at the address the service uses, then becomes the service."""
    script = " ".join(API["command"] + API["args"])
    assert re.search(r'ray start --address="\$LOSS_SERVICE_RAY_ADDRESS"', script)
    assert "--num-cpus=0" in script and "--num-gpus=0" in script
    assert script.rstrip().endswith("&& exec loss-service")


def test_ray_nodes_run_the_service_image_and_need_no_secrets() -> None:
    """The actors run the replicas' code, and get their settings with each job (the API keys
    excepted): the Ray pods are given neither the database URL nor the API keys."""
    repository = API["image"].rpartition(":")[0]
    assert ray_container(HEAD)["image"] == API["image"] == ray_container(GROUPS["cpu"])["image"]
    for name, group in GROUPS.items():
        spec = ray_container(group)
        assert spec["image"].rpartition(":")[0] == repository, name
        assert "envFrom" not in spec, name
        named = {key for key in environment(spec) if key.startswith("LOSS_SERVICE_")}
        assert not named & {"LOSS_SERVICE_DATABASE_URL", "LOSS_SERVICE_API_KEYS"}, name


def test_ray_nodes_read_datasets_where_the_replicas_point_them() -> None:
    """An actor reads the data folder the launching replica names (unless its node sets
    LOSS_SERVICE_DATA_DIR): that path must be a writable mount on every Ray node."""
    variables = environment(API)
    state = variables.get("LOSS_SERVICE_STATE_DIR", image_writes_to()["LOSS_SERVICE_STATE_DIR"])
    data_dir = variables.get("LOSS_SERVICE_DATA_DIR", f"{state}/{DATA_NAME}")
    for name, group in GROUPS.items():
        spec = ray_container(group)
        mounts = [m["mountPath"] for m in spec["volumeMounts"]]
        assert any(data_dir == m or data_dir.startswith(m + "/") for m in mounts), (name, mounts)


def test_ray_start_params_are_strings_and_real_options() -> None:
    scripts = pytest.importorskip("ray.scripts.scripts")
    options = {option.lstrip("-") for param in scripts.start.params for option in param.opts}
    for name, group in GROUPS.items():
        params = group["rayStartParams"]
        # The CRD's map[string]string: a bare number or boolean is refused by the API server.
        assert all(isinstance(value, str) for value in params.values()), (name, params)
        assert set(params) <= options, (name, set(params) - options)
        assert params.get("block", "true") == "true", "KubeRay blocks; the pod lives with Ray"
    assert "address" not in HEAD["rayStartParams"]
    assert HEAD["rayStartParams"]["num-cpus"] == "0", "the head schedules, it trains nothing"


def test_ray_cpus_fit_the_container_limits() -> None:
    for name, group in GROUPS.items():
        limit = ray_container(group)["resources"]["limits"]["cpu"]
        assert int(group["rayStartParams"].get("num-cpus", limit)) <= int(limit), name


def test_every_ray_container_brings_probes_that_need_no_dashboard() -> None:
    """Without probes of its own KubeRay adds HTTP ones to the dashboard agent, which the
    minimal Ray of the image does not run: the pods would never be ready."""
    for name, group in GROUPS.items():
        spec = ray_container(group)
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            checked = ports[spec[probe]["tcpSocket"]["port"]]
            if name == "head":
                assert checked == head_service()[1], (name, probe)
            else:
                assert checked == int(group["rayStartParams"]["node-manager-port"]), (name, probe)


def test_ray_nodes_have_shared_memory_for_the_object_store() -> None:
    for name, group in GROUPS.items():
        spec = ray_container(group)
        shm = {m["name"] for m in spec["volumeMounts"] if m["mountPath"] == "/dev/shm"}
        volumes = {v["name"]: v for v in group["template"]["spec"]["volumes"]}
        (volume,) = shm
        assert volumes[volume]["emptyDir"]["medium"] == "Memory", name


def test_the_gpu_group_offers_a_gpu() -> None:
    spec = ray_container(GROUPS["gpu"])
    assert spec["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert GROUPS["gpu"]["template"]["spec"]["nodeSelector"]


def test_the_cluster_runs_the_ray_the_project_pins() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = [re.fullmatch(r"ray(\[[^\]]*\])?==(\S+)", pin) for pin in extras.get("ray", [])]
    versions = [pin[2] for pin in pins if pin]
    if not versions:
        pytest.skip("pyproject.toml has no ray extra pinning ray")
    assert CLUSTER["spec"]["rayVersion"] == versions[0]


def test_ray_nodes_keep_metrics_in_memory(tmp_path: Path) -> None:
    """The image names a multiprocess metrics folder that only `loss-service` creates: on a Ray
    node, where nothing creates it, importing the service's metrics would fail. The nodes
    serve no /metrics and empty the variable."""
    for name, group in GROUPS.items():
        assert environment(ray_container(group))["PROMETHEUS_MULTIPROC_DIR"] == "", name
    importing = [sys.executable, "-c", "import service.observability.metrics"]
    for folder, works in ((str(tmp_path / "absent"), False), ("", True)):
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        done = subprocess.run(importing, env=env, cwd=ROOT, capture_output=True, timeout=120)
        assert (done.returncode == 0) is works, (folder, done.stderr[-400:])
