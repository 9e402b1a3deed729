"""Which torch device a request runs on."""

from __future__ import annotations

import re

import torch

from service.errors import DeviceUnavailable

DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"
_DEVICE = re.compile(DEVICE_PATTERN)


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first GPU when torch sees one, else the CPU; ``cuda[:N]`` must exist."""
    if not _DEVICE.match(name):
        raise DeviceUnavailable.at(
            ("body", "device"), f"unknown device {name!r}; use auto, cpu, cuda or cuda:N", "device"
        )
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceUnavailable.at(
            ("body", "device"),
            f"device {name!r} was asked for, but this host has no CUDA GPU "
            "(torch.cuda.is_available() is False); use auto or cpu",
            "device",
        )
    index = int(name.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceUnavailable.at(
            ("body", "device"), f"no {name}: this host has {count} CUDA device(s)", "device"
        )
    return torch.device("cuda", index)


def describe_devices() -> list[dict[str, object]]:
    devices: list[dict[str, object]] = [{"name": "cpu", "type": "cpu"}]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                {
                    "name": f"cuda:{index}",
                    "type": "cuda",
                    "model": props.name,
                    "memory_bytes": props.total_memory,
                }
            )
    return devices
