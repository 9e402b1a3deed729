"""Hostile bodies: whatever arrives, the loss API answers a 2xx or a problem+json 4xx, never 5xx.

Several hundred bodies in all: random JSON, valid requests with one field replaced by
something hostile, truncated and garbled bytes, and a set of hand-made pathological ones,
sent to loss endpoints by name and by alias.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.http.examples import LOSS_EXAMPLES
from service.losses.registry import catalogue
from tests.support.app import module_client
from tests.support.wire import PROBLEM_JSON, post_raw

ALIASES = [
    "MSELoss",
    "mae",
    "l2_loss",
    "CrossEntropyLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CTCLoss",
]
NAMES = sorted(catalogue())
PATHS = [f"/v1/losses/{name}" for name in NAMES + ALIASES]
FIELDS = sorted(
    {i.name for spec in catalogue().values() for i in spec.inputs}
    | {"params", "grad", "dtype", "device", "encoding"}
)
PARAMS = sorted({p.name for spec in catalogue().values() for p in spec.params})
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE_STRINGS = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "nan", "", "float32", "int64", "bool", "cuda", "cuda:99",
     "base64", "none", "batchmean", "\x00", "A" * 300, "🙂", "../../etc/passwd", "1e999"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, 1e308, -1e308, 5e-324, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_STRINGS,
    st.text(max_size=10),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELDS + PARAMS), st.text(max_size=6)), children, max_size=4
        ),
    ),
    max_leaves=16,
)
SHAPES = st.one_of(
    st.lists(st.integers(-3, 5), max_size=4),
    st.lists(st.sampled_from([0, 1, 2**31, 2**62, 2**63 - 1, -(2**63)]), max_size=4),
    JSON,
)
TENSOR_OBJECTS = st.fixed_dictionaries(
    {"shape": SHAPES},
    optional={
        "dtype": st.one_of(
            st.sampled_from(["float16", "bfloat16", "FP32", "INT8", "uint8", "bool", "complex64"]),
            JSON,
        ),
        "data": st.one_of(st.lists(SCALARS, max_size=6), JSON),
        "base64": st.one_of(
            st.sampled_from(["", "AA==", "AAAAAA==", "AACAPw==", "====", "A"]), st.text(max_size=12)
        ),
        "extra": JSON,
    },
)
HOSTILE = st.one_of(JSON, TENSOR_OBJECTS, st.lists(TENSOR_OBJECTS, max_size=2))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from module_client(tmp_path_factory, max_tensor_elements=100_000)


def assert_handled(response: Response) -> None:
    """A success, or a well-formed problem; never a server error."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
        problem = response.json()
        assert problem["status"] == response.status_code
        assert isinstance(problem["detail"], str) and problem["title"]
        for error in problem.get("errors", []):
            assert isinstance(error["loc"], list) and isinstance(error["msg"], str)
    else:
        assert set(response.json()) >= {"loss", "grad", "dtype", "device"}


def send(api: TestClient, path: str, body: Any) -> None:
    # The standard library writes integers beyond 64 bits, which orjson refuses to.
    assert_handled(post_raw(api, path, json.dumps(body, allow_nan=False).encode()))


@settings(FUZZ, max_examples=120)
@given(path=st.sampled_from(PATHS), body=JSON)
def test_random_json(api: TestClient, path: str, body: Any) -> None:
    send(api, path, body)


@settings(FUZZ, max_examples=200)
@given(name=st.sampled_from(NAMES), data=st.data())
def test_valid_requests_with_one_field_made_hostile(
    api: TestClient, name: str, data: st.DataObject
) -> None:
    body = copy.deepcopy(LOSS_EXAMPLES[name])
    where = data.draw(st.sampled_from(["field", "param", "delete"]))
    if where == "field":
        body[data.draw(st.sampled_from([*FIELDS, *body]))] = data.draw(HOSTILE)
    elif where == "param":
        params = body.setdefault("params", {})
        params[data.draw(st.sampled_from(PARAMS))] = data.draw(HOSTILE)
    else:
        body.pop(data.draw(st.sampled_from(sorted(body))))
    alias = next(
        (a for a in ALIASES if catalogue()[name].aliases and a in catalogue()[name].aliases), name
    )
    send(api, f"/v1/losses/{data.draw(st.sampled_from([name, alias]))}", body)


@settings(FUZZ, max_examples=120)
@given(name=st.sampled_from(NAMES), data=st.data())
def test_truncated_and_garbled_bytes(api: TestClient, name: str, data: st.DataObject) -> None:
    content = bytearray(orjson.dumps(LOSS_EXAMPLES[name]))
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "random"]))
    if how == "truncate":
        content = content[: data.draw(st.integers(0, len(content) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    elif how == "insert":
        at = data.draw(st.integers(0, len(content)))
        content[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        content = bytearray(data.draw(st.binary(max_size=64)))
    assert_handled(post_raw(api, f"/v1/losses/{name}", bytes(content)))


def deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


PATHOLOGICAL: list[bytes] = [
    b'{"input": ' + deep(5000) + b', "target": 1}',
    b'{"input": ' + b"[" * 50_000 + b', "target": 1}',
    b'{"params": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}",
    b'{"input": {"shape": [NaN], "data": []}, "target": 1}',
    b'{"input": {"shape": [Infinity], "data": []}, "target": 1}',
    b'{"input": {"shape": [-1], "data": []}, "target": 1}',
    b'{"input": {"shape": [1e400], "data": [1]}, "target": 1}',
    b'{"input": {"shape": [18446744073709551616], "data": [1]}, "target": 1}',
    b'{"input": [1e400], "target": [1]}',
    b'{"input": [123456789012345678901234567890], "target": [1]}',
    b'{"input": [-123456789012345678901234567890], "target": [1]}',
    b'{"input": "1.0", "target": "2.0"}',
    b'{"input": [1, "2"], "target": [1, 2]}',
    b'{"input": [1, 2], "target": [1, 2], "input": [3, 4]}',
    b'{"input": [1], "target": [1], "params": {"reduction": "sum", "reduction": "avg"}}',
    b'{"input": [1], "target": [1], "grad": [' + b'"input",' * 5000 + b'"input"]}',
    b'{"input": [1], "target": [1], "dtype": {"$ne": 1}}',
    b'{"input": [[1, 2], [3, 4]], "target": [[1, 2], [3]]}',
    b'{"input": [[], [1]], "target": [[1], []]}',
    b'{"input": [[[]]], "target": [[[]]], "grad": true}',
    b'{"input": {"shape": [2], "dtype": "bfloat16", "base64": "AAAA\\nAAA="}, "target": 1}',
    b'{"input": {"shape": [1], "dtype": "float16", "base64": "AA=="}, "target": 1}',
    b'\xef\xbb\xbf{"input": [1], "target": [1]}',
    b'{"input": [1], "target": [1]} trailing',
    b"{" + b'"k": 1,' * 20_000 + b'"input": [1], "target": [1]}',
    b"[]",
    b"",
    b"\x00" * 100,
]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/losses/mse_loss",
        "/v1/losses/cross_entropy",
        "/v1/losses/MSELoss",
        "/v1/losses/ctc_loss",
    ],
)
@pytest.mark.parametrize("content", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_bodies(api: TestClient, path: str, content: bytes) -> None:
    assert_handled(post_raw(api, path, content))


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
def test_other_content_types(api: TestClient, content_type: str) -> None:
    response = api.post(
        "/v1/losses/mse_loss", content=b"input=1&target=2", headers={"content-type": content_type}
    )
    assert_handled(response)
