"""What each supported dataset consists of: file names, published MD5 checksums, mirrors.

The checksums are the ones the dataset authors publish (and torchvision verifies): they identify
the original ``.gz`` files, so they are checked on download. Files a user puts in the data
folder by hand (re-compressed copies, custom splits) are only checked for a valid IDX layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DatasetName = Literal["mnist", "fashion-mnist"]
Role = Literal["train_images", "train_labels", "test_images", "test_labels"]
ROLES: tuple[Role, ...] = ("train_images", "train_labels", "test_images", "test_labels")

FILE_NAMES: dict[Role, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class DatasetSpec:
    name: DatasetName
    md5: dict[Role, str]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    train_size: int = 60_000  # images in the training split (both sets)

    def file_name(self, role: Role) -> str:
        return FILE_NAMES[role]


MNIST = DatasetSpec(
    name="mnist",
    md5={
        "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
        "test_images": "9fb629c4189551a2d022fa330f9573f3",
        "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    classes=tuple(str(digit) for digit in range(10)),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    md5={
        "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
        "test_images": "bef4ecab320f06d8554ea6380940ec79",
        "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS[name]
