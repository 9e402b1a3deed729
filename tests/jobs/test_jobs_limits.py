"""What protects the jobs API from hostile or careless clients: bounded loss series, limits on
a job's cost, deletion and retention, ownership and per-key quotas, strict bodies, and answers
(4xx, never 500) to values that overflow the database's integers."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.jobs.access import owner_of_key
from service.jobs.records import RecordWriter, RunningJob
from service.jobs.stores.sqlite import SqliteJobStore

from .conftest import wait_for_job, wait_until
from .test_jobs_restart import record

QUICK = {"epochs": 1, "train_samples": 256, "test_samples": 64, "seed": 1}
LONG = {"epochs": 1000, "train_samples": 512, "test_samples": 32, "seed": 1}
TOO_BIG = 2**63  # one more than SQLite's largest integer


# Loss series


class _Process:
    """Stands in for the worker's process handle; the writer never touches it."""


def test_loss_series_stays_bounded_and_evenly_spaced(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    store.insert(record("j", "running"), "status", {"status": "running"})
    writer = RecordWriter(store, lambda job_id: None, max_points=64)
    job = RunningJob("j", _Process(), log_every=1)  # type: ignore[arg-type]
    sizes = []
    for step in range(1, 20_001):  # batch_size 1, log_every 1: one point per step
        writer.on_message(job, {"type": "loss", "step": step, "epoch": 1, "loss": 1 / step})
        if step % 1000 == 0:
            with sqlite3.connect(store.path) as db:
                sizes.append(db.execute("SELECT length(record) FROM jobs").fetchone()[0])
    series = store.with_points([store.get("j") or {}])[0]["train_loss_series"]
    steps = [point["step"] for point in series["points"]]
    assert 32 <= len(steps) <= 64
    # Evenly spaced, on the spacing the record announces, from the first kept step on.
    every = series["every_steps"]
    assert every == 512 and steps == list(range(every, every * (len(steps) + 1), every))
    assert series["points"][0] == {"step": every, "epoch": 1, "loss": 1 / every}
    # The stored record does not grow with the series.
    assert max(sizes) - min(sizes) < 16 and max(sizes) < 2000
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT count(*) FROM job_loss_points").fetchone()[0] == len(steps)


def test_a_real_job_with_log_every_1_keeps_a_small_series(
    jobs_client: Callable[..., Any],
) -> None:
    client = jobs_client(job_max_loss_points=16)
    body = {**QUICK, "batch_size": 1, "log_every": 1, "train_samples": 200}
    job = client.post("/v1/jobs/mnist", json=body).json()
    job = wait_for_job(client, job["id"], {"succeeded", "failed"})
    assert job["status"] == "succeeded", job
    series = job["train_loss_series"]
    assert series["every_steps"] == 16  # 200 points, halved until at most 16: every 16th
    assert [p["step"] for p in series["points"]] == list(range(16, 201, 16))
    assert job["progress"]["loss"] is not None
    db = client.app.state.job_manager.store.path
    with sqlite3.connect(db) as conn:
        size = conn.execute("SELECT length(record) FROM jobs").fetchone()[0]
    assert size < 4000


# Limits on a job's cost


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"epochs": 1000, "batch_size": 1}, "epochs", "LOSS_SERVICE_MAX_JOB_STEPS"),
        ({"hidden_units": 8192}, "hidden_units", "LOSS_SERVICE_MAX_MODEL_BYTES"),
        ({"seed": False}, "seed", "integer"),
        ({"epochs": 2.0}, "epochs", "integer"),
        ({"learning_rate": True}, "learning_rate", "number"),
    ],
)
def test_costly_or_loose_configs_are_422_naming_the_field(
    client: Any, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/v1/jobs/mnist", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["body", field]
    assert words in problem["errors"][0]["msg"]
    assert client.get("/v1/jobs").json()["total"] == 0


def test_limits_follow_their_settings(make_client: Callable[..., Any]) -> None:
    client = make_client(max_job_steps=100, max_model_bytes=100_000)
    answer = client.post("/v1/jobs/mnist", json={"epochs": 1, "train_samples": 6401})
    assert answer.status_code == 422
    assert "101 training steps" in answer.json()["errors"][0]["msg"].replace(",", "")
    too_wide = client.post("/v1/jobs/mnist", json={"hidden_units": 32, **QUICK})
    assert too_wide.json()["errors"][0]["msg"].endswith("hidden_units <= 31")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/jobs/mnist", b'{"epochs": "\xff"}'), ("/v1/jobs/x/predict", b'{"images": "\xfe"}')],
)
def test_non_utf8_bodies_are_the_documented_422(client: Any, path: str, body: bytes) -> None:
    if path.endswith("predict"):
        store = client.app.state.job_manager.store
        store.insert(record("x", "succeeded"), "status", {"status": "succeeded"})
        model = client.app.state.job_manager.models_dir / "x.safetensors"
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(b"")
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/malformed-body")
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/jobs/mnist"]["post"]
    assert "422" in operation["responses"] and "413" in operation["responses"]


