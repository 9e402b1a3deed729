"""Write a PEP 503 "simple" index for a folder of wheels: ``simple_index.py WHEELS OUT``."""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path


def main(wheels: Path, out: Path) -> None:
    projects: dict[str, list[Path]] = defaultdict(list)
    for wheel in sorted(wheels.glob("*.whl")):
        name = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        projects[name].append(wheel)
    for name, files in projects.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../../wheels/{f.name}">{f.name}</a>\n' for f in files)
        (folder / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    index = "".join(f'<a href="{name}/">{name}</a>\n' for name in sorted(projects))
    (out / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{index}</body></html>\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
