"""Student-style mistakes, each computed the way a student would, get the right verdict and hint.

Every wrong answer here is produced by a plain re-implementation of the mistaken formula, not
by the service, so a hint that fires means the service recognised the numbers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

LOGITS = [[1.2, 0.4, -0.5, 2.1], [0.8, 1.9, -1.2, 0.4], [0.3, -0.7, 1.5, 0.2]]
TARGET = [3, 1, 2]
WEIGHT = [0.5, 2.0, 1.0, 3.0]


def wire(value: Any) -> Any:
    """Non-finite floats as the wire's strings (JSON has no NaN or Infinity)."""
    if isinstance(value, list):
        return [wire(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def grade(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/grade", content=json.dumps(wire_submission(body)))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def wire_submission(body: dict[str, Any]) -> dict[str, Any]:
    submission = dict(body.get("submission", {}))
    if "loss" in submission:
        submission["loss"] = wire(submission["loss"])
    if "grad" in submission:
        submission["grad"] = {k: wire(v) for k, v in submission["grad"].items()}
    return {**body, "submission": submission} if "submission" in body else body


def check(result: dict[str, Any], quantity: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in result["checks"] if c["quantity"] == quantity)
    return found


def hint_codes(result: dict[str, Any], quantity: str) -> list[str]:
    return [hint["code"] for hint in check(result, quantity)["hints"]]


def logits(requires_grad: bool = True) -> torch.Tensor:
    return torch.tensor(LOGITS, requires_grad=requires_grad)


def test_a_correct_answer_passes_every_check(client: TestClient) -> None:
    x = logits()
    loss = F.cross_entropy(x, torch.tensor(TARGET))
    (grad,) = torch.autograd.grad(loss, x)
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "submission": {"loss": loss.item(), "grad": {"input": grad.tolist()}},
        },
    )
    assert result["passed"] is True and result["score"] == 1.0
    assert [c["reason"] for c in result["checks"]] == ["match", "match"]
    assert all(c["hints"] == [] for c in result["checks"])


def test_forgot_the_mean_sum_instead(client: TestClient) -> None:
    x = logits(False)
    per_sample = -torch.log_softmax(x, 1)[torch.arange(3), torch.tensor(TARGET)]
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "submission": {"loss": per_sample.sum().item()},
        },
    )
    assert result["passed"] is False and result["score"] == 0.0
    assert hint_codes(result, "loss") == ["sum_instead_of_mean"]
    assert "the number of samples (3)" in check(result, "loss")["hints"][0]["message"]


def test_mean_over_n_with_weight(client: TestClient) -> None:
    x, w, y = logits(False), torch.tensor(WEIGHT), torch.tensor(TARGET)
    weighted = -w[y] * torch.log_softmax(x, 1)[torch.arange(3), y]
    wrong = weighted.sum() / len(TARGET)  # divides by N, not by the sum of w[y]
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "params": {"weight": WEIGHT},
            "submission": {"loss": wrong.item()},
        },
    )
    assert not result["passed"]
    assert hint_codes(result, "loss") == ["mean_over_samples"]
    message = check(result, "loss")["hints"][0]["message"]
    assert "sum of the weights of the target classes (6)" in message  # 3.0 + 2.0 + 1.0


def test_bce_log_without_the_clamp(client: TestClient) -> None:
    p, y = [0.0, 0.7, 1.0, 0.2], [1.0, 1.0, 0.0, 0.0]
    pt, yt = torch.tensor(p), torch.tensor(y)
    naive = -(yt * torch.log(pt) + (1 - yt) * torch.log(1 - pt)).mean()  # log(0) = -inf
    assert torch.isinf(naive)
    result = grade(
        client,
        {
            "loss": "binary_cross_entropy",
            "input": p,
            "target": y,
            "submission": {"loss": naive.item()},
        },
    )
    loss_check = check(result, "loss")
    assert loss_check["reason"] == "non_finite" and not loss_check["passed"]
    assert hint_codes(result, "loss") == ["bce_log_clamp"]


