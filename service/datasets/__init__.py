"""The MNIST-family datasets: what files they have, how to read them, and how to fetch them.

- ``catalog``: each dataset's four IDX files, their published checksums and default mirrors.
- ``idx``: read and write the IDX format (gzip-compressed or not).
- ``download``: fetch missing files from mirrors, verify checksums, write atomically.
- ``loader``: the four files of one dataset folder as tensors, ready for training.
"""

from service.datasets.catalog import DATASETS, DatasetSpec, dataset_spec
from service.datasets.download import DatasetUnavailable, ensure_dataset
from service.datasets.loader import MnistSplit, load_split

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DatasetUnavailable",
    "MnistSplit",
    "dataset_spec",
    "ensure_dataset",
    "load_split",
]
