"""The contract lives in the repository: the OpenAPI text refers to no file outside it, and the
contract page's links lead to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

from service.http.openapi import COMMITTED_PATH

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("docs/contract.md", "docs/clients.md")


def test_the_openapi_text_refers_to_no_missing_file() -> None:
    text = (ROOT / COMMITTED_PATH).read_text(encoding="utf-8")
    assert "API.md" not in text
    for name in set(re.findall(r"\b[\w/.-]+\.md\b", text)):
        assert (ROOT / name).is_file(), name


def test_the_contract_pages_link_only_inside_the_repository() -> None:
    for page in PAGES:
        path = ROOT / page
        text = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)]+)\)", text):
            assert "://" not in target, (page, target)
            assert (path.parent / target.split("#")[0]).exists(), (page, target)
