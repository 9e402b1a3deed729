"""``/metrics``: the counters move with the requests, labelled by route template and loss name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.observability import metrics
from tests.jobs.conftest import copy_fixture, wait_for_job

ROOT = Path(__file__).resolve().parents[1]
MSE = {"input": [1.5, 2.0, 3.2], "target": [1.0, 2.5, 2.8], "grad": True}


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` in an exposition; 0 when it is absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def scrape(client: Any) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return str(response.text)


def test_a_loss_request_moves_the_request_latency_and_evaluation_metrics(client: Any) -> None:
    route = {"method": "POST", "route": "/v1/losses/mse_loss"}
    before = scrape(client)
    assert client.post("/v1/losses/mse_loss", json=MSE).status_code == 200
    assert client.post("/v1/losses/mse_loss", json=MSE).status_code == 200
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("loss_service_http_requests_total", **route, status="200") == 2
    assert moved("loss_service_http_request_duration_seconds_count", **route) == 2
    assert moved("loss_service_http_request_duration_seconds_sum", **route) > 0
    assert moved("loss_service_loss_evaluations_total", loss="mse_loss") == 2


def test_aliases_count_under_the_loss_name_and_failures_are_not_evaluations(client: Any) -> None:
    before = scrape(client)
    assert client.post("/v1/losses/MSELoss", json=MSE).status_code == 200
    bad = client.post("/v1/losses/mse_loss", json={"input": [1.0, 2.0]})  # no target
    assert bad.status_code == 422
    after = scrape(client)
    assert (
        value(after, "loss_service_loss_evaluations_total", loss="mse_loss")
        - value(before, "loss_service_loss_evaluations_total", loss="mse_loss")
        == 1
    )
    assert value(after, "loss_service_loss_evaluations_total", loss="MSELoss") == 0
    by_name = {"method": "POST", "route": "/v1/losses/{name}", "status": "200"}
    assert (
        value(after, "loss_service_http_requests_total", **by_name)
        - value(before, "loss_service_http_requests_total", **by_name)
        == 1
    )
    unprocessable = {"method": "POST", "route": "/v1/losses/mse_loss", "status": "422"}
    assert value(after, "loss_service_http_requests_total", **unprocessable) >= 1


def test_routes_are_labelled_by_template_never_by_raw_path(client: Any) -> None:
    assert client.get("/v1/jobs/not-a-job-4f2a").status_code == 404
    assert client.get("/no/such/path-81c3").status_code == 404
    text = scrape(client)
    assert "not-a-job-4f2a" not in text and "path-81c3" not in text
    assert value(text, "loss_service_http_requests_total", route="/v1/jobs/{job_id}", status="404")
    assert value(text, "loss_service_http_requests_total", route="<unmatched>", status="404")


def test_a_training_job_moves_the_job_metrics(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    copy_fixture(tmp_path / "data")
    client = make_client(job_progress_interval_s=0.05)
    before = scrape(client)
    config = {"epochs": 1, "train_samples": 256, "test_samples": 64, "seed": 1}
    job = client.post("/v1/jobs/mnist", json=config).json()
    wait_for_job(client, job["id"], {"succeeded", "failed"})
    after = scrape(client)
    for status in ("queued", "running", "succeeded"):
        moved = value(after, "loss_service_jobs_total", status=status) - value(
            before, "loss_service_jobs_total", status=status
        )
        assert moved == 1, status
    assert value(after, "loss_service_jobs_current", status="succeeded") == 1
    assert value(after, "loss_service_jobs_current", status="running") == 0
    assert value(after, "loss_service_training_samples_per_second") == 0  # none runs now


def test_training_throughput_adds_up_running_jobs_and_forgets_finished_ones() -> None:
    def gauge() -> float:
        return value(metrics.exposition()[0].decode(), "loss_service_training_samples_per_second")

    metrics.observe_job_event("job-a", "progress", {"samples_per_s": 1000.0})
    metrics.observe_job_event("job-b", "progress", {"samples_per_s": 500.0, "phase": "training"})
    assert gauge() == 1500
    metrics.observe_job_event("job-a", "status", {"status": "cancelled"})
    assert gauge() == 500
    metrics.observe_job_event("job-b", "status", {"status": "failed"})
    assert gauge() == 0


def test_grading_checks_are_counted_by_result(client: Any) -> None:
    before = scrape(client)
    submission = {"loss": 0.22, "grad": {"input": [0.0, 0.0, 0.0]}}  # right loss, wrong grad
    body = {"loss": "mse_loss", **MSE, "grad": ["input"], "submission": submission}
    response = client.post("/v1/grade", json=body)
    assert response.status_code == 200, response.text
    assert [c["passed"] for c in response.json()["checks"]] == [True, False]
    metrics.record_grading_check(False)
    after = scrape(client)
    for result, count in (("passed", 1), ("failed", 2)):
        moved = value(after, "loss_service_grading_checks_total", result=result) - value(
            before, "loss_service_grading_checks_total", result=result
        )
        assert moved == count


def test_metrics_of_several_worker_processes_are_added_up(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    worker = "from service.observability import metrics; metrics.record_loss_evaluation('l1_loss')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    reader = textwrap.dedent(
        """
        from service.observability import metrics
        print(metrics.exposition()[0].decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()
    assert value(out, "loss_service_loss_evaluations_total", loss="l1_loss") == 2


@pytest.mark.parametrize("leftover", ["counter_123.db", "gauge_livesum_456.db"])
def test_the_multiprocess_folder_is_emptied_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leftover: str
) -> None:
    from service.observability.multiprocess import reset_multiprocess_dir

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / leftover).write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert reset_multiprocess_dir() == folder
    assert list(folder.iterdir()) == []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert reset_multiprocess_dir() is None
