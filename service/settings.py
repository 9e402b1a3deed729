"""Every setting of the service, read once from the environment (prefix ``LOSS_SERVICE_``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.state import (
    DATA_NAME,
    DATABASE_NAME,
    DEFAULT_STATE_DIR_TEXT,
    MODELS_NAME,
    user_data_dir,
)

MiB = 1024 * 1024
ENV_PREFIX = "LOSS_SERVICE_"


def _in_state(data: dict[str, Any], name: str) -> Path:
    """``name`` inside the state folder (the default one when its own value was invalid)."""
    state = data.get("state_dir")
    return (state if isinstance(state, Path) else user_data_dir()) / name


class Settings(BaseSettings):
    # hide_input_in_errors: a traceback never shows a value (an API key, a database password);
    # describe_invalid_settings shows them, the database URL's without its password.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", hide_input_in_errors=True
    )

    # Server
    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on.")
    workers: int = Field(1, ge=1, le=64, description="Uvicorn worker processes.")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="Torch intra-op threads per worker; default: CPU cores / workers.",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")

    # Limits that protect the server
    max_body_bytes: int = Field(
        64 * MiB, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    max_tensor_elements: int = Field(
        16_000_000, ge=1, description="Most tensor elements in one request, all tensors together."
    )
    max_json_members: int = Field(
        100_000,
        ge=1,
        description="Most JSON object members (keys) a body may hold, counted before it is "
        "parsed (413 beyond): parsing a million keys would hold up every other request.",
    )
    max_nesting_depth: int = Field(
        32, ge=1, le=64, description="Deepest nesting of a JSON tensor (dimensions)."
    )
    max_compute_elements: int = Field(
        100_000_000,
        ge=1,
        description="Most elements of work one request may take, estimated from its shapes "
        "before torch runs (broadcast results, gradients, CTC lattices; bulk items added up); "
        "413 beyond.",
    )
    compute_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest a request may wait for and take in a compute worker before it "
        "is answered 503.",
    )
    inline_body_bytes: int = Field(
        256 * 1024,
        ge=0,
        description="Requests smaller than this may compute on the event loop (when their "
        "work is under LOSS_SERVICE_INLINE_COMPUTE_ELEMENTS); others in a compute worker.",
    )
    inline_compute_elements: int = Field(
        1_000_000,
        ge=0,
        description="Most elements of work a request computes on the event loop; more goes "
        "to a compute worker, where the time limit applies.",
    )
    max_concurrent_computations: int = Field(
        2,
        ge=1,
        description="Compute workers per process: requests computing at once, counting those "
        "still running after their 503; others wait.",
    )
    max_queued_computations: int = Field(
        16,
        ge=0,
        description="Requests waiting for a compute worker; beyond this a request is answered "
        "503 with Retry-After.",
    )
    max_problem_errors: int = Field(
        20,
        ge=1,
        description="Most field errors listed in one problem document; the rest are counted.",
    )

    # Connections and clients (each worker process enforces these on its own)
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest a client may take to send a request's line and headers, counted "
        "from the connection's start or the end of the previous answer; the connection is "
        "closed beyond (slow-header clients).",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest a client may pause while sending a request body; the connection "
        "is closed beyond (slow-body clients).",
    )
    keep_alive_timeout_s: int = Field(
        5, ge=1, description="Seconds an idle keep-alive connection stays open."
    )
    keep_alive_max_requests: int = Field(
        1000, ge=1, description="Requests served on one connection before it is closed."
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections per worker process (lowered to fit the open-file limit); "
        "past it, the oldest connection waiting for a request makes room, or, when every one "
        "is busy, the new one is answered 503 and closed.",
    )
    max_connections_per_client: int = Field(
        64,
        ge=0,
        description="Open connections per client address and worker (0: no cap; set 0 behind "
        "a reverse proxy, which has one address and caps clients itself).",
    )
    max_event_streams: int = Field(
        100, ge=1, description="Open event streams per worker process (429 beyond)."
    )
    max_event_streams_per_client: int = Field(
        8, ge=1, description="Open event streams per client (API key, or address) (429 beyond)."
    )
    rate_limit_per_s: float = Field(
        100.0,
        ge=0,
        description="Sustained /v1 requests per second per client (API key when keys are set, "
        "else address) and worker; beyond the burst: 429 with Retry-After (0: no limit).",
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="Requests a client may send at once before the rate applies."
    )

    # Access
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer keys that /v1 endpoints require (JSON list or comma-separated); "
        "empty: no authentication.",
    )
    admin_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API keys that see and manage every job (JSON list or comma-separated; "
        "they are valid API keys too). Other keys see only the jobs they created.",
    )

    # Grading
    max_evaluate_items: int = Field(
        1000, ge=1, description="Most loss requests in one POST /v1/evaluate (413 beyond)."
    )
    max_submissions: int = Field(
        10_000, ge=1, description="Most submissions graded in one POST /v1/grade (413 beyond)."
    )

    # State: one folder (service.state), each part movable on its own
    state_dir: Path = Field(
        default_factory=user_data_dir,
        description="Folder of the service's state; the job database, trained models and "
        "datasets default to places in it.",
        json_schema_extra={"shown_default": DEFAULT_STATE_DIR_TEXT},
    )
    db_path: Path = Field(
        default_factory=lambda data: _in_state(data, DATABASE_NAME),
        description="SQLite database of jobs.",
        json_schema_extra={"shown_default": f"`<state_dir>/{DATABASE_NAME}`"},
    )
    models_dir: Path = Field(
        default_factory=lambda data: _in_state(data, MODELS_NAME),
        description="Trained model weights.",
        json_schema_extra={"shown_default": f"`<state_dir>/{MODELS_NAME}`"},
    )
    data_dir: Path = Field(
        default_factory=lambda data: _in_state(data, DATA_NAME),
        description="Datasets: one folder per dataset.",
        json_schema_extra={"shown_default": f"`<state_dir>/{DATA_NAME}`"},
    )

    # Past one machine (docs/fleet.md)
    database_url: str | None = Field(
        None,
        description="`postgresql://user:password@host:port/db`: job records, events and models "
        "in PostgreSQL, shared by every API replica; unset: SQLite at `db_path`.",
    )
    jobs_executor: Literal["local", "ray"] = Field(
        "local",
        description="Where training jobs run: `local` (a process per job on the leading "
        "replica) or `ray` (actors on the Ray cluster at `ray_address`).",
    )
    ray_address: str = Field(
        "auto",
        description="The Ray cluster of the `ray` executor: its head's GCS address "
        "(`host:6379`); `auto`: the cluster running on this host.",
    )
    ray_namespace: str = Field(
        "loss-service", min_length=1, description="Ray namespace of the training actors."
    )
    ray_warm_actors: int = Field(
        2,
        ge=0,
        le=64,
        description="Idle training actors (torch imported) kept ready on the Ray cluster.",
    )
    job_warm_workers: int = Field(
        1,
        ge=0,
        le=8,
        description="Idle training processes (torch imported) the local executor keeps ready, "
        "so that a job starts in well under a second.",
    )

    # Jobs
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="Training jobs run at once.")
    max_queued_jobs: int = Field(
        16, ge=0, description="Jobs waiting to run; a new job beyond this is answered 429."
    )
    max_jobs_per_key: int = Field(
        4,
        ge=0,
        description="Jobs one API key may have queued or running at once (429 beyond); "
        "0: no per-key limit. Applies when API keys are configured.",
    )
    max_job_steps: int = Field(
        1_000_000,
        ge=1,
        description="Most training steps one job may take (epochs x steps per epoch); a "
        "config beyond is answered 422.",
    )
    max_model_bytes: int = Field(
        4 * MiB,
        ge=4096,
        description="Largest model a job may train: 4 x (795 x hidden_units + 10) bytes of "
        "float32 parameters; a config beyond is answered 422.",
    )
    job_max_loss_points: int = Field(
        500,
        ge=2,
        le=100_000,
        description="Most points kept in a job's training-loss series; when full, every other "
        "point is dropped and the spacing (`every_steps`) doubles.",
    )
    job_retention_days: float = Field(
        30.0,
        ge=0,
        description="Finished jobs and their models are deleted this many days after they "
        "finished; 0: no age limit.",
    )
    job_retention_count: int = Field(
        500,
        ge=0,
        description="Finished jobs kept (the newest); older ones and their models are "
        "deleted; 0: no count limit.",
    )
    job_torch_threads: int = Field(
        1, ge=1, description="Torch threads of each training process (one core by default)."
    )
    job_nice: int = Field(
        10, ge=0, le=19, description="CPU niceness of training processes (requests come first)."
    )
    job_progress_interval_s: float = Field(
        0.5, gt=0, description="Seconds between progress events of a running job."
    )
    mnist_mirrors: list[str] = Field(
        default_factory=list,
        description="Base URLs to download MNIST from (JSON list); empty: the usual mirrors.",
    )
    fashion_mnist_mirrors: list[str] = Field(
        default_factory=list,
        description="Base URLs to download Fashion-MNIST from (JSON list); empty: the usual "
        "mirrors.",
    )
    download_timeout_s: float = Field(
        30.0, gt=0, description="Timeout of each dataset download connection and read."
    )

    # Operations
    log_format: Literal["json", "text"] = Field(
        "json", description="Log lines as JSON objects (`json`) or plain text (`text`)."
    )
    access_log: bool = Field(True, description="Log one line per request (with its request id).")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins browsers may call from (JSON list or comma-separated; `*`: any); "
        "empty: no CORS headers.",
    )
    shutdown_timeout_s: int = Field(
        10,
        ge=1,
        description="On SIGTERM, how long in-flight requests (and open event streams) may take "
        "to finish before they are cut; running jobs are then recorded as interrupted.",
    )

    @field_validator("api_keys", "admin_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """A JSON list, or a comma-separated one."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("state_dir", "db_path", "models_dir", "data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Relative to the folder the service starts in, made absolute once, at start."""
        if str(value) == ":memory:":
            return value
        return value.expanduser().absolute()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("must be one of debug, info, warning, error, critical")
        return level

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (unset: SQLite at LOSS_SERVICE_DB_PATH)")
        return value

    @model_validator(mode="after")
    def _admin_keys_are_keys(self) -> Self:
        """Admin keys are API keys too (and setting one turns authentication on)."""
        missing = [key for key in self.admin_keys if key not in self.api_keys]
        if missing:
            self.api_keys = [*self.api_keys, *missing]
        return self

    def effective_torch_threads(self) -> int:
        if self.torch_threads is not None:
            return self.torch_threads
        return max(1, (os.cpu_count() or 1) // self.workers)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def variable_name(field: str) -> str:
    """``port`` -> ``LOSS_SERVICE_PORT``."""
    return f"{ENV_PREFIX}{field}".upper()


def shown_default(name: str) -> str:
    """A setting's default as documentation shows it (Markdown): the same on every machine."""
    field = Settings.model_fields[name]
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    default = field.get_default(call_default_factory=True)
    return "(none)" if default in (None, [], "") else f"`{default}`"


