"""The catalogue: what GET /v1/losses says agrees with the installed torch, and aliases resolve.

Params, defaults and inputs are compared with the signatures of the torch functions
themselves, so a param that a new torch adds shows up (or fails here) with no hand edit, and
differentiability is probed with torch.autograd rather than read back from the catalogue.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from service.losses.registry import catalogue
from tests.support.app import module_client
from tests.support.cases import CASES, DISTANCES, function_of
from tests.support.wire import assert_problem

LOSSES = sorted(catalogue())
# docs/contract.md names these; the catalogue may add more, never fewer.
CONTRACT_LOSSES = {
    "l1_loss", "mse_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "kl_div", "huber_loss", "smooth_l1_loss",
    "soft_margin_loss", "multilabel_soft_margin_loss", "multilabel_margin_loss",
    "multi_margin_loss", "hinge_embedding_loss", "cosine_embedding_loss", "margin_ranking_loss",
    "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "ctc_loss",
    "triplet_margin_with_distance_loss", "sigmoid_focal_loss", "linear_cross_entropy",
    "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss",
}  # fmt: skip
# The torchvision.ops losses the catalogue computes in plain torch.
TORCHVISION_LOSSES = {
    "sigmoid_focal_loss", "generalized_box_iou_loss", "distance_box_iou_loss",
    "complete_box_iou_loss",
}  # fmt: skip
# torch.nn loss modules without a functional loss: AdaptiveLogSoftmaxWithLoss is a layer with
# parameters (its clusters' projections) that returns an output and a loss, not a loss of
# given tensors.
NOT_FUNCTIONAL_MODULES = {"AdaptiveLogSoftmaxWithLoss"}
# Params of a torch signature the catalogue does not offer (and says why in its notes).
OMITTED_PARAMS = {"linear_cross_entropy": {"options"}}
# Tensors with a default (None) that the catalogue takes as optional inputs, not params.
OPTIONAL_INPUTS = {"linear_cross_entropy": ["linear_bias"]}
ALIASES = {
    "MSELoss": "mse_loss",
    "CrossEntropyLoss": "cross_entropy",
    "BCELoss": "binary_cross_entropy",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "L1Loss": "l1_loss",
    "mae": "l1_loss",
    "l2_loss": "mse_loss",
    "NLLLoss": "nll_loss",
    "KLDivLoss": "kl_div",
    "HuberLoss": "huber_loss",
    "CTCLoss": "ctc_loss",
    "TripletMarginWithDistanceLoss": "triplet_margin_with_distance_loss",
    "LinearCrossEntropyLoss": "linear_cross_entropy",
    "GIoULoss": "generalized_box_iou_loss",
    "DIoULoss": "distance_box_iou_loss",
    "CIoULoss": "complete_box_iou_loss",
}
DEPRECATED = {"size_average", "reduce"}
INDEX_INPUTS = {
    "cross_entropy": {"target": "class_target"},
    "nll_loss": {"target": "index"},
    "multi_margin_loss": {"target": "index"},
    "multilabel_margin_loss": {"target": "index"},
    "ctc_loss": {"targets": "index", "input_lengths": "index", "target_lengths": "index"},
    "linear_cross_entropy": {"target": "class_target"},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory)


@pytest.fixture(scope="module")
def listing(api: TestClient) -> dict[str, Any]:
    response = api.get("/v1/losses")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def torch_losses() -> set[str]:
    """The losses of the installed torch.nn.functional, found without the service's help:
    every public function whose name says loss, entropy, divergence or likelihood."""
    families = ("loss", "entropy", "kl_div", "nll")
    return {
        name
        for name in dir(F)
        if not name.startswith("_")
        and any(word in name for word in families)
        and inspect.isfunction(getattr(F, name))
    }


def torch_loss_modules() -> set[str]:
    """The loss classes of the installed torch.nn (CrossEntropyLoss, ...)."""
    return {
        name
        for name in dir(torch.nn)
        if name.endswith("Loss")
        and isinstance(getattr(torch.nn, name), type)
        and issubclass(getattr(torch.nn, name), torch.nn.Module)
    }


def test_listing_holds_every_torch_loss_and_the_contract(listing: dict[str, Any]) -> None:
    listed = {entry["name"] for entry in listing["losses"]}
    assert listed == set(LOSSES)
    missing = torch_losses() - listed
    assert not missing, f"torch.nn.functional losses the catalogue lacks: {sorted(missing)}"
    assert listed == torch_losses() | TORCHVISION_LOSSES
    assert listed >= CONTRACT_LOSSES
    assert {"linear_cross_entropy", "ctc_loss", "gaussian_nll_loss"} <= listed


@pytest.mark.parametrize("module", sorted(torch_loss_modules() - NOT_FUNCTIONAL_MODULES))
def test_every_torch_nn_loss_class_resolves_to_its_functional(
    api: TestClient, listing: dict[str, Any], module: str
) -> None:
    """Each torch.nn *Loss class is an alias of the catalogue entry its forward calls."""
    entry = api.get(f"/v1/losses/{module}")
    assert entry.status_code == 200, f"torch.nn.{module} has no catalogue entry"
    forward = inspect.getsource(getattr(torch.nn, module).forward)
    assert f"F.{entry.json()['name']}(" in forward, (module, entry.json()["name"])
    assert listing["aliases"][module] == entry.json()["name"]


def test_the_modules_without_a_functional_are_still_torchs() -> None:
    assert torch_loss_modules() >= NOT_FUNCTIONAL_MODULES


@pytest.mark.parametrize("name", LOSSES)
def test_description_matches_the_torch_signature(api: TestClient, name: str) -> None:
    response = api.get(f"/v1/losses/{name}")
    assert response.status_code == 200
    entry = response.json()
    assert entry["name"] == name
    assert entry["endpoint"] == f"/v1/losses/{name}"
    assert entry["summary"]
    signature = inspect.signature(function_of(name))
    optional_inputs = OPTIONAL_INPUTS.get(name, [])
    omitted = OMITTED_PARAMS.get(name, set())
    keyword = {
        p.name: p.default
        for p in signature.parameters.values()
        if p.default is not inspect.Parameter.empty
        and p.name not in DEPRECATED | omitted
        and p.name not in optional_inputs
    }
    positional = [
        p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty
    ]
    assert [i["name"] for i in entry["inputs"]] == positional + optional_inputs
    assert {p["name"] for p in entry["params"]} == set(keyword)
    for param_name in omitted:  # what is not offered is said, and why
        assert f"{param_name}:" in entry["notes"], entry["notes"]
    for param in entry["params"]:
        torch_default = keyword[param["name"]]
        if param["name"] == "distance_function":
            # torch's None means pairwise_distance; on the wire the distance goes by name.
            assert torch_default is None
            assert param["default"] == "pairwise"
            assert param["choices"] == ["pairwise", "cosine"]
            continue
        assert param["default"] == torch_default, param
        assert type(param["default"]) is type(torch_default), param
        expected_types = {
            bool: {"bool"},
            int: {"int", "float"},
            float: {"float"},
            str: {"str"},
            type(None): _none_default_types(signature.parameters[param["name"]].annotation),
        }[type(torch_default)]
        assert param["type"] in expected_types, param


def _none_default_types(annotation: Any) -> set[str]:
    """The wire type of a param whose default is None, from its annotation (e.g.
    ``Tensor | None`` is a tensor, ``int | None`` an int)."""
    text = str(annotation)
    if "Tensor" in text:
        return {"tensor"}
    return {"int"} if "int" in text else {"float"}


@pytest.mark.parametrize("name", LOSSES)
def test_inputs_have_roles_and_are_required(api: TestClient, name: str) -> None:
    entry = api.get(f"/v1/losses/{name}").json()
    roles = INDEX_INPUTS.get(name, {})
    for spec_input in entry["inputs"]:
        assert spec_input["role"] == roles.get(spec_input["name"], "float"), spec_input
        optional = spec_input["name"] in OPTIONAL_INPUTS.get(name, [])
        assert spec_input["required"] is not optional
        assert spec_input["role_description"]
        assert spec_input["differentiable"] == (spec_input["name"] in entry["differentiable"])
        if spec_input["role"] == "index":
            assert not spec_input["differentiable"]


@pytest.mark.parametrize("name", LOSSES)
def test_reduction_choices(api: TestClient, name: str) -> None:
    params = {p["name"]: p for p in api.get(f"/v1/losses/{name}").json()["params"]}
    expected = ["none", "mean", "sum", "batchmean"] if name == "kl_div" else ["none", "mean", "sum"]
    assert params["reduction"]["choices"] == expected
    assert params["reduction"]["type"] == "str"


def test_other_allowed_values(api: TestClient) -> None:
    multi_margin = {p["name"]: p for p in api.get("/v1/losses/multi_margin_loss").json()["params"]}
    assert multi_margin["p"]["choices"] == [1, 2]
    cross_entropy = {p["name"]: p for p in api.get("/v1/losses/cross_entropy").json()["params"]}
    assert cross_entropy["label_smoothing"]["minimum"] == 0.0
    assert cross_entropy["label_smoothing"]["maximum"] == 1.0
    assert cross_entropy["weight"]["type"] == "tensor"
    assert cross_entropy["ignore_index"]["type"] == "int"


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_aliases_resolve(api: TestClient, listing: dict[str, Any], alias: str, name: str) -> None:
    assert listing["aliases"][alias] == name
    response = api.get(f"/v1/losses/{alias}")
    assert response.status_code == 200
    assert response.json()["name"] == name
    assert api.get(f"/v1/losses/{alias.lower()}").json()["name"] == name


def test_unknown_loss_is_a_404_listing_the_known(api: TestClient) -> None:
    problem = assert_problem(api.get("/v1/losses/no_such_loss"), 404, says="no_such_loss")
    assert set(problem["known_losses"]) == set(LOSSES)
    assert "mse_loss" in problem["detail"]


# ---------------------------------------------------------------------------------------------
# Differentiability, probed with torch.autograd


def has_gradient(
    fn: Callable[..., torch.Tensor],
    inputs: dict[str, torch.Tensor],
    params: dict[str, Any],
    name: str,
) -> bool:
    leaves = {n: t.detach().clone().requires_grad_(n == name) for n, t in inputs.items()}
    call = dict(leaves)
    if "var" in call and call["var"].dim() == 0:  # torch's scalar var, broadcast as torch does
        call["var"] = call["var"] * torch.ones_like(call["input"])
    try:
        loss = fn(**call, **params)
        (grad,) = torch.autograd.grad(loss.sum(), [leaves[name]], allow_unused=True)
    except RuntimeError as exc:
        assert "not differentiable" in str(exc) or "does not require grad" in str(exc), exc
        return False
    return grad is not None


@pytest.mark.parametrize("name", LOSSES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_declared_differentiable_inputs_are_exactly_torchs(name: str, data: st.DataObject) -> None:
    spec = catalogue()[name]
    case = data.draw(CASES[name])
    params = dict(case.params)
    if "distance_function" in params:
        params["distance_function"] = DISTANCES[params["distance_function"]]
    for input_name, tensor in case.inputs.items():
        if not tensor.is_floating_point():
            continue
        found = has_gradient(function_of(name), case.inputs, params, input_name)
        assert found == (input_name in spec.differentiable), (input_name, found)
