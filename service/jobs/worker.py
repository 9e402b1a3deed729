"""The training process: ``python -m service.jobs.worker``.

Training runs in its own process so that it never holds the server's GIL or event loop, and so
that its torch thread count and CPU priority are its own. The protocol is JSON lines:

- stdin: a job (``WorkerSpec`` as JSON) after each ``ready``, and ``cancel <job id>`` lines.
  End of input means the server is gone (even after SIGKILL) or no longer needs this process:
  it exits at once, so no orphan keeps training.
- stdout: one message per line: ``ready`` (torch is imported: the process waits for a job),
  then for each job ``started``, ``phase``, ``download``, ``progress``, ``loss``, ``epoch``,
  exactly one of ``succeeded``, ``failed`` or ``cancelled``, and ``ready`` again.

A process trains up to ``JOBS_PER_PROCESS`` jobs one after the other, so the next job starts
on a warm process instead of paying ``import torch`` again.

Anything else printed (warnings, stray prints) goes to stderr, never into the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import torch
from pydantic import BaseModel

from service.datasets import DatasetUnavailable, dataset_spec, ensure_dataset, load_split
from service.datasets.download import DownloadCancelled
from service.jobs.config import JobConfig
from service.jobs.inference import TENSOR_NAMES, model_metadata, save_model
from service.jobs.training import (
    Cancelled,
    EpochResult,
    Net,
    Progress,
    TrainingHooks,
    normalise,
    resolve_device,
    train,
)
from service.processes import die_with_parent

# A process trains this many jobs, then exits and is replaced: whatever one run leaves behind
# (allocator caches, a leak in a library) stays bounded.
JOBS_PER_PROCESS = 50


class WorkerSpec(BaseModel):
    job_id: str
    config: dict[str, Any]
    seed: int
    data_dir: str
    mirrors: list[str] | None = None
    download_timeout_s: float = 30.0
    model_path: str
    torch_threads: int = 1
    nice: int = 0
    progress_interval_s: float = 0.5


class MessageSink(Protocol):
    """Where ``run`` reports: a ``Channel`` (stdout), or a Ray actor's record writer."""

    def send(self, kind: str, **payload: Any) -> None: ...


