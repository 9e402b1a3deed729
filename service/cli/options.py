"""Command-line flags for settings, and the settings list of ``--help``, both generated from
``service.settings.Settings``: a flag is validated by the same model as its environment
variable, and a bad value is reported the same way (one line, exit status 1)."""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Iterable

from pydantic import ValidationError

from service.settings import (
    Settings,
    describe_invalid_settings,
    flag_name,
    get_settings,
    shown_default,
    variable_name,
)
from service.state import user_data_dir

WIDTH = 100


def plain(text: str) -> str:
    """Documentation text (Markdown) as plain terminal text."""
    return text.replace("`", "")


def add_setting_flags(parser: argparse.ArgumentParser, names: Iterable[str], title: str) -> None:
    """One ``--flag VALUE`` per setting; unset flags leave no attribute (the environment or
    the default decides), so a flag given to a subcommand is not erased by the main parser."""
    group = parser.add_argument_group(title)
    for name in names:
        field = Settings.model_fields[name]
        text = plain(f"{field.description} [{variable_name(name)}]")
        group.add_argument(
            flag_name(name),
            dest=name,
            default=argparse.SUPPRESS,
            metavar=name.upper(),
            help=text.replace("%", "%%"),
        )


def settings_epilog() -> str:
    """Every setting, its variable, its default and what it does, as plain text."""
    lines = [
        "settings (environment variables; a flag above overrides its variable):",
    ]
    for name, field in Settings.model_fields.items():
        lines.extend(
            textwrap.wrap(
                f"{variable_name(name)}  (default: {plain(shown_default(name))})",
                WIDTH,
                initial_indent="  ",
                subsequent_indent="      ",
            )
        )
        text = plain(field.description or "")
        if name == "state_dir":
            text += f" Here, by default: {user_data_dir()}"
        lines.extend(
            textwrap.wrap(
                text,
                WIDTH,
                initial_indent="      ",
                subsequent_indent="      ",
            )
        )
    return "\n".join(lines)


def settings_from(args: argparse.Namespace, export: bool = False) -> Settings:
    """The settings: flags over environment variables over defaults; on a bad value, exit with
    status 1 and one line per value, naming its flag or variable.

    ``export``: write the flags given to the environment too, for the server: uvicorn's worker
    processes read their settings from there, and must see the same values."""
    given = {name: value for name, value in vars(args).items() if name in Settings.model_fields}
    try:
        settings = Settings(**given)
    except ValidationError as error:
        raise SystemExit(describe_invalid_settings(error, flags=given)) from None
    for name in given if export else ():
        os.environ[variable_name(name)] = str(getattr(settings, name))
    get_settings.cache_clear()
    return settings
