"""benchmarks/gpu_check.sh says plainly when there is no GPU, and runs nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: run the check itself")
def test_without_a_gpu_it_says_so_and_exits_3() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 3, (done.stdout, done.stderr[-2000:])
    assert done.stdout.strip().splitlines()[-1].startswith("NO GPU FOUND:")
    assert "== property" not in done.stdout