def markdown_table() -> str:
    """The configuration table of docs/configuration.md, generated from the fields above."""
    rows = ["| variable | default | what |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        text = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{variable_name(name)}` | {shown_default(name)} | {text} |")
    return "\n".join(rows) + "\n"


def is_limit(name: str) -> bool:
    """A limit that protects the server, by the naming convention of the fields above: a most,
    a timeout, a rate, a keep-alive bound, the work allowed inline, a retention."""
    prefixes = ("max_", "job_max_", "rate_limit_", "keep_alive_", "inline_", "job_retention")
    return name.startswith(prefixes) or name.endswith("_timeout_s")


def limits_table() -> str:
    """The README's "Limits and protection" table: every limit, its variable and default."""
    rows = ["| variable | default | what it bounds |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if is_limit(name):
            text = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{variable_name(name)}` | {shown_default(name)} | {text} |")
    return "\n".join(rows) + "\n"


# Operations


def describe_invalid_settings(error: ValidationError, flags: Iterable[str] = ()) -> str:
    """One line per bad value, naming the command-line flag or environment variable to fix
    (``flags``: the settings that came from flags)."""
    from_flags = set(flags)
    lines: list[str] = []
    sources: set[str] = set()
    for item in error.errors():
        if item["type"] == "default_factory_not_called":
            continue  # a default made from another setting, itself invalid (reported)
        field = ".".join(str(part) for part in item["loc"])
        if field in from_flags:
            sources.add("command-line flags")
            where = flag_name(field)
        else:
            sources.add("environment variables")
            where = variable_name(field)
        value = item.get("input")
        if field == "database_url" and isinstance(value, str):
            value = without_password(value)
        lines.append(f"  {where}={value!r}: {item['msg']}")
    return f"invalid configuration ({' and '.join(sorted(sources))}):\n" + "\n".join(lines)


def without_password(url: str) -> str:
    """A database URL as messages show it: without the password of its user part nor any
    ``password=`` parameter (``postgresql://user:secret@host/db`` -> ``postgresql://user@host/db``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # not a URL: key=value words, maybe
        return " ".join(
            "password=…" if word.lower().startswith("password=") else word for word in url.split()
        )
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    before_query, after = rest[:query_at], rest[query_at:]
    userinfo, at, hosts = before_query.rpartition("@")
    if at:
        before_query = userinfo.partition(":")[0] + "@" + hosts
    if after.startswith("?"):
        query, hash_mark, fragment = after[1:].partition("#")
        kept = [
            part
            for part in query.split("&")
            if part and not part.partition("=")[0].lower().endswith("password")
        ]
        after = ("?" + "&".join(kept) if kept else "") + hash_mark + fragment
    return f"{scheme}://{before_query}{after}"


def flag_name(field: str) -> str:
    """``log_level`` -> ``--log-level``."""
    return "--" + field.replace("_", "-")


def get_settings_or_exit() -> Settings:
    """``get_settings()``, or exit (status 1) with a message that names each bad variable."""
    try:
        return get_settings()
    except ValidationError as error:
        raise SystemExit(describe_invalid_settings(error)) from None


if __name__ == "__main__":
    import sys

    print(limits_table() if "--limits" in sys.argv[1:] else markdown_table(), end="")