def test_bce_gradient_without_the_clamp(client: TestClient) -> None:
    p, y = [0.0, 0.7, 0.4], [1.0, 1.0, 0.0]
    pt, yt = torch.tensor(p), torch.tensor(y)
    naive = (-(yt / pt) + (1 - yt) / (1 - pt)) / 3  # -inf at p = 0
    result = grade(
        client,
        {
            "loss": "binary_cross_entropy",
            "input": p,
            "target": y,
            "submission": {"grad": {"input": naive.tolist()}},
        },
    )
    assert check(result, "grad.input")["non_finite"] == 1
    assert hint_codes(result, "grad.input") == ["bce_log_clamp"]


def test_softmax_not_fused_overflows_to_nan(client: TestClient) -> None:
    big = [[120.0, 3.0, -4.0], [0.5, 1.0, 2.0]]
    x, y = torch.tensor(big), torch.tensor([0, 2])
    probs = torch.exp(x) / torch.exp(x).sum(1, keepdim=True)  # inf / inf in float32
    naive = -torch.log(probs[torch.arange(2), y]).mean()
    naive_grad = (probs - F.one_hot(y, 3)) / 2
    assert torch.isnan(naive)
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": big,
            "target": [0, 2],
            "grad": True,
            "submission": {"loss": naive.item(), "grad": {"input": naive_grad.tolist()}},
        },
    )
    assert check(result, "loss")["reason"] == "non_finite"
    assert hint_codes(result, "loss") == ["softmax_not_fused"]
    grad_check = check(result, "grad.input")
    assert grad_check["mismatched"] == 1 and grad_check["non_finite"] == 1  # exp(120) / inf
    assert hint_codes(result, "grad.input") == ["softmax_not_fused"]


def test_gradient_sign_flipped(client: TestClient) -> None:
    x = logits()
    (grad,) = torch.autograd.grad(F.cross_entropy(x, torch.tensor(TARGET)), x)
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "submission": {"grad": {"input": (-grad).tolist()}},
        },
    )
    assert [c["quantity"] for c in result["checks"]] == ["grad.input"]
    assert hint_codes(result, "grad.input") == ["sign_flipped"]


def test_gradient_of_the_sum_instead_of_the_mean(client: TestClient) -> None:
    x = logits()
    (grad,) = torch.autograd.grad(F.cross_entropy(x, torch.tensor(TARGET), reduction="sum"), x)
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "submission": {"grad": {"input": grad.tolist()}},
        },
    )
    assert check(result, "grad.input")["mismatched"] == 12
    assert hint_codes(result, "grad.input") == ["gradient_of_sum"]


def test_gradient_of_the_mean_when_sum_was_asked(client: TestClient) -> None:
    x = torch.tensor([1.5, 2.0, 3.2], requires_grad=True)
    (grad,) = torch.autograd.grad(F.mse_loss(x, torch.tensor([1.0, 2.5, 2.8])), x)
    result = grade(
        client,
        {
            "loss": "mse_loss",
            "input": [1.5, 2.0, 3.2],
            "target": [1.0, 2.5, 2.8],
            "params": {"reduction": "sum"},
            "submission": {"grad": {"input": grad.tolist()}},
        },
    )
    assert hint_codes(result, "grad.input") == ["gradient_of_mean"]


def test_transposed_gradient(client: TestClient) -> None:
    x = logits()
    (grad,) = torch.autograd.grad(F.cross_entropy(x, torch.tensor(TARGET)), x)
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "submission": {"grad": {"input": grad.T.tolist()}},
        },
    )
    grad_check = check(result, "grad.input")
    assert grad_check["reason"] == "shape"
    assert grad_check["shape"] == {"expected": [3, 4], "submitted": [4, 3]}
    assert hint_codes(result, "grad.input") == ["transposed"]


def test_label_smoothing_left_out(client: TestClient) -> None:
    x = logits()
    loss = F.cross_entropy(x, torch.tensor(TARGET))  # label_smoothing forgotten
    (grad,) = torch.autograd.grad(loss, x)
    result = grade(
        client,
        {
            "loss": "cross_entropy",
            "input": LOGITS,
            "target": TARGET,
            "params": {"label_smoothing": 0.2},
            "submission": {"loss": loss.item(), "grad": {"input": grad.tolist()}},
        },
    )
    assert hint_codes(result, "loss") == ["label_smoothing_ignored"]
    assert hint_codes(result, "grad.input") == ["label_smoothing_ignored"]


