"""The ``loss-service`` command (``python -m service`` is the same): without a command it runs
the server; ``loss-service datasets ...`` lists, verifies, downloads and splits datasets.

- ``options``: a flag per setting and the ``--help`` list of settings, from the settings model.
- ``datasets``: the ``datasets`` command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from service import __version__
from service.cli.datasets import add_datasets_parser, run_datasets
from service.cli.options import add_setting_flags, settings_epilog, settings_from
from service.settings import Settings

PROG = "loss-service"
SERVER_FLAGS = ("host", "port", "workers", "state_dir", "log_level", "log_format")
DESCRIPTION = """\
Loss Service: PyTorch losses and their gradients over HTTP, and MNIST training jobs
in the background.

Without a command, runs the HTTP server. "python -m service" is the same command."""
EXIT_STATUS = """\
exit status:
  0  the server stopped normally, or the command succeeded
  1  invalid configuration (one line per bad value), or a datasets command failed
  2  unknown command, flag or argument"""

ServeFn = Callable[[Settings], None]


def package_version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    try:
        return version(PROG)
    except PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=f"{settings_epilog()}\n\n{EXIT_STATUS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    add_setting_flags(parser, SERVER_FLAGS, "server options")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    add_datasets_parser(commands)
    return parser


def main(argv: Sequence[str] | None, serve: ServeFn) -> None:
    """Parse ``argv``; run the datasets command, or validate the settings and ``serve``."""
    args = build_parser().parse_args(argv)
    if args.command == "datasets":
        raise SystemExit(run_datasets(args))
    serve(settings_from(args, export=True))
