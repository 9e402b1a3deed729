"""Several server processes on one database (``--workers N``): one leader runs the jobs, any
process accepts, cancels and streams them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .conftest import wait_for_job

QUICK = {"epochs": 1, "train_samples": 256, "test_samples": 64, "seed": 1}
LONG = {"epochs": 1000, "train_samples": 512, "test_samples": 32, "seed": 1}


def test_follower_submits_streams_and_cancels(jobs_client: Callable[..., Any]) -> None:
    leader, follower = jobs_client(), jobs_client()
    assert leader.app.state.job_manager.leader
    assert not follower.app.state.job_manager.leader

    job = follower.post("/v1/jobs/mnist", json=QUICK).json()
    with follower.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
        text = "".join(stream.iter_text())
    assert text.rstrip().splitlines()[-2] == "event: done"
    assert wait_for_job(leader, job["id"], {"succeeded"})["metrics"]
    assert follower.get(f"/v1/jobs/{job['id']}/model").status_code == 200

    running = follower.post("/v1/jobs/mnist", json=LONG).json()
    deadline = time.monotonic() + 60
    while not (follower.get(f"/v1/jobs/{running['id']}").json()["progress"] or {}).get(
        "global_step"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = follower.delete(f"/v1/jobs/{running['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"


def test_follower_takes_over_when_the_leader_stops(jobs_client: Callable[..., Any]) -> None:
    leader, follower = jobs_client(), jobs_client()
    leader.__exit__(None, None, None)
    job = follower.post("/v1/jobs/mnist", json=QUICK).json()
    assert wait_for_job(follower, job["id"], {"succeeded", "failed"})["status"] == "succeeded"
    assert follower.app.state.job_manager.leader
