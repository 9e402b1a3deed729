"""Hostile bodies on the loss, evaluate, grade and information routes: each is answered with a
small problem, before torch allocates what it asks for, while the server keeps answering."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from service.errors import ComputeTimeout
from service.http.offload import Offloader
from service.settings import Settings
from tests.support.hostile import b64, broadcast_bomb, ctc_body, rss_bytes
from tests.support.hostile import unknown_keys as unknown_keys_body
from tests.support.live import live_server
from tests.support.wire import assert_problem, post, post_raw

MakeClient = Callable[..., TestClient]
MiB = 1 << 20


def test_broadcast_bomb_is_a_413_naming_the_broadcast_input(client: TestClient) -> None:
    for n in (16_000, 32_000):
        response = post_raw(client, "/v1/losses/mse_loss", broadcast_bomb(n))
        problem = assert_problem(response, 413, says="LOSS_SERVICE_MAX_COMPUTE_ELEMENTS")
        assert problem["errors"][0]["loc"] == ["body", "input"]
        assert f"[{n}, {n}]" in problem["detail"]
        assert len(response.content) < 2000


def test_legitimate_million_element_requests_still_compute(client: TestClient) -> None:
    x, y = torch.randn(1000, 1000), torch.randn(1000, 1000)
    body = {"input": b64(x.numpy()), "target": b64(y.numpy()), "grad": True}
    response = post(client, "/v1/losses/mse_loss", body)
    assert response.status_code == 200
    assert response.json()["loss"] == F.mse_loss(x, y).item()
    # A broadcast that stays within the budget is computed as torch broadcasts it.
    a, b = torch.randn(1000, 1), torch.randn(1, 1000)
    body = {"input": b64(a.numpy()), "target": b64(b.numpy())}
    response = post(client, "/v1/losses/l1_loss", body)
    assert response.status_code == 200
    assert response.json()["loss"] == F.l1_loss(a, b).item()


def test_ctc_quadratic_lattice_is_a_413_naming_targets(client: TestClient) -> None:
    response = post_raw(client, "/v1/losses/ctc_loss", ctc_body())
    problem = assert_problem(response, 413, says="alignment cells")
    assert problem["errors"][0]["loc"] == ["body", "targets"]


def test_a_realistic_ctc_batch_with_its_gradient_computes(client: TestClient) -> None:
    steps, batch, classes, labels = 500, 32, 30, 200
    log_probs = torch.randn(steps, batch, classes).log_softmax(-1)
    targets = torch.randint(1, classes, (batch, labels))
    lengths = [steps] * batch, [labels] * batch
    body = {
        "log_probs": b64(log_probs.numpy()),
        "targets": targets.tolist(),
        "input_lengths": lengths[0],
        "target_lengths": lengths[1],
        "grad": True,
    }
    response = post(client, "/v1/losses/ctc_loss", body)
    assert response.status_code == 200, response.text[:500]
    expected = F.ctc_loss(log_probs, targets, torch.tensor(lengths[0]), torch.tensor(lengths[1]))
    assert response.json()["loss"] == pytest.approx(expected.item(), rel=1e-6)


def test_reduction_none_answer_over_the_element_limit_is_a_413(make_client: MakeClient) -> None:
    client = make_client(max_tensor_elements=10_000)
    body = {"input": [[0.5]] * 200, "target": [[0.5] * 200], "params": {"reduction": "none"}}
    assert_problem(post(client, "/v1/losses/mse_loss", body), 413, says="answer would hold")
    body["params"] = {"reduction": "mean"}
    assert post(client, "/v1/losses/mse_loss", body).status_code == 200


def test_bulk_items_add_up(make_client: MakeClient) -> None:
    client = make_client(max_compute_elements=10_000)
    item = {"loss": "mse_loss", "input": [0.5] * 2000, "target": [0.25] * 2000}
    assert post(client, "/v1/evaluate", {"requests": [item]}).status_code == 200
    response = post(client, "/v1/evaluate", {"requests": [item] * 3})
    assert_problem(response, 413, says="earlier items")


def test_information_broadcast_is_a_413(client: TestClient) -> None:
    n = 8_000
    p = np.full((n, 1, 2), 0.5, dtype=np.float32)
    q = np.full((1, n, 2), 0.5, dtype=np.float32)
    response = post(client, "/v1/information", {"p": b64(p), "q": b64(q)})
    assert_problem(response, 413, says="broadcast")


def test_grading_reference_is_charged(make_client: MakeClient) -> None:
    client = make_client(max_compute_elements=1_000)
    body = {"loss": "mse_loss", "input": [[0.5]] * 100, "target": [[0.5] * 100], "submission": 1}
    assert_problem(post(client, "/v1/grade", body), 413, says="broadcast")


# ---------------------------------------------------------------------------------------------
# Capped error documents


@pytest.mark.parametrize(
    ("path", "base"),
    [
        ("/v1/losses/mse_loss", {"input": [1.0], "target": [1.0]}),
        ("/v1/information", {"p": [1.0]}),
        ("/v1/grade", {"loss": "mse_loss", "input": [1.0], "target": [1.0], "submission": 0}),
        ("/v1/jobs/mnist", {}),
    ],
)
def test_unknown_keys_get_a_small_capped_document(
    client: TestClient, path: str, base: dict[str, Any]
) -> None:
    # A million keys are refused before the body is parsed (parsing them would hold the
    # interpreter for seconds); fewer are parsed and the first 20 named.
    response = post_raw(client, path, unknown_keys_body(1_000_000, base))
    # A job configuration is refused sooner still, by its size (it is at most 64 KiB).
    says = "at most 65536 bytes" if path == "/v1/jobs/mnist" else "LOSS_SERVICE_MAX_JSON_MEMBERS"
    assert_problem(response, 413, says=says)
    assert len(response.content) < 1000
    if path == "/v1/jobs/mnist":
        return  # 50,000 keys are over 64 KiB too; the capped list is shown on the other routes
    response = post_raw(client, path, unknown_keys_body(50_000, base))
    problem = assert_problem(response, 422, says="unknown")
    assert len(problem["errors"]) == 20
    assert problem["errors_omitted"] == 50_000 - 20
    assert problem["errors"][0]["loc"] == ["body", "k0"]
    assert len(response.content) < 10_000


def test_unknown_keys_of_an_evaluate_item_and_of_params_are_capped(client: TestClient) -> None:
    item = orjson.loads(unknown_keys_body(50_000, {"loss": "mse_loss", "input": 1, "target": 1}))
    response = post(client, "/v1/evaluate", {"requests": [item]})
    assert response.status_code == 200
    error = response.json()["results"][0]["error"]
    assert len(error["errors"]) == 20 and error["errors_omitted"] == 50_000 - 20
    params = orjson.loads(unknown_keys_body(50_000))
    response = post(client, "/v1/losses/mse_loss", {"input": 1, "target": 1, "params": params})
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "params", "k0"]
    assert problem["errors_omitted"] == 50_000 - 20


def test_error_cap_is_configurable(make_client: MakeClient) -> None:
    client = make_client(max_problem_errors=3)
    response = post_raw(client, "/v1/losses/mse_loss", unknown_keys_body(10, {"input": 1}))
    problem = assert_problem(response, 422)
    assert len(problem["errors"]) == 3 and problem["errors_omitted"] == 7


@pytest.mark.parametrize("path", ["/v1/losses/mse_loss", "/v1/information"])
def test_grad_zero_is_not_false(client: TestClient, path: str) -> None:
    body = {"input": [1.0], "target": [1.0], "grad": 0}
    if path == "/v1/information":
        body = {"p": [1.0], "q": [1.0], "grad": 0}
    problem = assert_problem(post(client, path, body), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "grad"]


# ---------------------------------------------------------------------------------------------
# Where work runs, and the concurrency bound


def test_small_bodies_with_large_work_leave_the_event_loop(make_client: MakeClient) -> None:
    """Work past the inline limit is computed in a worker, with the same answer."""
    client = make_client(inline_compute_elements=0)
    x, y = torch.randn(5), torch.randn(5)
    body = {"input": x.tolist(), "target": y.tolist(), "grad": True}
    response = post(client, "/v1/losses/mse_loss", body)
    assert response.status_code == 200
    assert response.json()["loss"] == F.mse_loss(x, y).item()


def test_timed_out_work_keeps_its_worker_until_it_returns(make_settings: Any) -> None:
    settings: Settings = make_settings(compute_timeout_s=0.2, max_concurrent_computations=1)
    offloader = Offloader(settings)
    release = threading.Event()

    async def scenario() -> None:
        with pytest.raises(ComputeTimeout):
            await offloader.run(lambda: release.wait(30), size=1 << 30)
        assert offloader.running == 1  # answered 503, still computing: still counted
        # The next request waits for the one worker, and times out in its turn.
        with pytest.raises(ComputeTimeout):
            await offloader.run(lambda: 1, size=1 << 30)
        assert offloader.waiting == 0
        release.set()
        for _ in range(200):
            if offloader.running == 0:
                break
            await asyncio.sleep(0.01)
        assert offloader.running == 0
        assert await offloader.run(lambda: 2, size=1 << 30) == 2

    asyncio.run(scenario())
    offloader.close()


def test_a_full_queue_is_a_503_with_retry_after(make_settings: Any) -> None:
    settings: Settings = make_settings(max_concurrent_computations=1, max_queued_computations=0)
    offloader = Offloader(settings)
    release = threading.Event()

    async def scenario() -> None:
        first = asyncio.create_task(offloader.run(lambda: release.wait(30), size=1 << 30))
        while offloader.running == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(Exception) as busy:
            await offloader.run(lambda: 1, size=1 << 30)
        assert getattr(busy.value, "status", None) == 503
        assert busy.value.headers == {"Retry-After": "1"}  # type: ignore[attr-defined]
        release.set()
        assert await first is True

    asyncio.run(scenario())
    offloader.close()


# ---------------------------------------------------------------------------------------------
# Against a live server: memory stays flat and /healthz keeps answering


def test_live_server_survives_hostile_bodies(tmp_path: Path) -> None:
    # With the work budget raised, the CTC lattice runs past the 1 s time limit: a 503, while
    # /healthz keeps answering beside it.
    raised = {"compute_timeout_s": "1", "max_compute_elements": "2000000000"}
    with (
        live_server(tmp_path, access_log="false", **raised) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as http,
    ):
        answers: list[int] = []
        worker = threading.Thread(
            target=lambda: answers.append(
                http.post("/v1/losses/ctc_loss", content=ctc_body(8000, 4000)).status_code
            )
        )
        worker.start()
        health = []
        while worker.is_alive() and len(health) < 2000:
            health.append(http.get("/healthz").status_code)
        worker.join()
        assert answers == [503]
        assert health and set(health) == {200}
    # Default budget: the broadcast bombs and the lattice are 413s, and memory stays flat.
    with (
        live_server(tmp_path, access_log="false") as srv,
        httpx.Client(base_url=srv.url, timeout=60) as http,
    ):
        before = rss_bytes(srv.pid)
        for n in (16_000, 32_000):
            response = http.post("/v1/losses/mse_loss", content=broadcast_bomb(n))
            assert response.status_code == 413
        assert http.post("/v1/losses/ctc_loss", content=ctc_body()).status_code == 413
        assert http.get("/healthz").status_code == 200
        assert rss_bytes(srv.pid) - before < 200 * MiB


def test_the_work_of_a_linear_layer_grows_with_rows_times_classes() -> None:
    from service.losses.work import linear_logits

    small, what, how = linear_logits(
        {"input": torch.zeros(8, 16), "linear_weight": torch.zeros(10, 16)}, {}
    )
    large, _, _ = linear_logits(
        {"input": torch.zeros(80_000, 1), "linear_weight": torch.zeros(80_000, 1)}, {}
    )
    assert what == "linear_weight" and "80 logits" in how
    assert small < 1000 < 10**10 < large
