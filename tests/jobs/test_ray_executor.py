"""The Ray executor against a real Ray cluster (``ray start`` on 127.0.0.2) and a SQLite store
file that this process and the actors share (one host): jobs succeed with their events and
model, warm actors start jobs at once, cancel stops a job within a step from any replica, a job
outlives the process that launched it, and a dead actor fails its record."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.jobs.config import JobConfig
from service.jobs.records import TERMINAL, now_iso
from service.jobs.stores import JobStore, Record, open_store
from service.settings import Settings, variable_name
from tests.jobs.conftest import copy_fixture
from tests.support.live import ROOT
from tests.support.ray_cluster import RayCluster, ray_available

if not ray_available():
    if os.environ.get("LOSS_SERVICE_REQUIRE_TOOLS") == "1":
        pytest.fail("ray is required here (LOSS_SERVICE_REQUIRE_TOOLS=1)", pytrace=False)
    pytest.skip("ray is not installed (pip install -e '.[ray]')", allow_module_level=True)

import ray

from service.jobs.executors.ray import RayExecutor

pytestmark = pytest.mark.slow

WARM_START_S = 1.0
LONG = 1000  # epochs of a job that is stopped long before it ends (~0.03 s each)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with RayCluster(num_cpus=4) as running:
        try:
            yield running
        finally:
            ray.shutdown()  # before the cluster goes: a driver without its GCS exits


@pytest.fixture
def home(tmp_path: Path) -> Path:
    copy_fixture(tmp_path / "data")
    return tmp_path


@pytest.fixture
def make_settings_for(cluster: RayCluster, home: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "state_dir": home / "state",
            "data_dir": home / "data",
            "db_path": home / "jobs.sqlite3",
            "models_dir": home / "models",
            "jobs_executor": "ray",
            "ray_address": cluster.address,
            "ray_namespace": "main",
            "ray_warm_actors": 1,
            "job_progress_interval_s": 0.05,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
def store(make_settings_for: Callable[..., Settings]) -> Iterator[JobStore]:
    opened = open_store(make_settings_for())
    yield opened
    opened.close()


@pytest.fixture
def make_executor(store: JobStore, make_settings_for: Callable[..., Settings]) -> Iterator[Any]:
    made: list[RayExecutor] = []

    def make(**overrides: Any) -> RayExecutor:
        executor = RayExecutor(make_settings_for(**overrides), store)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        asyncio.run(executor.stop(5.0))


def running_record(store: JobStore, **config: Any) -> Record:
    """A job as the manager hands it to ``launch``: already ``running`` in the store."""
    config = JobConfig.model_validate({"device": "cpu", "seed": 1, "log_every": 5, **config})
    record: Record = {
        "id": f"ray{time.time_ns()}",
        "status": "running",
        "config": config.model_dump(mode="json"),
        "created_at": now_iso(),
        "started_at": now_iso(),
        "finished_at": None,
        "progress": {"phase": "starting"},
        "metrics": [],
        "train_loss_series": {"every_steps": config.log_every, "points": []},
        "timings": {},
        "device": None,
        "error": None,
        "model": None,
    }
    store.insert(record, "status", {"status": "running"})
    return record


def wait_record(
    store: JobStore, job_id: str, done: Callable[[Record], bool], timeout: float = 60.0
) -> Record:
    deadline = time.monotonic() + timeout
    while True:
        record = store.get(job_id)
        assert record is not None
        if done(record):
            return record
        if record["status"] in TERMINAL or time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {record['status']}: {record}")
        time.sleep(0.05)


def final(record: Record) -> bool:
    return record["status"] in TERMINAL


def training(record: Record) -> bool:
    return (record.get("progress") or {}).get("phase") == "training"


def events(store: JobStore, job_id: str) -> list[str]:
    return [event for _, event, _ in store.events_after(job_id, 0)]


def test_cold_then_warm_job(
    store: JobStore, make_executor: Callable[..., RayExecutor], home: Path
) -> None:
    executor = make_executor(ray_namespace="cold", ray_warm_actors=0)
    starts = []
    for _ in range(2):
        record = running_record(store, epochs=2, hidden_units=32)
        executor.launch(record)
        assert executor.running() == [record["id"]]
        done = wait_record(store, record["id"], final, timeout=120)
        assert done["status"] == "succeeded", done
        assert done["device"] == "cpu" and len(done["metrics"]) == 2
        assert {"progress", "epoch", "status"} <= set(events(store, record["id"]))
        assert store.model_path(record["id"], home / "cache") is not None
        starts.append(done["timings"]["worker_start_s"])
    print(f"\nworker_start_s: cold actor {starts[0]:.3f} s, warm actor {starts[1]:.3f} s")
    assert starts[1] < WARM_START_S < starts[0]
    assert len(executor.pool.actors()) == 1  # the actor served both jobs


def test_devices_are_the_clusters(make_executor: Callable[..., RayExecutor]) -> None:
    executor = make_executor()
    assert executor.device_problem("cpu") is None and executor.device_problem("auto") is None
    assert "MPS" in (executor.device_problem("mps") or "")
    assert "use cuda" in (executor.device_problem("cuda:1") or "")
    deadline = time.monotonic() + 30
    while "has no GPU" not in (problem := executor.device_problem("cuda") or ""):
        assert "not reported its GPUs yet" in problem and time.monotonic() < deadline
        time.sleep(0.1)


def test_warm_actor_cancel_from_another_replica(
    store: JobStore, make_executor: Callable[..., RayExecutor]
) -> None:
    leader = make_executor()
    leader.start()
    deadline = time.monotonic() + 90
    while not any(s is None for s in leader.pool.states(leader.pool.actors()).values()):
        assert time.monotonic() < deadline, "no warm actor started"
        time.sleep(0.5)
    record = running_record(store, epochs=LONG)
    leader.launch(record)
    trained = wait_record(store, record["id"], training)
    assert trained["timings"]["worker_start_s"] < WARM_START_S

    replica = make_executor()  # another API replica: it does not drive the job
    assert replica.running() == []
    assert replica.alive(record) and not replica.alive({"id": "no-such-job"})
    asked = time.monotonic()
    assert replica.cancel(record["id"])
    done = wait_record(store, record["id"], final, timeout=30)
    assert done["status"] == "cancelled", done
    assert time.monotonic() - asked < 5.0
    assert done["progress"]["epoch"] < LONG
    deadline = time.monotonic() + 10
    while leader.running():  # its thread sees the run end within a poll
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not leader.alive(done)

    # At once again, while the leader may still be starting a warm actor to replace the one
    # taken: the job does not wait for that one.
    record = running_record(store, epochs=2)
    leader.launch(record)
    done = wait_record(store, record["id"], final)
    assert done["status"] == "succeeded"
    assert done["timings"]["worker_start_s"] < WARM_START_S


def test_job_outlives_the_process_that_launched_it(
    store: JobStore, make_executor: Callable[..., RayExecutor], home: Path, cluster: RayCluster
) -> None:
    record = running_record(store, epochs=300)
    settings = {
        variable_name(name): str(value)
        for name, value in {
            "data_dir": home / "data",
            "db_path": home / "jobs.sqlite3",
            "models_dir": home / "models",
            "state_dir": home / "state",
            "jobs_executor": "ray",
            "ray_address": cluster.address,
            "ray_namespace": "main",
            "job_progress_interval_s": 0.05,
        }.items()
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")}
    driver = subprocess.Popen(
        [sys.executable, "-m", "tests.support.ray_driver", record["id"]],
        cwd=ROOT,
        env={**env, **settings, **cluster.driver_env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "launched"
        wait_record(store, record["id"], training, timeout=90)
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    new_leader = make_executor()
    assert new_leader.alive(record)  # still training: recovery must not fail it
    assert new_leader.running() == [record["id"]]  # and the new leader follows it
    done = wait_record(store, record["id"], final, timeout=120)
    assert done["status"] == "succeeded", done
    assert len(done["metrics"]) == 300
    assert store.model_path(record["id"], home / "cache") is not None
    assert not new_leader.alive(done)


def test_stop_leaves_the_job_training(
    store: JobStore, make_executor: Callable[..., RayExecutor]
) -> None:
    executor = make_executor()
    record = running_record(store, epochs=100)
    executor.launch(record)
    wait_record(store, record["id"], training, timeout=90)
    started = time.monotonic()
    asyncio.run(executor.stop(5.0))
    assert time.monotonic() - started < 3.0 and executor.running() == []
    assert wait_record(store, record["id"], final, timeout=60)["status"] == "succeeded"


def test_a_dead_actor_fails_its_record(
    store: JobStore, make_executor: Callable[..., RayExecutor]
) -> None:
    executor = make_executor()
    record = running_record(store, epochs=LONG)
    executor.launch(record)
    wait_record(store, record["id"], training, timeout=90)
    found = executor.pool.find(record["id"])
    assert found is not None
    ray.kill(found[1])
    done = wait_record(store, record["id"], final, timeout=30)
    assert done["status"] == "failed"
    assert done["error"]["reason"] == "worker_crashed"
    assert found[0] in done["error"]["message"] and "died" in done["error"]["message"]


def test_with_postgresql_the_actor_wakes_every_replica(
    postgres_url: str, make_settings_for: Callable[..., Settings], home: Path
) -> None:
    """The fleet's store: the actor's writes reach the other replicas' change feeds, and the
    model goes into the database."""
    settings = make_settings_for(database_url=postgres_url)
    store, replica = open_store(settings), open_store(settings)
    woken: list[str] = []
    assert replica.listen(lambda kind, job_id: woken.append(job_id))
    executor = RayExecutor(settings, store)
    try:
        record = running_record(store, epochs=2, hidden_units=32)
        executor.launch(record)
        done = wait_record(replica, record["id"], final, timeout=120)
        assert done["status"] == "succeeded", done
        model = replica.model_path(record["id"], home / "cache")
        assert model is not None and model.stat().st_size == done["model"]["bytes"]
        assert woken.count(record["id"]) >= 3  # progress, epochs, status
    finally:
        asyncio.run(executor.stop(5.0))
        store.close()
        replica.close()


def test_the_cluster_talks_to_this_host_only(cluster: RayCluster) -> None:
    assert cluster.processes()
    assert cluster.non_loopback_connections() == []