def test_l1_subgradient_at_zero(client: TestClient) -> None:
    x, y = [1.0, 2.0, 3.0, 4.0], [0.5, 2.0, 3.5, 4.0]
    student = [(1.0 if a >= b else -1.0) / 4 for a, b in zip(x, y, strict=True)]  # sign(0) = 1
    result = grade(
        client,
        {"loss": "l1_loss", "input": x, "target": y, "submission": {"grad": {"input": student}}},
    )
    grad_check = check(result, "grad.input")
    assert grad_check["mismatched"] == 2
    assert hint_codes(result, "grad.input") == ["subgradient_at_kink"]


def test_margin_ranking_subgradient_at_the_margin(client: TestClient) -> None:
    x1, x2, y = [0.8, 0.5, 0.5], [0.3, 0.9, 0.25], [1.0, -1.0, 1.0]  # pair 2 at the margin
    body: dict[str, Any] = {
        "loss": "margin_ranking_loss",
        "input1": x1,
        "input2": x2,
        "target": y,
        "params": {"margin": 0.25},
    }
    problem = {key: value for key, value in body.items() if key != "loss"}
    reference = client.post("/v1/losses/margin_ranking_loss", json={**problem, "grad": ["input1"]})
    expected = reference.json()["grad"]["input1"]
    other_side = list(expected)
    other_side[2] = 0.0 if expected[2] != 0.0 else -1 / 3  # the pair at the margin
    result = grade(client, {**body, "submission": {"grad": {"input1": other_side}}})
    assert hint_codes(result, "grad.input1") == ["subgradient_at_kink"]
    far_off = [expected[0] + 1.0, *expected[1:]]  # not at a kink: no hint
    result = grade(client, {**body, "submission": {"grad": {"input1": far_off}}})
    assert hint_codes(result, "grad.input1") == []


def test_ctc_gradient_with_respect_to_free_log_probs(client: TestClient) -> None:
    torch.manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(5, 2, 4), -1)
    targets, lengths, target_lengths = [[1, 2], [3, 3]], [5, 4], [2, 1]
    body: dict[str, Any] = {
        "loss": "ctc_loss",
        "log_probs": log_probs.tolist(),
        "targets": targets,
        "input_lengths": lengths,
        "target_lengths": target_lengths,
        "params": {"reduction": "sum"},
    }
    free = _ctc_free_gradient(log_probs, targets, lengths, target_lengths)
    result = grade(client, {**body, "submission": {"grad": {"log_probs": free.tolist()}}})
    assert hint_codes(result, "grad.log_probs") == ["ctc_log_softmax"]


def _ctc_free_gradient(
    log_probs: torch.Tensor, targets: list[list[int]], lengths: list[int], tl: list[int]
) -> torch.Tensor:
    """d(-log p(targets))/d(log_probs), log_probs taken as free variables: minus the
    alignment posteriors, by brute force over every alignment (a tiny problem)."""
    import itertools

    grads = torch.zeros_like(log_probs)
    steps, classes = log_probs.shape[0], log_probs.shape[2]
    for n in range(log_probs.shape[1]):
        label = targets[n][: tl[n]]
        lp = log_probs[:, n].clone().requires_grad_(True)
        total = []
        for path in itertools.product(range(classes), repeat=lengths[n]):
            collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]
            if collapsed == label:
                total.append(sum(lp[t, c] for t, c in enumerate(path)))
        loss = -torch.logsumexp(torch.stack(total), 0)  # type: ignore[arg-type]
        (grad,) = torch.autograd.grad(loss, lp)
        grads[:, n] = grad
    assert steps == log_probs.shape[0]
    return grads


def test_a_wrong_answer_with_no_known_cause_gets_no_hint(client: TestClient) -> None:
    result = grade(
        client,
        {"loss": "cross_entropy", "input": LOGITS, "target": TARGET, "submission": {"loss": 0.123}},
    )
    assert check(result, "loss")["reason"] == "mismatch"
    assert hint_codes(result, "loss") == []
