"""The fleet on one machine: a PostgreSQL server, a Ray cluster (a head and one worker node,
on 127.0.0.2) and two API replicas sharing both, each a real process started here and stopped
by PID.

Through replica A jobs are started; through replica B one is followed to ``done`` over SSE,
another is cancelled, a model is downloaded and used to predict. Replica A is SIGKILLed while a
job trains: the job keeps training on the cluster and its record completes, nothing is lost,
and both replicas (A restarted) list the same jobs. PostgreSQL comes from Debian's packages
(the version operators run, and the one ``.ci/run`` installs with apt); Ray from the
``ray`` extra.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.datasets.catalog import FILE_NAMES
from service.datasets.idx import read_idx
from tests.jobs.conftest import FIXTURE
from tests.support.live import Server, live_server
from tests.support.postgres import PostgresServer, need, start_postgres
from tests.support.ray_cluster import RayCluster, alive, ray_available

pytestmark = pytest.mark.slow

SHORT = {"epochs": 2, "train_samples": 512, "test_samples": 64, "seed": 7, "log_every": 2}
# Long enough to be caught training (thousands of steps), short enough to finish in CI.
LONGER = {"epochs": 6, "train_samples": 2048, "test_samples": 64, "seed": 8, "batch_size": 16}
ENDLESS = {"epochs": 1000, "train_samples": 512, "test_samples": 32, "seed": 9}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    pid = server.pid
    try:
        yield server
    finally:
        server.stop()
    assert not alive(pid)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    need(ray_available(), "Ray (pip install 'loss-service[ray]')")
    with RayCluster(num_cpus=1, worker_nodes=1, worker_cpus=1) as ray_cluster:
        yield ray_cluster
    assert ray_cluster.leftovers() == set()


def _replica(home: Path, postgres: PostgresServer, cluster: RayCluster, database: str) -> Any:
    return live_server(
        home,
        database_url=postgres.url_for(database),
        jobs_executor="ray",
        ray_address=cluster.address,
        ray_warm_actors="2",
        job_torch_threads="1",
        job_progress_interval_s="0.1",
        max_concurrent_jobs="2",
    )


def _job(server: Server, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/jobs/{job_id}", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait(server: Server, job_id: str, done: Any, timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = _job(server, job_id)
        if done(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} never got there: {job}"
        time.sleep(0.1)


def _events(server: Server, job_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    """The job's whole event stream, read until the server ends it after ``done``."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    with httpx.stream("GET", f"{server.url}/v1/jobs/{job_id}/events", timeout=240) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in stream.iter_lines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                block[name] = value
            elif not line:
                if "event" in block:
                    events.append((int(block["id"]), block["event"], json.loads(block["data"])))
                block = {}
    return events


def _ids(server: Server) -> list[str]:
    response = httpx.get(f"{server.url}/v1/jobs", params={"limit": 100}, timeout=30)
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["jobs"]]


def test_two_replicas_share_jobs_on_postgres_and_ray(
    postgres: PostgresServer, cluster: RayCluster, tmp_path: Path
) -> None:
    postgres.admin('CREATE DATABASE "fleet" TEMPLATE template0')
    with (
        _replica(tmp_path / "a", postgres, cluster, "fleet") as a,
        _replica(tmp_path / "b", postgres, cluster, "fleet") as b,
    ):
        start = {
            name: httpx.post(f"{a.url}/v1/jobs/mnist", json=body, timeout=30)
            for name, body in (("short", SHORT), ("endless", ENDLESS), ("longer", LONGER))
        }
        for response in start.values():
            assert response.status_code == 202, response.text
        short, endless, longer = (start[n].json()["id"] for n in ("short", "endless", "longer"))

        # B follows a job that A started, to its end, over SSE (pushed by LISTEN/NOTIFY).
        events = _events(b, short)
        assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
        names = [name for _, name, _ in events]
        assert names[0] == "status" and names[-1] == "done" and names.count("epoch") == 2
        final = events[-1][2]
        assert final["status"] == "succeeded" and final["device"] == "cpu"
        assert len(final["metrics"]) == 2 and final["model"]["bytes"] > 0

        # B downloads the model A's job trained, and predicts with it.
        model = httpx.get(f"{b.url}/v1/jobs/{short}/model", timeout=30)
        assert model.status_code == 200 and len(model.content) == final["model"]["bytes"]
        images = read_idx(FIXTURE / FILE_NAMES["test_images"], 3)[:8]
        labels = read_idx(FIXTURE / FILE_NAMES["test_labels"], 1)[:8]
        body = {
            "images": {
                "shape": [8, 28, 28],
                "dtype": "uint8",
                "base64": base64.b64encode(np.ascontiguousarray(images).tobytes()).decode(),
            }
        }
        predicted = httpx.post(f"{b.url}/v1/jobs/{short}/predict", json=body, timeout=30)
        assert predicted.status_code == 200, predicted.text
        classes = predicted.json()["classes"]
        assert (
            len(classes) == 8
            and sum(int(c == y) for c, y in zip(classes, labels.tolist(), strict=True)) >= 4
        )

        # B cancels a job that trains on the cluster: it stops within a step or so.
        _wait(b, endless, lambda job: ((job.get("progress") or {}).get("global_step") or 0) > 0)
        asked = time.monotonic()
        cancelled = httpx.delete(f"{b.url}/v1/jobs/{endless}", timeout=60)
        took = time.monotonic() - asked
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        print(f"cancel through the other replica took {took:.2f} s")
        assert took < 5.0

        # Both replicas list the same jobs.
        assert _ids(a) == _ids(b)

        # A leads (it started first: only the leader logs where the state is) and dies while
        # a job trains; the job goes on and its record completes.
        assert any("state: database" in line for line in a.log_lines())
        assert not any("state: database" in line for line in b.log_lines())
        _wait(b, longer, lambda job: ((job.get("progress") or {}).get("global_step") or 0) > 0)
        os.killpg(a.pid, signal.SIGKILL)
        a.process.wait(30)
        assert not alive(a.pid)
        done = _wait(b, longer, lambda job: job["status"] in ("succeeded", "failed", "cancelled"))
        assert done["status"] == "succeeded", done
        assert [m["epoch"] for m in done["metrics"]] == list(range(1, 7))
        assert done["error"] is None and done["progress"]["fraction"] == 1.0
        assert httpx.get(f"{b.url}/v1/jobs/{longer}/model", timeout=30).status_code == 200
        kinds = [name for _, name, _ in _events(b, longer)]
        assert kinds.count("epoch") == 6 and kinds[-1] == "done"

        # The cluster talked to this host only.
        assert cluster.non_loopback_connections() == []

    # A restarted (a new process on the same database) lists what B lists.
    with (
        _replica(tmp_path / "a2", postgres, cluster, "fleet") as a2,
        _replica(tmp_path / "b2", postgres, cluster, "fleet") as b2,
    ):
        listed = _ids(a2)
        assert listed == _ids(b2) and {short, endless, longer} <= set(listed)
        statuses = {job_id: _job(a2, job_id)["status"] for job_id in (short, endless, longer)}
        assert statuses == {short: "succeeded", endless: "cancelled", longer: "succeeded"}
