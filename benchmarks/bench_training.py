"""Side-by-side benchmark of MNIST training: the seed article's pipeline against the service's.

One run, both pipelines in this process taking turns epoch by epoch, with the same torch thread
count, model (784-128-10 MLP), optimizer (Adam, lr 1e-3), batch 64, 5 epochs, cross-entropy:

- seed: the article's pipeline. A per-sample ``Dataset`` turns each uint8 image into a PIL image,
  then ``ToTensor`` and ``Normalize((0.1307,), (0.3081,))`` (re-created with PIL and torch
  exactly as torchvision implements them: torchvision's wheel does not run with the CPU torch
  here), through ``DataLoader(batch_size=64, shuffle=True)``; ``optim.Adam`` with its default
  implementation; the loss printed (``.item()``) every 100 batches, as the article does.
- ours: ``service.jobs.training.train``, the code the job worker runs: the IDX files decoded
  once into a normalised float tensor, a random permutation indexed in batches, fused Adam.

Seconds per epoch (median over the epochs; the minimum too, the best estimate of an idle
machine) are training only (the test-set evaluation after
each epoch is timed apart). Then a per-step breakdown of both, and the compute floor:
forward + backward + optimizer step on one batch already in memory, times the steps of an epoch.

    apt-get install -y dataset-fashion-mnist && pip install -e ".[bench]"   # Pillow
    python benchmarks/bench_training.py                 # both datasets, about 6 minutes
    python benchmarks/bench_training.py --quick         # 1 epoch each, about 1.5 minutes

Datasets: full Fashion-MNIST (60,000 / 10,000) from /usr/share/datasets/fashion-mnist, and a
real-MNIST split made from ../shared/data/mnist (the 10,000 MNIST test images: the first 8,000
as train, the last 2,000 as test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.datasets import load_split  # noqa: E402
from service.datasets.catalog import FILE_NAMES  # noqa: E402
from service.datasets.split import make_split  # noqa: E402
from service.jobs.config import JobConfig  # noqa: E402
from service.jobs.training import LOSSES, Net, TrainingHooks, normalise, train  # noqa: E402

try:
    from PIL import Image
except ImportError:  # pragma: no cover
    sys.exit("the seed pipeline needs Pillow: pip install -e '.[bench]'")

MEAN, STD = 0.1307, 0.3081
FASHION = Path("/usr/share/datasets/fashion-mnist")
MNIST_TEST = ROOT.parent / "shared" / "data" / "mnist"


# ---------------------------------------------------------------------------------------------
# The seed pipeline


def to_tensor(pic: Image.Image) -> torch.Tensor:
    """torchvision.transforms.ToTensor for a mode 'L' PIL image."""
    img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
    img = img.view(pic.size[1], pic.size[0], 1).permute((2, 0, 1)).contiguous()
    return img.to(dtype=torch.get_default_dtype()).div(255)


def normalize(tensor: torch.Tensor, mean: tuple[float], std: tuple[float]) -> torch.Tensor:
    """torchvision.transforms.Normalize (functional.normalize, not in place)."""
    tensor = tensor.clone()
    m = torch.as_tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return tensor.sub_(m).div_(s)


class Compose:
    def __init__(self, transforms: list[Callable[[Any], Any]]) -> None:
        self.transforms = transforms

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x


class SeedMNIST(Dataset[tuple[torch.Tensor, int]]):
    """torchvision.datasets.MNIST's __getitem__: uint8 array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Compose) -> None:
        self.data, self.targets, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")
        return self.transform(img), target


def seed_transform() -> Compose:
    return Compose([to_tensor, lambda t: normalize(t, (MEAN,), (STD,))])


class SeedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 28 * 28)
        x = torch.relu(self.fc1(x))
        return self.fc2(x)  # type: ignore[no-any-return]


