"""The training actors on the Ray cluster: finding them, taking one for a job, keeping some warm.

The cluster itself is the registry: actors are named ``trainer-<shape>-<hex>`` in the
namespace, and each answers ``current()`` (the job it has, or None when idle), so any replica
sees the same pool and nothing is kept on the side. Taking an actor is its atomic ``claim``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from service.jobs.executors.ray_actor import TrainerActor
from service.settings import Settings

log = logging.getLogger(__name__)

SHAPES = ("cpu", "gpu")
ACTOR_CONCURRENCY = 4  # run, cancel, current and wait_done at once
ASK_TIMEOUT_S = 5.0  # an actor that answers no faster is busy starting (or lost)
POLL_S = 1.0
TAKE_ATTEMPTS = 3  # another leader may claim the actor this one chose: choose again

TrainerRemote: Any = ray.remote(TrainerActor)


def actor_prefix(shape: str) -> str:
    return f"trainer-{shape}-"


class ActorPool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gpus: float | None = None  # GPUs in the cluster (None: not asked yet)
        self._handles: dict[str, Any] = {}

    # The cluster

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

    def states(self, actors: dict[str, Any]) -> dict[str, str | None]:
        """``current()`` of each actor that answers in time; those still starting (or lost)
        are left out."""
        if not actors:
            return {}
        refs = {name: handle.current.remote() for name, handle in actors.items()}
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=ASK_TIMEOUT_S)
        done = set(ready)
        states: dict[str, str | None] = {}
        for name, ref in refs.items():
            if ref in done:
                try:
                    states[name] = ray.get(ref)
                except RayActorError:
                    continue  # dead: its name is about to be released
        return states

    def find(self, job_id: str) -> tuple[str, Any] | None:
        """The actor that has ``job_id`` (name, handle), or None."""
        actors = self.actors()
        for name, current in self.states(actors).items():
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
        """An actor of ``shape`` claimed for ``job_id``: an idle one, else one still starting,
        else a new one (cold). None when ``given_up()`` or nothing started in ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        for _ in range(TAKE_ATTEMPTS):
            actors = self.actors(shape)
            states = self.states(actors)
            idle = [name for name, current in states.items() if current is None]
            for name in idle:
                if self.ask(actors[name].claim.remote(job_id), False):
                    return name, actors[name]
            starting = [name for name in actors if name not in states]
            name = starting[0] if starting else self.create(shape)
            handle = actors.get(name) or self._handles[name]
            ref = handle.claim.remote(job_id)
            while not ray.wait([ref], timeout=POLL_S)[0]:
                if given_up() or time.monotonic() > deadline:
                    return None
            if ray.get(ref):  # an actor that failed to start raises here
                return name, handle
        return None

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
        (``auto``: a GPU when the cluster has one); retire idle ones beyond, and idle ones of
        the other shape, so that they hold no CPU or GPU."""
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
            for name in idle[keep:]:
                if self.ask(actors[name].retire.remote(), False):
                    log.info("retiring idle Ray training actor %s", name)
                    ray.kill(actors[name])
