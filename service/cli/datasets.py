"""``loss-service datasets list|verify|download|split``: the data folder, from the command line.

Results go to stdout, download progress to stderr; each action returns its exit status
(0 done, 1 failed) and prints one line saying why when it fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from service.cli.options import add_setting_flags, settings_from
from service.datasets.catalog import DATASETS, FILE_NAMES, ROLES, dataset_spec
from service.datasets.download import DatasetUnavailable, ensure_dataset, local_file
from service.datasets.inventory import DatasetState, survey, verify
from service.datasets.split import MANIFEST, SplitError, make_split
from service.settings import Settings

WHERE_FLAGS = ("state_dir", "data_dir")
PROGRESS_EVERY_S = 2.0


def add_datasets_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "datasets",
        help="list, verify, download or split the training datasets",
        description="The datasets training jobs read: one folder per dataset "
        f"({', '.join(DATASETS)}) in the data folder, each holding four IDX files.",
    )
    add_setting_flags(parser, WHERE_FLAGS, "where")
    actions = parser.add_subparsers(dest="action", title="actions", metavar="ACTION", required=True)
    names = ", ".join(DATASETS)

    listing = actions.add_parser("list", help="each dataset: complete or not, sample counts")
    check = actions.add_parser(
        "verify",
        help="read every file: IDX layout, images paired with labels, MD5 checksums",
    )
    check.add_argument("names", nargs="*", metavar="NAME", help=f"{names} (default: those present)")
    download = actions.add_parser(
        "download", help="download the missing files of a dataset, checking their MD5"
    )
    download.add_argument("name", choices=list(DATASETS), metavar="NAME", help=names)
    download.add_argument(
        "--mirror",
        action="append",
        metavar="URL",
        help="a base URL to download from (repeatable); default: the mirrors setting "
        "(LOSS_SERVICE_MNIST_MIRRORS, LOSS_SERVICE_FASHION_MNIST_MIRRORS) or the usual ones",
    )
    split = actions.add_parser(
        "split",
        help="make train-* and t10k-* files from the IDX files at hand",
        description="Pool the image/label pairs found in SOURCE (train-* and/or t10k-*), "
        "shuffle them with a seed, and write a train/test split as the dataset NAME in the data "
        f"folder, with {MANIFEST} recording sources, parameters and checksums.",
    )
    split.add_argument("source", type=Path, metavar="SOURCE", help="folder of IDX files")
    split.add_argument(
        "--name", choices=list(DATASETS), default="mnist", help="dataset to write (default: mnist)"
    )
    split.add_argument(
        "--test",
        type=float,
        default=0.2,
        help="the test part: a fraction such as 0.2 (the default) or a count such as 2000",
    )
    split.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    split.add_argument(
        "--in-order",
        action="store_true",
        help="no shuffle: the first samples train, the last ones test",
    )
    split.add_argument("--force", action="store_true", help="replace files already there")
    for action in (listing, check, download, split):
        add_setting_flags(action, WHERE_FLAGS, "where")


def run_datasets(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.action == "list":
        return list_datasets(settings)
    if args.action == "verify":
        return verify_datasets(settings, args.names)
    if args.action == "download":
        return download_dataset(settings, args.name, args.mirror)
    return split_dataset(settings, args)


def list_datasets(settings: Settings) -> int:
    print(f"data folder: {settings.data_dir}")
    for name, spec in DATASETS.items():
        state = survey(spec, settings.data_dir)
        print(f"{name:<14} {_summary(state):<42} {state.folder}")
    return 0


def _summary(state: DatasetState) -> str:
    if state.complete:
        train, test = state.samples("train_images"), state.samples("test_images")
        return f"complete: {train} train, {test} test"
    if not state.present:
        return "missing"
    return f"incomplete: {state.present} of {len(ROLES)} files"


def verify_datasets(settings: Settings, names: list[str]) -> int:
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        print(f"unknown dataset {unknown[0]!r}: choose from {', '.join(DATASETS)}", file=sys.stderr)
        return 1
    if not names:
        names = [n for n, spec in DATASETS.items() if survey(spec, settings.data_dir).present]
        if not names:
            print(f"no dataset in {settings.data_dir}", file=sys.stderr)
            return 1
    failed = 0
    for name in names:
        state = verify(dataset_spec(name), settings.data_dir)
        print(f"{name}: {state.folder}")
        for role, entry in state.files.items():
            if entry.path is None:
                print(f"  {FILE_NAMES[role]:<28} missing")
                continue
            kind = "images" if role.endswith("images") else "labels"
            print(f"  {entry.path.name:<28} {entry.samples} {kind}, {entry.checksum}")
            if entry.problem:
                print(f"    problem: {entry.problem}")
        problems = sum(1 for e in state.files.values() if e.problem)
        missing = len(ROLES) - state.present
        if state.ok:
            print(f"{name}: ok")
        else:
            failed += 1
            print(f"{name}: {problems} bad, {missing} missing file(s)")
    return 1 if failed else 0


def download_dataset(settings: Settings, name: str, mirrors: list[str] | None) -> int:
    spec = dataset_spec(name)
    folder = settings.data_dir / name
    configured = (
        settings.fashion_mnist_mirrors if name == "fashion-mnist" else settings.mnist_mirrors
    )
    before = {role for role in ROLES if local_file(folder, role) is not None}
    last = [0.0]

    def progress(file: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            of = f" of {total}" if total else ""
            print(f"  {file}: {done}{of} bytes", file=sys.stderr, flush=True)

    try:
        ensure_dataset(
            spec,
            folder,
            mirrors or configured or None,
            timeout_s=settings.download_timeout_s,
            progress=progress,
        )
    except DatasetUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    got = len(ROLES) - len(before)
    if got:
        print(f"{name}: {len(ROLES)} files in {folder} ({got} downloaded, MD5 checked)")
    else:
        print(f"{name}: all {len(ROLES)} files already in {folder}; nothing downloaded")
    return 0


def split_dataset(settings: Settings, args: argparse.Namespace) -> int:
    target = settings.data_dir / args.name
    seed = None if args.in_order else args.seed
    try:
        result = make_split(args.source, target, test=args.test, seed=seed, force=args.force)
    except (SplitError, DatasetUnavailable, ValueError, OSError) as exc:
        print(f"cannot split: {exc}", file=sys.stderr)
        return 1
    order = "in file order" if seed is None else f"shuffled with seed {seed}"
    print(
        f"{args.name}: {result.train} train and {result.test} test samples ({order}) "
        f"written to {result.folder} with {MANIFEST}"
    )
    return 0