class SeedRun:
    """The article's training loop, one epoch at a time (then a test-set evaluation)."""

    def __init__(self, split: Any, seed: int) -> None:
        torch.manual_seed(seed)
        train_set = SeedMNIST(split.train_images, split.train_labels, seed_transform())
        self.test_set = SeedMNIST(split.test_images, split.test_labels, seed_transform())
        self.train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
        self.test_loader = DataLoader(self.test_set, batch_size=1000)
        self.model = SeedNet()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.001)
        self.criterion = nn.CrossEntropyLoss()
        self.epoch_s: list[float] = []
        self.eval_s: list[float] = []
        self.accuracy: list[float] = []
        self.log: list[str] = []

    def start_epoch(self) -> None:
        self.model.train()
        self.batches = enumerate(self.train_loader)
        self.seconds = 0.0
        self.steps = 0

    def step(self) -> None:
        """One iteration of the article's loop: fetch a batch, train on it."""
        start = time.perf_counter()
        batch_idx, (data, target) = next(self.batches)
        self.optimizer.zero_grad()
        output = self.model(data)
        loss = self.criterion(output, target)
        loss.backward()
        self.optimizer.step()
        if batch_idx % 100 == 0:
            epoch = len(self.epoch_s)
            self.log.append(f"Epoch: {epoch} | Batch: {batch_idx} | Loss: {loss.item():.4f}")
        self.seconds += time.perf_counter() - start
        self.steps += 1

    def epoch(self) -> None:
        self.start_epoch()
        for _ in range(len(self.train_loader)):
            self.step()
        self.end_epoch()

    def end_epoch(self) -> None:
        assert next(self.batches, None) is None, "both loops take the same number of steps"
        self.epoch_s.append(self.seconds)
        start = time.perf_counter()
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for data, target in self.test_loader:
                correct += int((self.model(data).argmax(1) == target).sum())
        self.eval_s.append(time.perf_counter() - start)
        self.accuracy.append(correct / len(self.test_set))

    def summary(self) -> dict[str, Any]:
        return {
            "epoch_s": self.epoch_s,
            "eval_s": self.eval_s,
            "test_accuracy": self.accuracy,
            "last_log_line": self.log[-1],
        }


def seed_breakdown(split: Any, steps: int) -> dict[str, float]:
    """Seconds per step: fetching a batch from the DataLoader vs the training step."""
    train_set = SeedMNIST(split.train_images, split.train_labels, seed_transform())
    loader = iter(DataLoader(train_set, batch_size=64, shuffle=True))
    model = SeedNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    data_t, step_t = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        data, target = next(loader)
        t1 = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()
        t2 = time.perf_counter()
        data_t.append(t1 - t0)
        step_t.append(t2 - t1)
    return {"data": statistics.median(data_t), "compute": statistics.median(step_t)}


# ---------------------------------------------------------------------------------------------
# Ours


