"""The trained model as a file (safetensors) and predictions from it.

Tensors in the file: ``fc1.weight`` ``[hidden, 784]``, ``fc1.bias`` ``[hidden]``,
``fc2.weight`` ``[10, hidden]``, ``fc2.bias`` ``[10]`` (float32), i.e. the ``state_dict`` of the
seed article's ``Net``. Metadata (strings): ``architecture``, ``hidden_units``, ``input_mean``,
``input_std``, ``dataset``, ``classes`` (JSON list), ``loss``, ``job_id``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from threading import Lock

import torch
from safetensors.torch import load_file, save_file

from service.errors import InvalidInput, Loc
from service.jobs.training import INPUT_FEATURES, MEAN, STD, Net

TENSOR_NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")


def save_model(model: Net, path: Path, metadata: dict[str, str]) -> int:
    """Write the model atomically; the file's size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: t.detach().to("cpu", torch.float32).contiguous()
        for name, t in model.state_dict().items()
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path.stat().st_size


def load_model(path: Path) -> Net:
    tensors = load_file(str(path))
    model = Net(tensors["fc1.weight"].shape[0])
    model.load_state_dict(tensors)
    model.eval()
    return model


class ModelCache:
    """The last few loaded models, so that repeated predictions do not reread the file."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._models: OrderedDict[Path, tuple[float, Net]] = OrderedDict()
        self._lock = Lock()

    def get(self, path: Path) -> Net:
        mtime = path.stat().st_mtime
        with self._lock:
            hit = self._models.get(path)
            if hit is not None and hit[0] == mtime:
                self._models.move_to_end(path)
                return hit[1]
        model = load_model(path)
        with self._lock:
            self._models[path] = (mtime, model)
            while len(self._models) > self._size:
                self._models.popitem(last=False)
        return model


def images_to_input(images: torch.Tensor, loc: Loc, normalized: bool) -> torch.Tensor:
    """Wire images -> normalised float32 ``[N, 784]``.

    Shapes: ``[28, 28]``, ``[784]`` (one image), ``[N, 28, 28]``, ``[N, 1, 28, 28]``, ``[N, 784]``.
    Integer tensors are pixel values 0..255; float tensors are intensities in [0, 1] (what
    ``ToTensor`` gives), unless ``normalized`` says they are already (x - mean) / std.
    """
    shape = tuple(images.shape)
    if shape in {(28, 28), (INPUT_FEATURES,)}:
        count = 1
    elif len(shape) >= 2 and (shape[1:] in {(28, 28), (1, 28, 28), (INPUT_FEATURES,)}):
        count = shape[0]
    else:
        raise InvalidInput.at(
            loc,
            f"images must have shape [28, 28], [784], [N, 28, 28], [N, 1, 28, 28] or [N, 784]; "
            f"got {list(shape)}",
            "shape",
        )
    if images.dtype is torch.bool or images.is_complex():
        raise InvalidInput.at(loc, "images must be numbers (0..255 integers or 0..1 floats)")
    x = images.reshape(count, INPUT_FEATURES)
    if not x.is_floating_point():
        if x.numel() and (int(x.min()) < 0 or int(x.max()) > 255):
            raise InvalidInput.at(loc, "integer pixel values must be in 0..255", "int_range")
        return x.to(torch.float32).div_(255.0).sub_(MEAN).div_(STD)
    x = x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise InvalidInput.at(loc, "pixel values must be finite", "finite")
    return x if normalized else (x - MEAN) / STD


@torch.no_grad()
def predict(model: Net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Classes ``[N]`` and softmax probabilities ``[N, 10]``."""
    probabilities = torch.softmax(model(x), dim=1)
    return probabilities.argmax(dim=1), probabilities


def model_metadata(
    job_id: str, config_json: dict[str, object], classes: list[str]
) -> dict[str, str]:
    return {
        "format": "pt",
        "architecture": "mlp-784-hidden-10 (fc1, relu, fc2)",
        "hidden_units": str(config_json["hidden_units"]),
        "input_mean": str(MEAN),
        "input_std": str(STD),
        "dataset": str(config_json["dataset"]),
        "classes": json.dumps(classes),
        "loss": str(config_json["loss"]),
        "job_id": job_id,
    }
