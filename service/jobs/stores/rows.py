"""What both job stores do with the rows they read and write: records as JSON text, a damaged
record left out (and reported once), the loss points merged back into their records."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson

from service.jobs.stores.base import Record

log = logging.getLogger(__name__)


def dumps(value: Record) -> str:
    return orjson.dumps(value).decode()


class RecordParser:
    """Reads stored record JSON; a row that is not a JSON object is reported in the log once
    per job and left out of listings until it is deleted."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._warned: set[str] = set()

    def parse(self, job_id: str, text: Any) -> Record | None:
        try:
            value = orjson.loads(text)
            if not isinstance(value, dict):
                raise TypeError(f"a JSON {type(value).__name__}, not an object")
        except (orjson.JSONDecodeError, TypeError) as exc:
            if job_id not in self._warned:
                self._warned.add(job_id)
                log.error(
                    "job %s: its stored record in %s is damaged (%s); it is left out of "
                    "listings until it is deleted (DELETE /v1/jobs/%s)",
                    job_id,
                    self.where,
                    exc,
                    job_id,
                )
            return None
        record: Record = value
        return record

    def readable(self, rows: Iterable[tuple[Any, ...]]) -> list[Record]:
        """The records of ``(job id, JSON)`` rows that can be read."""
        records = (self.parse(str(job_id), text) for job_id, text in rows)
        return [record for record in records if record is not None]

    def forget(self, job_id: str) -> None:
        """The job is deleted: a new record under its id is reported afresh."""
        self._warned.discard(job_id)


def with_point_rows(records: list[Record], rows: Iterable[tuple[Any, Any]]) -> list[Record]:
    """Copies of ``records`` whose ``train_loss_series.points`` are the ``(job id, point
    JSON)`` rows, in order (records without rows keep the points in their JSON: written before
    the points table)."""
    points: dict[str, list[str]] = {}
    for job_id, text in rows:
        points.setdefault(str(job_id), []).append(str(text))
    result = []
    for record in records:
        texts = points.get(record["id"])
        if texts:
            series = {**record["train_loss_series"]}
            series["points"] = orjson.loads("[" + ",".join(texts) + "]")
            record = {**record, "train_loss_series": series}
        result.append(record)
    return result
