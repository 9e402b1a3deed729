"""Where the service keeps its state: one folder, independent of the current folder.

The folder holds the job database (``jobs.sqlite3``), trained models (``models/``) and datasets
(``data/``). By default it is the platform's per-user data folder:

- Linux and other Unix: ``$XDG_DATA_HOME/loss-service``, else ``~/.local/share/loss-service``
  (the XDG Base Directory specification);
- macOS: ``~/Library/Application Support/loss-service``;
- Windows: ``%LOCALAPPDATA%\\loss-service``.

``LOSS_SERVICE_STATE_DIR`` moves the whole folder (the container image sets
``/var/lib/loss-service``); ``LOSS_SERVICE_DB_PATH``, ``LOSS_SERVICE_MODELS_DIR`` and
``LOSS_SERVICE_DATA_DIR`` move one part each.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.settings import Settings

APP_NAME = "loss-service"
DATABASE_NAME = "jobs.sqlite3"
MODELS_NAME = "models"
DATA_NAME = "data"

DEFAULT_STATE_DIR_TEXT = (
    "the user data folder: `$XDG_DATA_HOME/loss-service` or `~/.local/share/loss-service` "
    "(Linux), `~/Library/Application Support/loss-service` (macOS), "
    "`%LOCALAPPDATA%\\loss-service` (Windows)"
)
# Where versions before the state folder kept the job database, relative to the current folder.
LEGACY_DATABASE = Path("var") / DATABASE_NAME


def user_data_dir(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    """The platform's per-user data folder for this application (not created here)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else home
    if platform == "win32":
        base = environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / APP_NAME
    if platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    xdg = environ.get("XDG_DATA_HOME", "")
    # The specification: a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP_NAME
    return home / ".local" / "share" / APP_NAME


def state_report(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The start log line naming the state's places, and the same as fields."""
    from service.settings import without_password  # settings imports this module

    places = {
        "state_dir": str(settings.state_dir),
        "database": without_password(settings.database_url)
        if settings.database_url
        else str(settings.db_path),
        "models": str(settings.models_dir),
        "data": str(settings.data_dir),
    }
    message = (
        f"state: database {places['database']}, models {places['models']}, data {places['data']}"
    )
    return message, places


def legacy_database_hint(settings: Settings, cwd: Path | None = None) -> str | None:
    """When an older version's job database sits in the current folder and this server uses
    another (new, empty) one: how to keep the old jobs. ``None`` otherwise."""
    if "db_path" in settings.model_fields_set or settings.db_path.exists():
        return None
    old = (cwd or Path.cwd()) / LEGACY_DATABASE
    if not old.is_file() or old.resolve() == settings.db_path.resolve():
        return None
    return (
        f"a job database from an earlier version is at {old}; this server keeps its jobs in "
        f"{settings.db_path}: move that file (and var/models/ to {settings.models_dir}) there, "
        f"or set LOSS_SERVICE_DB_PATH to use it where it is"
    )
