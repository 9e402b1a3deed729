"""The README and docs/ tell the truth: their curl examples print what the app answers, every
setting they document exists with the default they state, and every link stays inside the
repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.grading.hint_docs import code_list
from service.settings import Settings, limits_table, markdown_table, variable_name

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXTS = {page.relative_to(ROOT).as_posix(): page.read_text(encoding="utf-8") for page in PAGES}
README = TEXTS["README.md"]

CURL = re.compile(
    r"^\$ curl -s localhost:8000(?P<path>\S+) -H 'content-type: application/json' "
    r"-d '(?P<body>[^']*)'\n(?P<output>\{.*\})$",
    re.MULTILINE,
)
EXAMPLES = [
    {"page": name, **m.groupdict()} for name, text in TEXTS.items() for m in CURL.finditer(text)
]
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_the_pages_have_curl_examples() -> None:
    assert len(EXAMPLES) >= 10
    assert any(example["page"] == "README.md" for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e['page']}:{e['path']}" for e in EXAMPLES])
def test_curl_example_prints_what_the_page_shows(
    client: TestClient, example: dict[str, str]
) -> None:
    response = client.post(example["path"], content=example["body"].encode())
    assert response.json() == json.loads(example["output"])


def test_the_configuration_table_is_generated_from_the_settings() -> None:
    text = TEXTS["docs/configuration.md"]
    start, end = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
    table = text[text.index(start) + len(start) : text.index(end)]
    assert table == markdown_table(), (
        "docs/configuration.md's table is stale: paste the output of `python -m service.settings`"
    )


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_link_points_inside_the_repository(name: str) -> None:
    page = ROOT / name
    for match in LINK.finditer(TEXTS[name]):
        target = match["target"]
        if target.startswith(("http://127.0.0.1", "http://localhost", "#")):
            continue
        assert "://" not in target, f"{name} links outside the repository: {target}"
        resolved = (page.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{name} links outside the repository: {target}"
        assert resolved.exists(), f"{name} links to a missing file: {target}"


def test_the_readme_front_door_fits_a_screen() -> None:
    """What it is, the two set-up commands and a curl come before the table of contents."""
    head = README[: README.index("## Contents")]
    assert len(head.splitlines()) <= 45
    assert "pip install -e . && loss-service" in head
    assert "pip install -e '.[dev]' && python -m pytest" in head
    assert "$ curl -s localhost:8000/v1/losses/" in head


def test_the_readme_lists_every_limit_with_its_default() -> None:
    start, end = "<!-- limits-table:start -->\n", "<!-- limits-table:end -->"
    table = README[README.index(start) + len(start) : README.index(end)]
    assert table == limits_table(), (
        "README's limits table is stale: paste the output of `python -m service.settings --limits`"
    )


def test_the_readme_lists_every_hint_code() -> None:
    start, end = "<!-- hint-codes:start -->\n", "<!-- hint-codes:end -->"
    listed = README[README.index(start) + len(start) : README.index(end)]
    assert listed == code_list(), (
        "README's hint codes are stale: run the regeneration in docs/development.md"
    )


# Variables the pages name that are not settings of the service: read by the examples' clients,
# the Compose file, the tests.
NOT_SETTINGS = {
    "LOSS_SERVICE_URL",
    "LOSS_SERVICE_API_KEY",
    "LOSS_SERVICE_HOST_PORT",
    "LOSS_SERVICE_REQUIRE_TOOLS",
    "LOSS_SERVICE_SCREENSHOTS",
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_variable_a_page_names_exists(name: str) -> None:
    settings = {variable_name(field) for field in Settings.model_fields}
    named = set(re.findall(r"LOSS_SERVICE_[A-Z0-9_]*[A-Z0-9]", TEXTS[name]))
    assert named <= settings | NOT_SETTINGS, f"{name} names unknown variables"
