"""POST /v1/information against direct torch computations and the identities of section 2.1."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

P = [[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]
Q = [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]


def post(client: TestClient, **body: object) -> dict[str, object]:
    response = client.post("/v1/information", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_measures_equal_their_definitions(client: TestClient) -> None:
    answer = post(client, p=P, q=Q)
    p, q = torch.tensor(P), torch.tensor(Q)
    assert answer["self_information"] == (-p.log()).tolist()
    assert answer["entropy"] == (-(p * p.log()).sum(-1)).tolist()
    assert answer["cross_entropy"] == (-(p * q.log()).sum(-1)).tolist()
    expected_kl = F.kl_div(q.log(), p, reduction="none").sum(-1)
    assert torch.allclose(torch.tensor(answer["kl_divergence"]), expected_kl, atol=1e-6)


def test_cross_entropy_is_entropy_plus_kl(client: TestClient) -> None:
    answer = post(client, p=P, q=Q, dtype="float64")
    reduced = answer["reduced"]
    assert isinstance(reduced, dict)
    assert reduced["cross_entropy"] == pytest.approx(
        reduced["entropy"] + reduced["kl_divergence"], abs=1e-12
    )


def test_bits_are_nats_over_ln2(client: TestClient) -> None:
    nats = post(client, p=P, q=Q, dtype="float64")["reduced"]
    bits = post(client, p=P, q=Q, dtype="float64", base="bits")["reduced"]
    assert isinstance(nats, dict) and isinstance(bits, dict)
    for name in ("entropy", "cross_entropy", "kl_divergence"):
        assert bits[name] == pytest.approx(nats[name] / math.log(2), rel=1e-12)


def test_one_hot_p_cross_entropy_is_kl(client: TestClient) -> None:
    answer = post(client, p=[1, 0, 0], q=[0.5, 0.3, 0.2])
    assert answer["entropy"] == 0.0
    assert answer["self_information"] == [0.0, "Infinity", "Infinity"]
    assert answer["cross_entropy"] == answer["kl_divergence"]
    assert answer["cross_entropy"] == pytest.approx(-math.log(0.5), rel=1e-6)


def test_logits_and_gradient_match_soft_target_cross_entropy(client: TestClient) -> None:
    p_logits, q_logits = [[2.0, 1.0, 0.1], [0.3, -1.2, 0.8]], [[0.5, 0.3, 0.1], [1.0, 2.0, -1.0]]
    answer = post(client, p=p_logits, q=q_logits, logits=True, grad=["q"])
    q = torch.tensor(q_logits, requires_grad=True)
    target = torch.tensor(p_logits).softmax(-1)
    expected = F.cross_entropy(q, target)
    (expected_grad,) = torch.autograd.grad(expected, q)
    reduced = answer["reduced"]
    assert isinstance(reduced, dict)
    assert reduced["cross_entropy"] == pytest.approx(expected.item(), rel=1e-6)
    grad = answer["grad"]
    assert isinstance(grad, dict)
    assert torch.allclose(torch.tensor(grad["q"]), expected_grad, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"p": [0.5, 0.6]}, ["body", "p"]),
        ({"p": [[0.5, 0.5], [0.9, 0.3]]}, ["body", "p", 1]),
        ({"p": [-0.5, 1.5]}, ["body", "p"]),
        ({"p": [0.5, 0.5], "grad": True}, ["body", "grad"]),
        ({"p": [0.5, 0.5], "base": 10}, ["body", "base"]),
        ({"q": [0.5, 0.5]}, ["body", "p"]),
    ],
)
def test_invalid_distributions_name_the_field(
    client: TestClient, body: dict[str, object], loc: list[object]
) -> None:
    response = client.post("/v1/information", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == loc


def test_shapes_that_do_not_match_are_a_readable_422(client: TestClient) -> None:
    response = client.post("/v1/information", json={"p": [0.5, 0.5], "q": [0.2, 0.3, 0.5]})
    assert response.status_code == 422
    assert "cannot be compared" in response.json()["detail"]
