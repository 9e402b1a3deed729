"""Grading throughput: 1,000 submissions of one problem in one POST /v1/grade.

The problem: cross_entropy on 64x10 logits, each submission a loss value and a gradient
(half right, the rest with typical mistakes: the sum instead of the mean, the gradient of the
sum, a flipped sign, noise). Compared with evaluating the reference alone 1,000 times
in-process (parse the request, decode, compute loss and gradient), the work grading saves by
computing the reference once. Also: /v1/evaluate with stackable items, stacked vs one by one.

    python benchmarks/bench_grading.py [--repeat 5] [--out benchmarks/results/grading.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from service.app import create_app
from service.compute import batched
from service.compute.engine import evaluate
from service.http.evaluate_requests import evaluate_document
from service.http.grading_requests import grade_document
from service.http.loss_requests import new_budget, parse_loss_call
from service.losses.registry import resolve
from service.settings import Settings
from service.tensors.wirejson import dumps, gc_paused

SUBMISSIONS = 1000


def problem() -> dict[str, Any]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=generator) * 3
    target = torch.randint(0, 10, (64,), generator=generator)
    return {
        "loss": "cross_entropy",
        "input": logits.tolist(),
        "target": target.tolist(),
        "grad": ["input"],
    }


def submissions(body: dict[str, Any], count: int) -> list[dict[str, Any]]:
    x = torch.tensor(body["input"], requires_grad=True)
    y = torch.tensor(body["target"])
    mean = F.cross_entropy(x, y)
    (grad,) = torch.autograd.grad(mean, x)
    total = mean.item() * len(body["target"])
    generator = torch.Generator().manual_seed(1)
    out = []
    for index in range(count):
        kind = index % 8
        noise = torch.randn(grad.shape, generator=generator) * 1e-7
        if kind < 4:
            out.append({"loss": mean.item(), "grad": {"input": (grad + noise).tolist()}})
        elif kind == 4:
            out.append({"loss": total, "grad": {"input": (grad * 64).tolist()}})
        elif kind == 5:
            out.append({"loss": -mean.item(), "grad": {"input": (-grad).tolist()}})
        else:
            out.append(
                {"loss": mean.item() * 1.01, "grad": {"input": (grad + noise * 1e5).tolist()}}
            )
    return out


def timed(*works: Callable[[], object], repeat: int) -> list[float]:
    """The median time of each work in seconds, runs interleaved (one warm-up each first) so
    that a change in the machine's load affects all of them alike."""
    for work in works:
        work()
    times: list[list[float]] = [[] for _ in works]
    for _ in range(repeat):
        for index, work in enumerate(works):
            start = time.perf_counter()
            work()
            times[index].append(time.perf_counter() - start)
    return [statistics.median(each) for each in times]


def cpu_time(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    settings = Settings()
    app = create_app(settings)
    body = problem()
    document = {**body, "submissions": submissions(body, SUBMISSIONS)}
    raw = orjson.dumps(document)

    spec = resolve("cross_entropy")
    fields = {key: value for key, value in body.items() if key != "loss"}

    def reference_alone() -> None:
        for _ in range(SUBMISSIONS):
            evaluate(parse_loss_call(spec, fields), new_budget(settings))

    def grade_in_process() -> bytes:
        with gc_paused():  # as the route does for large bodies
            return dumps(grade_document(orjson.loads(raw), settings))

    answer = orjson.loads(grade_in_process())
    assert answer["summary"]["submissions"] == SUBMISSIONS
    with TestClient(app) as client:

        def grade_over_http() -> None:
            response = client.post(
                "/v1/grade", content=raw, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200

        http_s, in_process_s, reference_s = timed(
            grade_over_http, grade_in_process, reference_alone, repeat=args.repeat
        )
    # CPU time of this process: less sensitive than wall time to other work on the machine.
    cpu_s = statistics.median(cpu_time(grade_in_process) for _ in range(args.repeat))

    items = []
    generator = torch.Generator().manual_seed(2)
    for _ in range(SUBMISSIONS):
        x, y = torch.randn(64, generator=generator), torch.randn(64, generator=generator)
        items.append(
            {
                "loss": "mse_loss",
                "input": x.tolist(),
                "target": y.tolist(),
                "params": {"reduction": "none"},
                "grad": True,
            }
        )
    batch = orjson.dumps({"requests": items})

    def evaluate_batch() -> None:
        with gc_paused():
            evaluate_document(orjson.loads(batch), settings)

    def evaluate_one_by_one() -> None:
        stackable = batched.STACKABLE
        batched.STACKABLE = frozenset()
        try:
            evaluate_batch()
        finally:
            batched.STACKABLE = stackable

    stacked_s, one_by_one_s = timed(evaluate_batch, evaluate_one_by_one, repeat=args.repeat)

    summary = answer["summary"]
    lines = [
        "# Grading benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads; median of {args.repeat} runs after a warm-up; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on "
        "the machine slows every figure alike).",
        "",
        f"Problem: cross_entropy, 64x10 logits; {SUBMISSIONS} submissions (loss and gradient) in "
        f"one call; {summary['passed']} pass, the others carry typical mistakes "
        "(hints computed).",
        "",
        "| what | time | submissions/s |",
        "| --- | ---: | ---: |",
        f"| POST /v1/grade, {SUBMISSIONS} submissions, through the app (TestClient) | "
        f"{http_s * 1000:.0f} ms | {SUBMISSIONS / http_s:,.0f} |",
        f"| the same, handler only (orjson in, grade, orjson out) | "
        f"{in_process_s * 1000:.0f} ms | {SUBMISSIONS / in_process_s:,.0f} |",
        f"| the handler only, CPU time of the process | {cpu_s * 1000:.0f} ms | "
        f"{SUBMISSIONS / cpu_s:,.0f} |",
        f"| evaluating the reference alone {SUBMISSIONS} times in-process | "
        f"{reference_s * 1000:.0f} ms | {SUBMISSIONS / reference_s:,.0f} |",
        "",
        f"Grading {SUBMISSIONS} submissions takes {http_s / reference_s:.2f}x the time of "
        f"evaluating the reference {SUBMISSIONS} times ({in_process_s / reference_s:.2f}x for "
        "the handler alone).",
        "",
        f"POST /v1/evaluate, {SUBMISSIONS} mse_loss items (64 elements, reduction 'none', "
        f"gradients), handler only: stacked {stacked_s * 1000:.0f} ms, one by one "
        f"{one_by_one_s * 1000:.0f} ms ({one_by_one_s / stacked_s:.2f}x).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
