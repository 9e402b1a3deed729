"""``python -m tests.support.ray_driver JOB_ID``: a stand-in for an API replica that launches
one ``running`` job of the store (``LOSS_SERVICE_*`` settings) on the Ray executor, then waits
to be killed. ``tests/jobs/test_ray_executor.py`` SIGKILLs it while the job trains."""

from __future__ import annotations

import sys
import time

from service.jobs.executors.ray import RayExecutor
from service.jobs.stores import open_store
from service.settings import Settings

LIFETIME_S = 300.0  # never outlives a test that forgets it


def main() -> None:
    settings = Settings()
    store = open_store(settings)
    record = store.get(sys.argv[1])
    assert record is not None and record["status"] == "running", record
    RayExecutor(settings, store).launch(record)
    print("launched", flush=True)
    time.sleep(LIFETIME_S)


if __name__ == "__main__":
    main()