def test_a_body_larger_than_any_config_is_413(client: Any) -> None:
    response = client.post("/v1/jobs/mnist", content=b" " * 70_000)
    assert response.status_code == 413
    assert client.post("/v1/jobs/mnist", content=b"[1]").status_code == 422


# Integers past SQLite's range


def test_overflowing_offset_and_event_ids_are_422(client: Any) -> None:
    response = client.get("/v1/jobs", params={"offset": TOO_BIG})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "offset"]
    assert client.get("/v1/jobs", params={"offset": TOO_BIG - 1}).json()["jobs"] == []
    store = client.app.state.job_manager.store
    store.insert(record("done", "succeeded"), "status", {"status": "succeeded"})
    stream = client.get("/v1/jobs/done/events", headers={"Last-Event-ID": str(TOO_BIG)})
    assert stream.status_code == 422
    assert stream.headers["content-type"] == "application/problem+json"
    query = client.get("/v1/jobs/done/events", params={"last_event_id": TOO_BIG})
    assert query.status_code == 422
    largest = client.get("/v1/jobs/done/events", headers={"Last-Event-ID": str(TOO_BIG - 1)})
    assert largest.status_code == 200


# A damaged record


def test_a_record_with_bad_json_is_reported_and_skipped(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = client.app.state.job_manager.store
    for job_id in ("a", "bad", "c"):
        store.insert(record(job_id, "succeeded"), "status", {"status": "succeeded"})
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE jobs SET record = '{\"id\": \"bad\", trunc' WHERE id = 'bad'")
    page = client.get("/v1/jobs")
    assert page.status_code == 200
    assert [job["id"] for job in page.json()["jobs"]] == ["c", "a"]
    assert client.get("/v1/jobs", params={"status": "succeeded", "limit": 2}).status_code == 200
    one = client.get("/v1/jobs/bad")
    assert one.status_code == 404 and "damaged" in one.json()["detail"]
    reported = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(reported) == 1 and "job bad" in reported[0]
    assert client.delete("/v1/jobs/bad").status_code == 204
    assert client.get("/v1/jobs").json()["total"] == 2


# Deleting and retention


def test_delete_of_a_finished_job_removes_record_series_and_model(
    jobs_client: Callable[..., Any],
) -> None:
    client = jobs_client()
    job = client.post("/v1/jobs/mnist", json={**QUICK, "log_every": 1}).json()
    assert wait_for_job(client, job["id"], {"succeeded"})["train_loss_series"]["points"]
    manager = client.app.state.job_manager
    model = manager.models_dir / f"{job['id']}.safetensors"
    assert model.is_file()
    response = client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 204
    assert not model.exists()
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert client.get(f"/v1/jobs/{job['id']}/model").status_code == 404
    with sqlite3.connect(manager.store.path) as db:
        for table in ("jobs", "job_events", "job_loss_points"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_retention_deletes_old_and_surplus_finished_jobs(
    jobs_client: Callable[..., Any], tmp_path: Path
) -> None:
    store = SqliteJobStore(tmp_path / "var" / "jobs.sqlite3")
    models = tmp_path / "var" / "models"
    models.mkdir(parents=True)
    finished = {
        "ancient": "2001-01-01T00:00:00.000Z",
        "old": "2030-01-01T00:00:00.000Z",
        "older": "2030-01-02T00:00:00.000Z",
        "new": "2999-01-01T00:00:00.000Z",
    }
    for job_id, when in finished.items():
        store.insert(record(job_id, "succeeded", finished_at=when), "status", {})
        (models / f"{job_id}.safetensors").write_bytes(b"model")
    config = {**record("x", "queued")["config"], **LONG}
    store.insert(record("waiting", "queued", config=config), "status", {})
    store.close()
    # By age: "ancient" finished long ago. By count: of the other three, the newest two stay.
    client = jobs_client(job_retention_days=365, job_retention_count=2)
    wait_until(lambda: client.get("/v1/jobs/old").status_code == 404, timeout=10)
    ids = {job["id"] for job in client.get("/v1/jobs").json()["jobs"]}
    assert {"older", "new"} <= ids and not {"ancient", "old"} & ids
    assert sorted(p.name for p in models.iterdir()) == ["new.safetensors", "older.safetensors"]
    assert "waiting" in ids  # never removed while queued or running
    assert client.delete("/v1/jobs/waiting").json()["status"] == "cancelled"


# Ownership and quotas


def test_jobs_belong_to_the_key_that_created_them(jobs_client: Callable[..., Any]) -> None:
    client = jobs_client(api_keys=["alice", "bob"], admin_keys=["root"], max_jobs_per_key=1)

    def as_(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    job = client.post("/v1/jobs/mnist", json=LONG, headers=as_("alice"))
    assert job.status_code == 202
    job_id = job.json()["id"]
    # Another key: as if the job did not exist.
    for method, suffix in [("GET", ""), ("DELETE", ""), ("GET", "/events"), ("GET", "/model")]:
        answer = client.request(method, f"/v1/jobs/{job_id}{suffix}", headers=as_("bob"))
        assert answer.status_code == 404, (method, suffix)
    assert client.get("/v1/jobs", headers=as_("bob")).json()["total"] == 0
    assert client.get("/v1/jobs", headers=as_("alice")).json()["total"] == 1
    # The admin key sees every job.
    assert client.get(f"/v1/jobs/{job_id}", headers=as_("root")).status_code == 200
    assert client.get("/v1/jobs", headers=as_("root")).json()["total"] == 1
    # A per-key quota: alice has her one active job; bob may still submit.
    second = client.post("/v1/jobs/mnist", json=QUICK, headers=as_("alice"))
    assert second.status_code == 429
    assert "LOSS_SERVICE_MAX_JOBS_PER_KEY=1" in second.json()["detail"]
    assert second.headers["Retry-After"]
    theirs = client.post("/v1/jobs/mnist", json=QUICK, headers=as_("bob"))
    assert theirs.status_code == 202
    # The database holds a hash of the key, never the key.
    db = client.app.state.job_manager.store.path
    with sqlite3.connect(db) as conn:
        owners = {row[0] for row in conn.execute("SELECT owner FROM jobs")}
    assert owners == {owner_of_key("alice"), owner_of_key("bob")}
    assert b"alice" not in Path(db).read_bytes()
    # Cancelling frees the quota.
    cancelled = client.delete(f"/v1/jobs/{job_id}", headers=as_("alice"))
    assert cancelled.json()["status"] == "cancelled"
    again = client.post("/v1/jobs/mnist", json=QUICK, headers=as_("alice"))
    assert again.status_code == 202
    for key, answer in (("bob", theirs), ("alice", again)):
        wait_for_job(_Authed(client, as_(key)), answer.json()["id"], {"succeeded", "failed"})


class _Authed:
    """A client that sends a key with each GET (for ``wait_for_job``)."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def get(self, url: str) -> Any:
        return self.client.get(url, headers=self.headers)


def test_the_done_event_carries_the_loss_series(jobs_client: Callable[..., Any]) -> None:
    client = jobs_client()
    job = client.post("/v1/jobs/mnist", json={**QUICK, "log_every": 2}).json()
    text = client.get(f"/v1/jobs/{job['id']}/events").text
    done = next(block for block in text.split("\n\n") if "event: done" in block)
    data = orjson.loads(done.split("data: ", 1)[1])
    assert len(data["train_loss_series"]["points"]) == 2  # 4 steps, every 2nd
