"""The training actors on the Ray cluster: finding them, taking one for a job, keeping some warm.

The cluster itself is the registry: actors are named ``trainer-<shape>-<hex>`` in the
namespace, and each answers ``current()`` (the job it has, or None when idle), so any replica
sees the same pool and nothing is kept on the side. Taking an actor is its atomic ``claim``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from service.jobs.executors.ray_actor import TrainerActor
from service.settings import Settings

log = logging.getLogger(__name__)

SHAPES = ("cpu", "gpu")
# run, and beside it cancel, current, claim and the wait_done calls of any replica
ACTOR_CONCURRENCY = 16
ASK_TIMEOUT_S = 5.0  # an actor that answers no faster is busy starting (or lost)
POLL_S = 1.0
RETIRE_AFTER_S = 120.0
RELEASE_WAIT_S = 600.0  # a starting actor's unwanted claim is given back once it starts

TrainerRemote: Any = ray.remote(TrainerActor)

_connect_lock = threading.Lock()
_connected_to: tuple[str, str] | None = None


class _NoSigtermNotice(logging.Filter):
    """ray.init runs in a thread on purpose (see ``ActorPool.connect``): no warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


logging.getLogger("ray._private.worker").addFilter(_NoSigtermNotice())


def actor_prefix(shape: str) -> str:
    return f"trainer-{shape}-"


