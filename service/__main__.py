"""``python -m service``: run the service with uvicorn (``service.server.serve``)."""

from __future__ import annotations

import argparse

from service.server import WORKERS_VARIABLE, serve
from service.settings import get_settings_or_exit

__all__ = ["WORKERS_VARIABLE", "main"]


def main(argv: list[str] | None = None) -> None:
    settings = get_settings_or_exit()
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", default=settings.host, help=f"default: {settings.host}")
    parser.add_argument("--port", type=int, default=settings.port, help=f"default: {settings.port}")
    parser.add_argument(
        "--workers", type=int, default=settings.workers, help=f"default: {settings.workers}"
    )
    args = parser.parse_args(argv)
    serve(settings, args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