def run_interleaved(split: Any, epochs: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ours epoch 1, seed epoch 1, ours epoch 2, ...: the two pipelines take turns epoch by
    epoch, so a neighbour's load on the machine tends to slow both, not one. (Taking turns step
    by step would be fairer still to noise but not to caches: each seed step evicts the
    model and optimizer state that ours keeps hot when it runs alone, as it does in a job.)
    Ours is ``service.jobs.training.train`` itself; its ``on_epoch`` hook runs a seed epoch."""
    seed_run = SeedRun(split, seed)
    start = time.perf_counter()
    train_x, test_x = normalise(split.train_images), normalise(split.test_images)
    prep_s = time.perf_counter() - start
    hooks = TrainingHooks(on_epoch=lambda result, model: seed_run.epoch())
    result = train(
        JobConfig(epochs=epochs),
        seed,
        train_x,
        split.train_labels,
        test_x,
        split.test_labels,
        torch.device("cpu"),
        hooks,
    )
    ours = {
        "prep_s": prep_s,
        "epoch_s": [e.train_seconds for e in result.epochs],
        "eval_s": [e.eval_seconds for e in result.epochs],
        "test_accuracy": [e.test_accuracy for e in result.epochs],
    }
    return seed_run.summary(), ours


def ours_breakdown(split: Any, steps: int) -> dict[str, float]:
    """Seconds per step of each part of our loop, and the compute floor (no data access)."""
    x = normalise(split.train_images)
    y = split.train_labels
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = LOSSES["cross_entropy"]
    perm = torch.randperm(len(x))
    parts: dict[str, list[float]] = {"index": [], "forward": [], "backward": [], "step": []}
    for i in range(steps):
        t0 = time.perf_counter()
        index = perm[i * 64 : (i + 1) * 64]
        xb, yb = x.index_select(0, index), y.index_select(0, index)
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        t4 = time.perf_counter()
        for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            value_list = parts[key]
            value_list.append(value)
    # Floor: the same step on one batch already in memory (no indexing at all).
    xb, yb = x[:64].clone(), y[:64].clone()
    floor = []
    for _ in range(steps):
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xb), yb).backward()
        optimizer.step()
        floor.append(time.perf_counter() - t0)
    out = {key: statistics.median(values) for key, values in parts.items()}
    out["floor_step"] = statistics.median(floor)
    return out


# ---------------------------------------------------------------------------------------------


def mnist_split(folder: Path) -> Path:
    """The real-MNIST 8,000 / 2,000 split in file order, written in the standard IDX layout
    (what ``loss-service datasets split SOURCE --test 2000 --in-order`` writes)."""
    return make_split(MNIST_TEST, folder, test=2000, seed=None).folder


def bench_dataset(name: str, folder: Path, epochs: int, seed: int) -> dict[str, Any]:
    split = load_split({role: folder / fname for role, fname in FILE_NAMES.items()})
    print(
        f"\n== {name}: {len(split.train_images)} train / {len(split.test_images)} test, "
        f"{epochs} epochs, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    seed_result, ours = run_interleaved(split, epochs, seed)
    print(
        f"seed: s/epoch {fmt(seed_result['epoch_s'])}  acc {fmt(seed_result['test_accuracy'])}",
        flush=True,
    )
    print(f"ours: s/epoch {fmt(ours['epoch_s'])}  acc {fmt(ours['test_accuracy'])}", flush=True)
    steps = min(300, math.ceil(len(split.train_images) / 64))
    sb, ob = seed_breakdown(split, steps), ours_breakdown(split, steps)
    steps_per_epoch = math.ceil(len(split.train_images) / 64)
    # Medians: robust to a noisy neighbour slowing one epoch down.
    seed_mean = statistics.median(seed_result["epoch_s"])
    ours_mean = statistics.median(ours["epoch_s"])
    floor_epoch = ob["floor_step"] * steps_per_epoch
    return {
        "dataset": name,
        "train": len(split.train_images),
        "test": len(split.test_images),
        "epochs": epochs,
        "seed": seed_result,
        "ours": ours,
        "seconds_per_epoch": {"seed": seed_mean, "ours": ours_mean},
        "speedup": seed_mean / ours_mean,
        "min_seconds_per_epoch": {
            "seed": min(seed_result["epoch_s"]),
            "ours": min(ours["epoch_s"]),
        },
        "speedup_of_minimums": min(seed_result["epoch_s"]) / min(ours["epoch_s"]),
        "final_accuracy": {
            "seed": seed_result["test_accuracy"][-1],
            "ours": ours["test_accuracy"][-1],
        },
        "per_step_ms": {
            "seed": {k: v * 1e3 for k, v in sb.items()},
            "ours": {k: v * 1e3 for k, v in ob.items()},
        },
        "seed_data_fraction": sb["data"] / (sb["data"] + sb["compute"]),
        "floor_epoch_s": floor_epoch,
        "ours_over_floor": ours_mean / floor_epoch,
    }


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 epoch per dataset")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads for both pipelines (default: torch's, one per core, as the article "
        "runs; a job's process uses LOSS_SERVICE_JOB_TORCH_THREADS=1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fashion", type=Path, default=FASHION)
    parser.add_argument("--only", choices=["fashion-mnist", "mnist"], default=None)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "training.json"
    )
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = []
        if args.only in (None, "fashion-mnist"):
            sets.append(("fashion-mnist", args.fashion))
        if args.only in (None, "mnist"):
            sets.append(("mnist-8k/2k", mnist_split(Path(tmp) / "mnist")))
        for name, folder in sets:
            results.append(bench_dataset(name, folder, epochs, args.seed))
    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_after": os.getloadavg(),
        },
        "results": results,
    }
    print(f"load average after: {os.getloadavg()}")
    print(
        "\n| dataset | seed s/epoch | ours s/epoch | speedup | speedup (fastest epochs) | "
        "seed acc | ours acc | ours / floor |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['dataset']} | {r['seconds_per_epoch']['seed']:.3f} | "
            f"{r['seconds_per_epoch']['ours']:.3f} | {r['speedup']:.1f}x | "
            f"{r['speedup_of_minimums']:.1f}x | "
            f"{r['final_accuracy']['seed']:.4f} | {r['final_accuracy']['ours']:.4f} | "
            f"{r['ours_over_floor']:.2f}x |"
        )
    for r in results:
        s, o = r["per_step_ms"]["seed"], r["per_step_ms"]["ours"]
        print(
            f"\n{r['dataset']} per step (median ms): seed data {s['data']:.3f} + compute "
            f"{s['compute']:.3f} (data {100 * r['seed_data_fraction']:.0f}%); ours index "
            f"{o['index']:.3f} + forward {o['forward']:.3f} + backward {o['backward']:.3f} + "
            f"step {o['step']:.3f}; floor {o['floor_step']:.3f} ms/step = "
            f"{r['floor_epoch_s']:.3f} s/epoch"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