class ActorPool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gpus: float | None = None  # GPUs in the cluster (None: not asked yet)
        self._handles: dict[str, Any] = {}
        self._surplus_since: dict[str, float] = {}

    # The cluster

    def connect(self) -> None:
        """Connect this process to the cluster (once: Ray has one connection per process)."""
        global _connected_to
        target = (self.settings.ray_address, self.settings.ray_namespace)
        with _connect_lock:
            if ray.is_initialized() and _connected_to == target:
                return
            if ray.is_initialized():
                ray.shutdown()
            # Not from the main thread: there ray.init replaces the server's SIGTERM handler.
            with ThreadPoolExecutor(1, thread_name_prefix="ray-connect") as pool:
                connecting = pool.submit(
                    ray.init,
                    address=target[0],
                    namespace=target[1],
                    log_to_driver=False,
                    configure_logging=False,
                )
                try:
                    connecting.result()
                except BaseException:
                    ray.shutdown()  # a failed init leaves half a connection behind
                    raise
            _connected_to = target

    def refresh_resources(self) -> None:
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        self.gpus = float(resources.get("GPU", 0))

    def shape_for(self, device: str) -> str:
        if device.startswith("cuda"):
            return "gpu"
        if device == "auto":
            if self.gpus is None:
                self.refresh_resources()
            return "gpu" if self.gpus else "cpu"
        return "cpu"

    def actors(self, shape: str | None = None) -> dict[str, Any]:
        """Handles of the named training actors (of ``shape``), by name."""
        prefixes = tuple(actor_prefix(s) for s in ([shape] if shape else SHAPES))
        names = {name for name in ray.util.list_named_actors() if name.startswith(prefixes)}
        for name in set(self._handles) - names:
            del self._handles[name]
        for name in names - set(self._handles):
            try:
                self._handles[name] = ray.get_actor(name, namespace=self.settings.ray_namespace)
            except ValueError:  # gone meanwhile
                continue
        return {name: self._handles[name] for name in names if name in self._handles}

    def answers(self, actors: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
        """``(name, current())`` of each actor, as soon as it answers: those that do not
        within ``ASK_TIMEOUT_S`` (starting, or lost) are left out, and nobody waits for them
        while another has answered."""
        names = {handle.current.remote(): name for name, handle in actors.items()}
        pending = list(names)
        deadline = time.monotonic() + ASK_TIMEOUT_S
        while pending and (left := deadline - time.monotonic()) > 0:
            ready, pending = ray.wait(pending, num_returns=1, timeout=left)
            for ref in ready:
                try:
                    current = ray.get(ref)
                except RayActorError:
                    continue  # dead: its name is about to be released
                yield names[ref], current

    def states(self, actors: dict[str, Any]) -> dict[str, str | None]:
        return dict(self.answers(actors))

    def find(self, job_id: str) -> tuple[str, Any] | None:
        """The actor that has ``job_id`` (name, handle), or None."""
        actors = self.actors()
        for name, current in self.answers(actors):
            if current == job_id:
                return name, actors[name]
        return None

    @staticmethod
    def ask(ref: Any, default: Any) -> Any:
        try:
            return ray.get(ref, timeout=ASK_TIMEOUT_S)
        except (GetTimeoutError, RayActorError):
            return default

    # Taking an actor for a job

    def take(
        self, job_id: str, shape: str, given_up: Callable[[], bool], timeout_s: float
    ) -> tuple[str, Any] | None:
        """An actor of ``shape`` claimed for ``job_id``: whichever is ready first of the idle
        ones (asked again every ``POLL_S``: a busy one frees when its job ends) and those still
        starting (a new one, cold, when there is none). An actor that cannot be placed (its
        CPUs are held by the others) never blocks a job that another actor can run. None when
        ``given_up()`` or nothing was ready in ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        claims: dict[str, Any] = {}  # starting actors asked to claim the job: name -> ref
        created = False
        while not given_up() and time.monotonic() < deadline:
            actors = self.actors(shape)
            answered = set()
            for name, current in self.answers({n: h for n, h in actors.items() if n not in claims}):
                answered.add(name)
                if current is None and self.ask(actors[name].claim.remote(job_id), False):
                    self._release_later(claims, job_id)
                    return name, actors[name]
            starting = [n for n in actors if n not in answered and n not in claims]
            if not claims and not starting and not created:
                starting, created = [self.create(shape)], True
            for name in starting:
                claims[name] = self._handles[name].claim.remote(job_id)
            if not claims:
                time.sleep(POLL_S)
                continue
            ready, _ = ray.wait(list(claims.values()), num_returns=1, timeout=POLL_S)
            for name, ref in list(claims.items()):
                if ref in ready:
                    del claims[name]
                    if self.ask(ref, False):  # False too when the actor failed to start
                        self._release_later(claims, job_id)
                        return name, self._handles[name]
        self._release_later(claims, job_id)
        return None

    def _release_later(self, claims: dict[str, Any], job_id: str) -> None:
        """Claims queued on actors still starting, no longer wanted: each is given back when
        its actor starts, so that no idle actor seems to hold the job."""
        for name, ref in claims.items():
            handle = self._handles.get(name)

            def give_back(ref: Any = ref, handle: Any = handle) -> None:
                with contextlib.suppress(Exception):
                    if handle is not None and ray.get(ref, timeout=RELEASE_WAIT_S):
                        handle.release.remote(job_id)

            threading.Thread(target=give_back, daemon=True).start()

    def create(self, shape: str) -> str:
        name = f"{actor_prefix(shape)}{uuid.uuid4().hex[:12]}"
        self._handles[name] = TrainerRemote.options(
            name=name,
            namespace=self.settings.ray_namespace,
            lifetime="detached",
            num_cpus=self.settings.job_torch_threads,
            num_gpus=1 if shape == "gpu" else 0,
            max_concurrency=ACTOR_CONCURRENCY,
            max_restarts=0,
        ).remote()
        log.info("starting Ray training actor %s", name)
        return name

    # Warm actors

    def top_up(self) -> None:
        """Keep ``ray_warm_actors`` idle (or starting) actors of the shape jobs take by default
        (``auto``: a GPU when the cluster has one). Idle ones beyond, and idle ones of the other
        shape, are retired once they have been surplus for ``RETIRE_AFTER_S`` (so that they
        hold no CPU or GPU, yet a steady flow of jobs reuses them instead of starting more)."""
        warm_shape = self.shape_for("auto")
        for shape in SHAPES:
            keep = self.settings.ray_warm_actors if shape == warm_shape else 0
            if shape == "gpu":
                keep = min(keep, int(self.gpus or 0))
            actors = self.actors(shape)
            states = self.states(actors)
            idle = [name for name, current in states.items() if current is None]
            starting = [name for name in actors if name not in states]
            for _ in range(keep - len(idle) - len(starting)):
                self.create(shape)
            if len(idle) <= keep:
                self._surplus_since.pop(shape, None)
                continue
            since = self._surplus_since.setdefault(shape, time.monotonic())
            if time.monotonic() - since < RETIRE_AFTER_S:
                continue
            for name in idle[keep:]:
                if self.ask(actors[name].retire.remote(), False):
                    log.info("retiring idle Ray training actor %s", name)
                    ray.kill(actors[name])
