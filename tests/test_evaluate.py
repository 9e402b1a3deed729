"""POST /v1/evaluate: many loss requests answered in order, bad items with their own problem,
and stacked items bitwise identical to one-by-one answers."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from service.compute.batched import STACKABLE
from service.http.examples import LOSS_EXAMPLES


def evaluate(client: TestClient, items: list[Any], status: int = 200) -> Any:
    response = client.post("/v1/evaluate", json={"requests": items})
    assert response.status_code == status, response.text
    return response.json()


def test_every_loss_example_answers_as_its_own_endpoint(client: TestClient) -> None:
    items = [{"loss": name, **body} for name, body in LOSS_EXAMPLES.items()]
    results = evaluate(client, items)["results"]
    assert len(results) == len(items)
    for (name, body), result in zip(LOSS_EXAMPLES.items(), results, strict=True):
        assert result == client.post(f"/v1/losses/{name}", json=body).json(), name


def test_a_bad_item_gets_its_own_problem_and_the_others_succeed(client: TestClient) -> None:
    good = {"loss": "mse_loss", "input": [1.5, 2.0], "target": [1.0, 2.5]}
    items = [
        good,
        {"loss": "nope", "input": [1.0]},
        {"loss": "mse_loss", "input": [[1, 2], [3]], "target": [1.0, 2.0]},
        {"input": [1.0]},
        {"loss": "cross_entropy", "input": [[0.1, 0.2]], "target": [5]},
        {"loss": "mse_loss", "input": [1.0], "target": [1.0], "params": {"reduce": True}},
        "not an object",
        good,
    ]
    results = evaluate(client, items)["results"]
    assert (
        results[0] == results[-1] == {"loss": 0.25, "grad": {}, "dtype": "float32", "device": "cpu"}
    )
    errors = [r["error"] for r in results[1:-1]]
    assert [e["status"] for e in errors] == [404, 422, 422, 422, 422, 422]
    assert errors[1]["errors"][0]["loc"] == ["body", "requests", 2, "input", 1]
    assert errors[2]["errors"][0]["loc"] == ["body", "requests", 3, "loss"]
    assert errors[3]["errors"][0]["loc"] == ["body", "requests", 4, "target", 0]
    assert errors[4]["errors"][0]["loc"] == ["body", "requests", 5, "params", "reduce"]
    assert errors[5]["errors"][0]["loc"] == ["body", "requests", 6]
    assert all(e["type"].startswith("https://") and e["detail"] for e in errors)


def _random_items(loss: str, count: int, shape: tuple[int, ...], grad: Any) -> list[Any]:
    generator = torch.Generator().manual_seed(len(loss) * 31 + count)
    items = []
    for index in range(count):
        x = torch.randn(shape, generator=generator)
        y = torch.randn(shape, generator=generator)
        if index % 3 == 0:
            y.view(-1)[0] = x.view(-1)[0]  # a kink of l1 / a zero of the others
        item = {"loss": loss, "input": x.tolist(), "target": y.tolist(), "grad": grad}
        item["params"] = {"reduction": "none"}
        items.append(item)
    return items


@pytest.mark.parametrize("loss", sorted(STACKABLE))
@pytest.mark.parametrize("shape", [(3,), (7, 5), (2, 3, 17)])
def test_stacked_items_are_bitwise_identical_to_one_by_one(
    client: TestClient, loss: str, shape: tuple[int, ...]
) -> None:
    items = _random_items(loss, 6, shape, True)
    items += [{**item, "encoding": "base64"} for item in _random_items(loss, 4, shape, True)]
    together = evaluate(client, items)["results"]
    for item, result in zip(items, together, strict=True):
        body = {key: value for key, value in item.items() if key != "loss"}
        alone = client.post(f"/v1/losses/{loss}", json=body).json()
        assert result == alone  # base64 results compare the raw bytes


def test_stacking_groups_by_params_dtype_and_grad(client: TestClient) -> None:
    base = {"loss": "huber_loss", "input": [0.5, 3.0], "target": [0.0, 0.0]}
    variants = [
        {**base, "params": {"reduction": "none", "delta": 1.0}},
        {**base, "params": {"reduction": "none", "delta": 2.0}},
        {**base, "params": {"reduction": "none", "delta": 1.0}, "dtype": "float64"},
        {**base, "params": {"reduction": "none", "delta": 1.0}, "grad": True},
    ]
    together = evaluate(client, variants + variants)["results"]
    for item, result in zip(variants + variants, together, strict=True):
        body = {key: value for key, value in item.items() if key != "loss"}
        assert result == client.post("/v1/losses/huber_loss", json=body).json()


def test_a_bad_item_in_a_stackable_group_leaves_the_others(client: TestClient) -> None:
    items = _random_items("mse_loss", 4, (3,), ["input"])
    items[1]["grad"] = ["weight"]
    results = evaluate(client, items)["results"]
    assert results[1]["error"]["errors"][0]["loc"] == ["body", "requests", 1, "grad", 0]
    assert all("loss" in r for i, r in enumerate(results) if i != 1)


def test_the_number_of_items_is_bounded(make_client: Any) -> None:
    client = make_client(max_evaluate_items=2)
    item = {"loss": "mse_loss", "input": [1.0], "target": [0.0]}
    problem = evaluate(client, [item] * 3, status=413)
    assert problem["errors"][0]["loc"] == ["body", "requests"]
    assert len(evaluate(client, [item] * 2)["results"]) == 2


def test_the_element_budget_covers_the_whole_call(make_client: Any) -> None:
    client = make_client(max_tensor_elements=10)
    item = {"loss": "mse_loss", "input": [1.0, 2.0, 3.0], "target": [0.0, 0.0, 0.0]}
    assert evaluate(client, [item], status=200)
    assert evaluate(client, [item, item], status=413)["status"] == 413


@pytest.mark.parametrize(
    "body", [b"[]", b"{}", b'{"requests": 1}', b'{"requests": [], "x": 1}', b"{"]
)
def test_malformed_bodies_are_422(client: TestClient, body: bytes) -> None:
    assert client.post("/v1/evaluate", content=body).status_code == 422


def test_an_empty_list_has_no_results(client: TestClient) -> None:
    assert evaluate(client, []) == {"results": []}


def test_stacks_split_into_chunks_stay_identical(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.compute import batched

    items = _random_items("l1_loss", 8, (4,), True)
    together = evaluate(client, items)["results"]
    monkeypatch.setattr(batched, "STACK_ELEMENTS", 12)  # chunks of 3 items, the last of 2
    assert evaluate(client, items)["results"] == together


def test_items_with_a_weight_are_answered_as_on_their_own(client: TestClient) -> None:
    weighted = {
        "loss": "mse_loss",
        "input": [1.0, 2.0],
        "target": [0.0, 0.0],
        "params": {"reduction": "none", "weight": [1.0, 2.0]},
        "grad": True,
    }
    alone = client.post(
        "/v1/losses/mse_loss", json={k: v for k, v in weighted.items() if k != "loss"}
    ).json()
    response = client.post("/v1/evaluate", json={"requests": [weighted, weighted]})
    assert response.status_code == 200
    assert response.json()["results"] == [alone, alone]