class Channel:
    """Writes protocol messages; a broken pipe means the server is gone: exit."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, kind: str, **payload: Any) -> None:
        line = json.dumps({"type": kind, **payload}, allow_nan=False, default=_finite)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, OSError):
                os._exit(3)


def _finite(value: object) -> object:
    raise TypeError(f"not JSON serialisable: {value!r}")


class Inbox:
    """Reads stdin in its own thread: job specs are queued for the main loop, ``cancel <id>``
    stops the job with that id (a late cancel of an earlier job is ignored)."""

    def __init__(self, stream: IO[str]) -> None:
        self.jobs: queue.Queue[str] = queue.Queue()
        self.current: str | None = None
        self.cancelled: set[str] = set()
        self.stop = threading.Event()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            words = line.split()
            if words[:1] == ["cancel"]:
                if len(words) > 1:
                    self.cancelled.add(words[1])
                if len(words) == 1 or words[1] == self.current:
                    self.stop.set()
            elif words:
                self.jobs.put(line)
        # End of input: the server closed our stdin or died. Nobody will read our results.
        os._exit(0 if self.current is None else 4)

    def next_job(self) -> WorkerSpec:
        spec = WorkerSpec.model_validate_json(self.jobs.get())
        self.stop.clear()
        self.current = spec.job_id
        if spec.job_id in self.cancelled:  # asked before this loop took the job
            self.stop.set()
        return spec


def main() -> None:
    # Not the parent-death signal: job threads that start training processes may end first.
    die_with_parent(death_signal=False)
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    channel = Channel(protocol_out)
    warm_up()
    inbox = Inbox(sys.stdin)
    niced = False
    for _ in range(JOBS_PER_PROCESS):
        # Warm, torch imported: wait for a job (the first, or the next after one).
        channel.send("ready")
        spec = inbox.next_job()
        if spec.nice and not niced:
            niced = True
            with contextlib.suppress(OSError):
                os.nice(spec.nice)
        run(spec, channel, inbox.stop.is_set)
        inbox.current = None
        protocol_out.flush()
        sys.stderr.flush()
    # Everything is reported and the model files are in place: skip the interpreter's teardown
    # (seconds for torch on a busy machine).
    os._exit(0)


def warm_up() -> None:
    """Pay the one-time costs of a first job before there is one: the first optimizer imports
    torch._dynamo (about a second)."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def run(spec: WorkerSpec, channel: MessageSink, should_stop: Callable[[], bool]) -> None:
    started = time.perf_counter()
    try:
        torch.set_num_threads(spec.torch_threads)
        warm_up()  # nothing left to do in a warm process
        config = JobConfig.model_validate(spec.config)
        device = resolve_device(config.device)
        channel.send(
            "started",
            pid=os.getpid(),
            device=str(device),
            seed=spec.seed,
            torch_threads=torch.get_num_threads(),
            startup_s=time.perf_counter() - started,
        )
    except Exception as exc:  # pragma: no cover - a broken installation
        message = public_message(f"worker failed to start: {exc}", spec)
        channel.send("failed", reason="worker_error", message=message)
        return

    timings: dict[str, float] = {}
    try:
        data_start = time.perf_counter()
        dspec = dataset_spec(config.dataset)
        folder = Path(spec.data_dir) / config.dataset
        channel.send("phase", phase="preparing_data")
        last = [0.0]

        def on_download(name: str, done: int, total: int | None) -> None:
            now = time.perf_counter()
            if now - last[0] >= spec.progress_interval_s or done == total:
                last[0] = now
                channel.send("download", file=name, bytes=done, total_bytes=total)

        files = ensure_dataset(
            dspec,
            folder,
            spec.mirrors,
            timeout_s=spec.download_timeout_s,
            progress=on_download,
            should_stop=should_stop,
        )
        split = load_split(files, config.train_samples, config.test_samples)
        train_x = normalise(split.train_images, device)
        test_x = normalise(split.test_images, device)
        train_y = split.train_labels.to(device)
        test_y = split.test_labels.to(device)
        timings["data_s"] = time.perf_counter() - data_start
        channel.send(
            "phase", phase="training", train_samples=len(train_x), test_samples=len(test_x)
        )

        def on_progress(p: Progress) -> None:
            channel.send(
                "progress",
                epoch=p.epoch,
                epochs=p.epochs,
                step=p.step,
                steps_per_epoch=p.steps_per_epoch,
                global_step=p.global_step,
                total_steps=p.total_steps,
                fraction=p.fraction,
                samples_per_s=p.samples_per_s,
                eta_s=p.eta_s,
            )

        def on_loss(step: int, epoch: int, loss: float) -> None:
            channel.send("loss", step=step, epoch=epoch, loss=_json_float(loss))

        def on_epoch(r: EpochResult, model: Net) -> None:
            channel.send(
                "epoch",
                epoch=r.epoch,
                train_loss=_json_float(r.train_loss),
                test_loss=_json_float(r.test_loss),
                test_accuracy=_json_float(r.test_accuracy),
                train_seconds=r.train_seconds,
                eval_seconds=r.eval_seconds,
                samples_per_s=r.samples_per_s,
            )

        hooks = TrainingHooks(should_stop, on_progress, on_loss, on_epoch, spec.progress_interval_s)
        train_start = time.perf_counter()
        result = train(config, spec.seed, train_x, train_y, test_x, test_y, device, hooks)
        timings["train_s"] = sum(e.train_seconds for e in result.epochs)
        timings["eval_s"] = sum(e.eval_seconds for e in result.epochs)
        timings["training_total_s"] = time.perf_counter() - train_start
        path = Path(spec.model_path)
        size = save_model(
            result.model, path, model_metadata(spec.job_id, spec.config, list(dspec.classes))
        )
        channel.send(
            "succeeded",
            timings=timings,
            model={"path": str(path), "bytes": size, "tensors": list(TENSOR_NAMES)},
        )
    except (Cancelled, DownloadCancelled):
        channel.send("cancelled", timings=timings)
    except DatasetUnavailable as exc:
        message = public_message(str(exc), spec)
        channel.send("failed", reason="dataset_unavailable", message=message, timings=timings)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        channel.send(
            "failed",
            reason="training_error",
            message=public_message(f"{type(exc).__name__}: {exc}", spec),
            timings=timings,
        )


# An absolute path of two or more parts (not the path of a URL): reduced to its last part.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s/'\"]+/)+([^\s/'\"]+)")


def public_message(message: str, spec: WorkerSpec) -> str:
    """``message`` without the server's absolute paths, for clients: files in the data folder
    are named relative to it (``mnist/train-images-idx3-ubyte.gz``), the folders by their
    setting, and any other absolute path by its last part."""
    folders = {
        spec.data_dir: "LOSS_SERVICE_DATA_DIR",
        str(Path(spec.data_dir).resolve()): "LOSS_SERVICE_DATA_DIR",
        str(Path(spec.model_path).parent): "LOSS_SERVICE_MODELS_DIR",
    }
    for folder in sorted(folders, key=len, reverse=True):
        root = folder.rstrip("/")
        if len(root) > 1:
            message = message.replace(root + "/", "").replace(root, folders[folder])
    return _ABSOLUTE_PATH.sub(r"\1", message)


def _json_float(value: float) -> float | str | None:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


if __name__ == "__main__":
    main()
