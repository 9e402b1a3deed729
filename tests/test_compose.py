"""docker-compose.yml agrees with the service, the image and itself: the fleet profile's
replicas get real settings that name its own PostgreSQL and Ray head, the same nginx
configuration fronts both replicas (event streams unbuffered), and the default and gpu
services stay out of the fleet. (.ci/run checks the file against the compose specification
and with `docker-compose config`.)"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service.settings import Settings
from tests.support.manifests import DOCKERFILE, ROOT, SETTING_VARIABLES, settings_from

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
FLEET = {name for name, service in SERVICES.items() if "fleet" in service.get("profiles", [])}
NGINX = (ROOT / "deploy" / "nginx" / "loss-service.conf").read_text()
UPSTREAM_NAME = "loss-service-upstream"


def aliases(service: dict[str, Any]) -> list[str]:
    networks = service.get("networks", {})
    return (networks.get("fleet") or {}).get("aliases", []) if isinstance(networks, dict) else []


# The services nginx's upstream name means on the fleet network.
REPLICAS = sorted(name for name in FLEET if UPSTREAM_NAME in aliases(SERVICES[name]))


def interpolated(value: Any) -> str:
    """A value as Compose passes it when no variable is set: defaults, `$$` as `$`."""
    text = str(value)
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    unset = re.search(r"\$\{?[A-Z]", text.replace("$$", ""))
    assert unset is None, f"a variable without a default: {text}"
    return text.replace("$$", "$")


def environment(name: str) -> dict[str, str]:
    return {key: interpolated(value) for key, value in SERVICES[name]["environment"].items()}


def command(name: str) -> str:
    return " ".join(interpolated(part) for part in SERVICES[name]["command"])


def test_the_fleet_has_its_parts() -> None:
    parts = {"postgres", "ray-head", "ray-worker", "loss-service-a", "loss-service-b"}
    assert parts | {"fleet-proxy"} == FLEET
    assert REPLICAS == ["loss-service-a", "loss-service-b"]
    assert SERVICES["postgres"]["image"].startswith("postgres:16-bookworm")


def test_the_default_and_gpu_services_stay_out_of_the_fleet() -> None:
    for name in set(SERVICES) - FLEET:
        assert "fleet" not in SERVICES[name].get("networks", {}), name
    for name in FLEET:
        assert list(SERVICES[name]["networks"]) == ["fleet"], name


@pytest.mark.parametrize("name", sorted(FLEET - {"postgres", "fleet-proxy"}))
def test_fleet_images_are_built_with_the_extras(name: str) -> None:
    assert re.search(r"^ARG EXTRAS=$", DOCKERFILE, re.MULTILINE), "EXTRAS defaults to none"
    extras = set(SERVICES[name]["build"]["args"]["EXTRAS"].split(","))
    assert extras == {"ray", "postgres"}
    assert SERVICES[name]["image"] == "loss-service:fleet"


@pytest.mark.parametrize("name", REPLICAS)
def test_replicas_get_real_settings(name: str) -> None:
    variables = environment(name)
    named = {key for key in variables if key.startswith("LOSS_SERVICE_")}
    assert named <= SETTING_VARIABLES, named - SETTING_VARIABLES
    settings = settings_from(variables)
    assert settings.jobs_executor == "ray"
    database = urlsplit(settings.database_url or "")
    postgres = SERVICES["postgres"]["environment"]
    assert database.scheme == "postgresql" and database.hostname == "postgres"
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == interpolated(postgres["POSTGRES_PASSWORD"])
    assert database.path == f"/{postgres['POSTGRES_DB']}"


@pytest.mark.parametrize("name", ["ray-head", "ray-worker"])
def test_ray_nodes_keep_metrics_in_memory_and_need_no_settings(name: str) -> None:
    """No `loss-service` start creates the image's multiprocess metrics folder on a Ray node
    (tests/test_kubernetes_fleet.py shows why that matters); the actors get their settings
    with each job, and read datasets where the replicas do (the shared cache volume)."""
    assert environment(name)["PROMETHEUS_MULTIPROC_DIR"] == ""
    assert not any(key.startswith("LOSS_SERVICE_") for key in environment(name))
    assert SERVICES[name]["volumes"] == SERVICES["loss-service-a"]["volumes"]


def test_the_ray_address_is_the_head_and_its_port() -> None:
    address = settings_from(environment("loss-service-a")).ray_address
    host, _, port = address.rpartition(":")
    assert host == "ray-head"
    assert f"--port={port}" in command("ray-head") and "--head" in command("ray-head")
    assert f"--address={address}" in command("ray-worker")
    assert "--num-cpus=0" in command("ray-head"), "the head schedules, it trains nothing"


@pytest.mark.parametrize("name", REPLICAS)
def test_a_replica_joins_the_cluster_as_a_node_that_trains_nothing(name: str) -> None:
    script = command(name)
    assert re.search(r'ray start --address="\$LOSS_SERVICE_RAY_ADDRESS"', script)
    assert "--num-cpus=0" in script and "--num-gpus=0" in script
    assert script.rstrip().endswith("&& exec loss-service")


def test_the_fleet_proxy_fronts_both_replicas_with_the_same_nginx_configuration() -> None:
    proxy = SERVICES["fleet-proxy"]
    assert proxy["volumes"] == SERVICES["proxy"]["volumes"]
    assert set(proxy["depends_on"]) == set(REPLICAS)
    port = Settings().port
    assert re.search(rf"server {UPSTREAM_NAME}:{port};", NGINX)
    for name in REPLICAS:
        assert settings_from(environment(name)).port == port


def test_event_streams_pass_the_proxy_unbuffered() -> None:
    events = NGINX[NGINX.index("location ~ ^/v1/jobs/[^/]+/events$") :]
    events = events[: events.index("}")]
    assert "proxy_buffering off;" in events
    assert re.search(r"proxy_read_timeout \d+h;", events)
