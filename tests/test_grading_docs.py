"""docs/grading.md tells the truth: each curl example prints what the app answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

DOC = (Path(__file__).resolve().parents[1] / "docs" / "grading.md").read_text(encoding="utf-8")
CURL = re.compile(
    r"^\$ curl -s localhost:8000(?P<path>\S+) -H 'content-type: application/json' "
    r"-d '(?P<body>[^']*)'\n(?P<output>\{.*\})$",
    re.MULTILINE,
)
EXAMPLES = [m.groupdict() for m in CURL.finditer(DOC)]


def test_the_doc_has_its_examples() -> None:
    assert [e["path"] for e in EXAMPLES] == ["/v1/evaluate", "/v1/grade", "/v1/grade", "/v1/grade"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["path"] for e in EXAMPLES])
def test_curl_example_prints_what_the_doc_shows(
    client: TestClient, example: dict[str, str]
) -> None:
    response = client.post(example["path"], content=example["body"].encode())
    assert response.json() == json.loads(example["output"])
