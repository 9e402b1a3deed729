"""The README tells the truth: its curl examples print what the app answers, and every
setting it documents exists with the default it states."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.settings import markdown_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")

CURL = re.compile(
    r"^\$ curl -s localhost:8000(?P<path>\S+) -H 'content-type: application/json' "
    r"-d '(?P<body>[^']*)'\n(?P<output>\{.*\})$",
    re.MULTILINE,
)
EXAMPLES = [m.groupdict() for m in CURL.finditer(README)]


def test_the_readme_has_curl_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["path"] for e in EXAMPLES])
def test_curl_example_prints_what_the_readme_shows(
    client: TestClient, example: dict[str, str]
) -> None:
    response = client.post(example["path"], content=example["body"].encode())
    assert response.json() == json.loads(example["output"])


def test_the_configuration_table_is_generated_from_the_settings() -> None:
    start, end = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
    table = README[README.index(start) + len(start) : README.index(end)]
    assert table == markdown_table(), (
        "README's configuration table is stale: paste the output of `python -m service.settings`"
    )
