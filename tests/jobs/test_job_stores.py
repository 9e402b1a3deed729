"""One contract for both job stores: SQLite (one host) and PostgreSQL (a real server, a fresh
database per test). Each test runs against both and expects the same answers; "replicas" are
two store objects on one database, as two server processes would have."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from service.jobs.stores.base import PROGRESS_EVENTS_KEPT, DamagedRecord, JobStore, Record
from service.jobs.stores.sqlite import SqliteJobStore


@dataclass
class Backend:
    kind: str
    make: Callable[[], JobStore]
    damage: Callable[[str, str], None]  # (job id, text): store text as the job's record
    opened: list[JobStore] = field(default_factory=list)

    def open(self) -> JobStore:
        store = self.make()
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "jobs.sqlite3"

        def damage_sqlite(job_id: str, text: str) -> None:
            with sqlite3.connect(path) as db:
                db.execute("UPDATE jobs SET record = ? WHERE id = ?", (text, job_id))

        chosen = Backend("sqlite", lambda: SqliteJobStore(path, tmp_path / "models"), damage_sqlite)
    else:
        url: str = request.getfixturevalue("postgres_url")
        import psycopg

        from service.jobs.stores.postgres import PostgresJobStore

        def damage_postgres(job_id: str, text: str) -> None:
            with psycopg.connect(url) as db:
                db.execute("UPDATE jobs SET record = %s WHERE id = %s", (text, job_id))

        chosen = Backend("postgres", lambda: PostgresJobStore(url), damage_postgres)
    yield chosen
    for store in chosen.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> JobStore:
    return backend.open()


def job(job_id: str, status: str = "queued", finished_at: str | None = None) -> Record:
    """A record whose JSON must come back byte for byte: key order, unicode, a NUL, floats."""
    return {
        "id": job_id,
        "status": status,
        "zeta": {"b": 1, "a": [0.1, 1e-300, None, True]},
        "config": {"loss": "cross_entropy", "note": 'über ✓ \u0000 "quoted"'},
        "created_at": "2026-01-02T03:04:05.678Z",
        "finished_at": finished_at,
        "train_loss_series": {"every_steps": 10, "points": [{"step": 0, "loss": 9.5}]},
    }


def ids(events: list[tuple[int, str, str]]) -> list[int]:
    return [seq for seq, _, _ in events]


def test_records_read_back_byte_for_byte(store: JobStore) -> None:
    record = job("a")
    assert store.insert(record, "status", {"status": "queued"}, owner="alice") == 1
    got = store.get("a")
    assert got is not None and orjson.dumps(got) == orjson.dumps(record)
    assert store.head("a") == ("queued", "alice")
    assert store.get("missing") is None and store.head("missing") is None
    assert store.events_after("a", 0) == [(1, "status", '{"status":"queued"}')]


def test_event_ids_count_from_one_per_job(store: JobStore) -> None:
    store.insert(job("a"), "status", {})
    store.insert(job("b"), "status", {})
    assert store.update(job("a", "running"), "status", {"status": "running"}) == 2
    assert store.update(job("a", "running")) == 0  # no event: nothing appended
    assert store.update(job("a", "succeeded"), "status", {"n": 1}, done={"ok": True}) == 3
    assert store.events_after("a", 1) == [
        (2, "status", '{"status":"running"}'),
        (3, "status", '{"n":1}'),
        (4, "done", '{"ok":true}'),
    ]
    assert ids(store.events_after("b", 0)) == [1]
    assert store.events_after("a", 4) == []


def test_update_if_changes_only_from_the_expected_status(store: JobStore) -> None:
    store.insert(job("a"), "status", {})
    assert not store.update_if(job("a", "cancelled"), "running", "status", {})
    assert store.head("a") == ("queued", None) and ids(store.events_after("a", 0)) == [1]
    assert store.update_if(job("a", "cancelled"), "queued", "status", {"s": 1}, done={})
    assert store.head("a") == ("cancelled", None)
    assert [name for _, name, _ in store.events_after("a", 0)] == ["status", "status", "done"]


def test_replicas_racing_on_update_if_have_one_winner_each_time(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    jobs = [f"job{i}" for i in range(20)]
    for job_id in jobs:
        first.insert(job(job_id), "status", {})

    def take(store: JobStore, job_id: str) -> bool:
        return store.update_if(job(job_id, "running"), "queued", "status", {})

    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda args: take(*args), [(s, j) for j in jobs for s in (first, second)])
        )
    assert [results[i] + results[i + 1] for i in range(0, len(results), 2)] == [1] * len(jobs)
    for job_id in jobs:
        assert ids(second.events_after(job_id, 0)) == [1, 2]


def test_appends_from_replicas_at_once_get_consecutive_ids(backend: Backend) -> None:
    replicas = [backend.open(), backend.open()]
    replicas[0].insert(job("a"), "status", {})

    def append(i: int) -> int:
        return replicas[i % 2].update(job("a", "running"), "log", {"i": i})

    with ThreadPoolExecutor(4) as pool:
        seqs = list(pool.map(append, range(60)))
    assert sorted(seqs) == list(range(2, 62))
    assert ids(replicas[1].events_after("a", 0)) == list(range(1, 62))


def test_delete_removes_the_job_and_all_it_owns(store: JobStore, tmp_path: Path) -> None:
    for job_id in ("a", "b"):
        store.insert(job(job_id, "succeeded"), "status", {})
        store.add_point(job_id, 0, {"loss": 1.0})
        store.request_cancel(job_id)
    model = tmp_path / "trained.safetensors"
    model.write_bytes(b"weights")
    store.save_model("a", model)
    assert not store.delete("a", status="running")  # not while its status differs
    assert store.delete("a", status="succeeded")
    assert not store.delete("a")
    assert store.get("a") is None and store.events_after("a", 0) == []
    assert store.model_path("a", tmp_path / "cache") is None
    assert store.with_points([job("a")])[0]["train_loss_series"]["points"] == [
        {"step": 0, "loss": 9.5}
    ]
    assert store.take_cancels() == ["b"]
    assert store.delete("b") and store.page() == ([], 0)


def test_pages_counts_and_owners(store: JobStore) -> None:
    for i, (status, owner) in enumerate(
        [("queued", "alice"), ("running", "bob"), ("queued", "bob"), ("succeeded", None)]
    ):
        store.insert(job(f"j{i}", status), "status", {}, owner=owner)
    records, total = store.page()
    assert [r["id"] for r in records] == ["j3", "j2", "j1", "j0"] and total == 4
    records, total = store.page(limit=2, offset=1)
    assert [r["id"] for r in records] == ["j2", "j1"] and total == 4
    records, total = store.page(status="queued")
    assert [r["id"] for r in records] == ["j2", "j0"] and total == 2
    records, total = store.page(owner="bob")
    assert [r["id"] for r in records] == ["j2", "j1"] and total == 2
    assert store.page(status="queued", owner="bob")[1] == 1
    assert store.page(status="", limit=1)[1] == 4  # an empty status filters nothing
    assert store.count("queued") == 2 and store.count("queued", owner="alice") == 1
    assert store.count("failed") == 0
    assert [r["id"] for r in store.with_status("queued")] == ["j0", "j2"]  # oldest first


def test_expired_by_age_and_by_count(store: JobStore) -> None:
    finished = [
        ("succeeded", "2026-01-01T00:00:00.000Z"),
        ("failed", "2026-01-05T00:00:00.000Z"),
        ("cancelled", "2026-01-09T00:00:00.000Z"),
    ]
    for i, (status, finished_at) in enumerate(finished):
        store.insert(job(f"done{i}", status, finished_at), "status", {})
    store.insert(job("queued"), "status", {})
    store.insert(job("running", "running"), "status", {})
    assert store.expired("2026-01-06T00:00:00.000Z", None, 10) == ["done0", "done1"]
    assert store.expired(None, 1, 10) == ["done1", "done0"]  # all but the newest finished one
    assert store.expired("2026-01-02T00:00:00.000Z", 1, 10) == ["done0", "done1"]
    assert store.expired("2030-01-01T00:00:00.000Z", 0, 2) == ["done0", "done1"]
    assert store.expired(None, 5, 10) == [] and store.expired(None, None, 10) == []


def test_only_the_latest_progress_events_are_kept(store: JobStore) -> None:
    store.insert(job("a"), "status", {})
    last = 1 + PROGRESS_EVENTS_KEPT + 50
    for step in range(2, last + 1):
        store.update(job("a", "running"), "progress", {"step": step})
    kept = ids(store.events_after("a", 0))
    assert kept == [1, *range(last - PROGRESS_EVENTS_KEPT, last + 1)]
    assert store.update(job("a", "running"), "status", {}) == last + 1


def test_loss_points_replace_the_series_in_order_and_thin(store: JobStore) -> None:
    store.insert(job("a"), "status", {})
    store.insert(job("b"), "status", {})
    for n in (3, 0, 2, 1, 4):
        store.add_point("a", n, {"step": n * 10, "loss": 1.0 / (n + 1)})
    store.add_point("a", 4, {"step": 40, "loss": 0.125})  # the same index: replaced
    a, b = store.with_points([job("a"), job("b")])
    assert [p["step"] for p in a["train_loss_series"]["points"]] == [0, 10, 20, 30, 40]
    assert a["train_loss_series"]["points"][-1] == {"step": 40, "loss": 0.125}
    assert a["train_loss_series"]["every_steps"] == 10
    assert b == job("b")  # no points stored: the record's own series
    assert store.thin_points("a", 2) == 3
    assert [p["step"] for p in store.with_points([job("a")])[0]["train_loss_series"]["points"]] == [
        0,
        20,
        40,
    ]
    assert store.with_points([]) == []


def test_a_damaged_record_is_left_out_and_reported_once(
    backend: Backend, store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.insert(job("good"), "status", {})
    store.insert(job("bad", "succeeded"), "status", {}, owner="alice")
    store.insert(job("list", "succeeded"), "status", {})
    backend.damage("bad", '{"id": "bad", "status": ')
    backend.damage("list", "[1, 2]")
    with caplog.at_level(logging.ERROR):
        records, total = store.page()
        assert [r["id"] for r in records] == ["good"] and total == 3
        assert store.with_status("succeeded") == []
        with pytest.raises(DamagedRecord):
            store.get("bad")
        with pytest.raises(DamagedRecord):
            store.get("list")
        store.page()
    assert store.head("bad") == ("succeeded", "alice")
    reports = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(reports) == 2 and any("(DELETE /v1/jobs/bad)" in text for text in reports)
    assert store.delete("bad") and store.page()[1] == 2


def test_a_model_saved_by_one_replica_is_served_by_another(
    backend: Backend, tmp_path: Path
) -> None:
    trainer, server = backend.open(), backend.open()
    trainer.insert(job("a"), "status", {})
    weights = os.urandom(300_000)
    source = tmp_path / "out" / "a.safetensors"
    source.parent.mkdir()
    source.write_bytes(weights)
    assert server.model_path("a", tmp_path / "cache") is None
    trainer.save_model("a", source)
    path = server.model_path("a", tmp_path / "cache")
    assert path is not None and path.read_bytes() == weights
    again = server.model_path("a", tmp_path / "cache")
    assert again == path and again.read_bytes() == weights
    assert not list((tmp_path / "cache").glob(".*.part"))  # no copy left half-written
    assert trainer.delete("a")
    assert server.model_path("a", tmp_path / "cache") is None
    assert not (tmp_path / "cache" / "a.safetensors").exists()


def test_cancels_asked_on_one_replica_are_taken_once_on_another(backend: Backend) -> None:
    asking, leading = backend.open(), backend.open()
    assert leading.take_cancels() == []
    asking.request_cancel("a")
    asking.request_cancel("a")  # asked twice: taken once
    asking.request_cancel("b")
    assert sorted(leading.take_cancels()) == ["a", "b"]
    assert leading.take_cancels() == [] and asking.take_cancels() == []


def test_one_replica_leads_until_it_closes(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    assert first.try_lead() and first.try_lead() and first.still_leading()
    assert not second.try_lead() and not second.still_leading()
    first.close()
    backend.opened.remove(first)
    assert second.try_lead() and second.still_leading()


def test_listen_says_whether_the_store_has_a_change_feed(store: JobStore, backend: Backend) -> None:
    heard: list[tuple[str, str]] = []
    assert store.listen(lambda kind, job_id: heard.append((kind, job_id))) is (
        backend.kind == "postgres"
    )
