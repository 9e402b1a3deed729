"""The Open Inference Protocol's binary path beside its in-process floor, and beside the
service's other forms of the same request.

One request: ``mse_loss`` of two float32 tensors of 1M elements each (100 000 x 10), with the
gradients of both, sent to one uvicorn worker of the service (started and stopped here, the way
``bench_losses.py`` starts it) in four forms:

- OIP binary: ``POST /v2/models/mse_loss/infer``, the JSON header then the 8 MB of raw
  float32 bytes (``Inference-Header-Content-Length``), every output asked for as binary data;
- OIP JSON: the same request with flat JSON ``data`` lists in and out;
- v1 base64 and v1 nested: ``POST /v1/losses/mse_loss`` as ``bench_losses.py`` sends them.

Each is timed end to end (client send to last byte received), one request at a time, and each
request beside a run of its floor on the same body in this process. The floor of the binary
form takes the same raw bytes: the JSON header with orjson, ``numpy.frombuffer`` -> torch (no
copy), the loss and its gradients, the answer's header and the gradients' bytes joined; its
bytes are checked to be the service's. The floor of the v1 forms is ``bench_losses.py``'s.

    python benchmarks/bench_oip.py            # about 1 minute
    python benchmarks/bench_oip.py --reps 5   # quicker
    python benchmarks/bench_oip.py --torch-threads 1   # steadier on a machine others load
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
import torch.nn.functional as F
from bench_losses import (
    CORES,
    HOST,
    Server,
    floor_answer,
    group_cpu_seconds,
    large_cases,
    ms,
    running,
    service,
    table,
)

ELEMENTS = 1_000_000
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass(frozen=True)
class Request:
    name: str
    path: str
    body: bytes
    headers: dict[str, str]
    floor: Callable[[], bytes]


def oip_bodies(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[bytes, int, bytes]:
    """The binary request (and its header's length) and the JSON one."""
    shape = list(x.shape)
    binary_header = orjson.dumps(
        {
            "inputs": [
                {"name": n, "shape": shape, "datatype": "FP32",
                 "parameters": {"binary_data_size": a.nbytes}}
                for n, a in (("input", x), ("target", y))
            ],
            "parameters": {"grad": True, "binary_data_output": True},
        }
    )  # fmt: skip
    binary = b"".join([binary_header, x.tobytes(), y.tobytes()])
    json_body = orjson.dumps(
        {
            "inputs": [
                {"name": n, "shape": shape, "datatype": "FP32", "data": a.reshape(-1)}
                for n, a in (("input", x), ("target", y))
            ],
            "parameters": {"grad": True},
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return binary, len(binary_header), json_body


def floor_binary(body: bytes, header_length: int) -> bytes:
    """The binary request to the binary answer with nothing but orjson, numpy and torch."""
    header = orjson.loads(body[:header_length])
    tensors, offset = [], header_length
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.from_numpy on read-only memory: no copy
        for item in header["inputs"]:
            size = item["parameters"]["binary_data_size"]
            array = np.frombuffer(body, np.float32, size // 4, offset).reshape(item["shape"])
            tensors.append(torch.from_numpy(array).requires_grad_(True))
            offset += size
    loss = F.mse_loss(*tensors)
    grads = torch.autograd.grad(loss, tensors)
    outputs = [("loss", loss.detach()), ("grad_input", grads[0]), ("grad_target", grads[1])]
    answer = orjson.dumps(
        {
            "model_name": "mse_loss",
            "model_version": "1",
            "parameters": {"dtype": "float32", "device": "cpu"},
            "outputs": [
                {"name": n, "datatype": "FP32", "shape": list(t.shape),
                 "parameters": {"binary_data_size": t.numel() * 4}}
                for n, t in outputs
            ],
        }
    )  # fmt: skip
    return b"".join([answer, *(t.numpy().tobytes() for _, t in outputs)])


def requests() -> list[Request]:
    v1 = {c.form: c for c in large_cases([ELEMENTS]) if c.loss == "mse_loss"}
    rng = np.random.default_rng(2)  # bench_losses.py's seed and draws: the same tensors
    x = rng.standard_normal((ELEMENTS // 10, 10), dtype=np.float32)
    y = rng.standard_normal((ELEMENTS // 10, 10), dtype=np.float32)
    binary, header_length, json_body = oip_bodies(x, y)
    octets = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(header_length)}
    json_type = {"Content-Type": "application/json"}
    infer = "/v2/models/mse_loss/infer"

    def floor() -> bytes:
        return floor_binary(binary, header_length)

    # The JSON form's floor is the binary one: the least any form of this request can cost.
    return [
        Request("OIP binary", infer, binary, octets, floor),
        # A bare endpoint (reference_apps/ceiling.py) that reads the body and sends it back:
        # what moving these bytes over HTTP costs, with no computation.
        Request("HTTP alone", infer, binary, octets, floor),
        Request("OIP JSON", infer, json_body, json_type, floor),
        *(
            Request(f"v1 {form}", "/v1/losses/mse_loss", v1[form].body, json_type,
                    lambda case=v1[form]: floor_answer(case))
            for form in ("base64", "nested")
        ),
    ]  # fmt: skip


def post(port: int, request: Request) -> bytes:
    # A connection per request: a floor that runs past the server's keep-alive timeout on a
    # busy machine would otherwise find its connection closed. Connecting costs ~0.1 ms.
    conn = http.client.HTTPConnection(HOST, port, timeout=300)
    conn.request("POST", request.path, body=request.body, headers=request.headers)
    response = conn.getresponse()
    content = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{request.name}: HTTP {response.status}: {content[:300]!r}")
    return content


def measure(live: Any, case: Request, reps: int) -> list[str]:
    """``reps`` requests, each beside a run of the floor; a row of the table."""
    post(live.port, case)
    case.floor()
    wall, cpu, floor_wall, floor_cpu = [], [], [], []
    for _ in range(reps):
        server_cpu = group_cpu_seconds(live.pgid)
        start = time.perf_counter()
        post(live.port, case)
        wall.append(time.perf_counter() - start)
        cpu.append(group_cpu_seconds(live.pgid) - server_cpu)
        start, own_cpu = time.perf_counter(), time.process_time()
        case.floor()
        floor_wall.append(time.perf_counter() - start)
        floor_cpu.append(time.process_time() - own_cpu)
    best, median = min(wall), statistics.median(wall)
    print(f"  {case.name:<12} {ms(best):>8} ms best (floor {ms(min(floor_wall))} ms)")
    return [
        case.name,
        f"{len(case.body) / 1e6:.1f} MB",
        f"{ms(min(floor_wall))} / {ms(statistics.median(floor_wall))}",
        f"{ms(best)} / {ms(median)}",
        f"{best / min(floor_wall):.2f}x / {median / statistics.median(floor_wall):.2f}x",
        f"{ms(min(cpu))} / {ms(min(floor_cpu))} = {min(cpu) / min(floor_cpu):.2f}x",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9, help="timed requests of each form")
    parser.add_argument("--port", type=int, default=8872, help="loopback port of the server")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=CORES,
        help="torch threads of the server's worker and of the floor alike (default: the cores)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    cases = requests()
    rows: list[list[str]] = []
    ceiling = Server("ceiling", "benchmarks.reference_apps.ceiling:app", 1, {})
    with tempfile.TemporaryDirectory(prefix="bench-oip-") as tmp:
        with running(ceiling, args.port, Path(tmp)) as live:
            rows.append(measure(live, cases[1], args.reps))
        with running(service(1, args.torch_threads), args.port, Path(tmp)) as live:
            same = post(live.port, cases[0]) == cases[0].floor()
            rows += [measure(live, case, args.reps) for case in cases if case.name != "HTTP alone"]
    print(
        f"\n## mse_loss, 2 x {ELEMENTS:,} float32 elements with both gradients "
        f"({platform.machine()}, {CORES} cores, {args.torch_threads} torch threads, torch "
        f"{torch.__version__}, load average "
        f"{os.getloadavg()[0]:.1f}); end to end, ms, best / median of {args.reps}\n"
    )
    header = ["form", "body", "floor", "service", "service / floor", "CPU ms: server / floor"]
    print(table(header, rows))
    print(f"\nOIP binary answer byte-identical to its floor's: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
