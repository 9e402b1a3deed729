"""docs/losses.md is what the catalogue renders (regenerate: python -m service.losses.page)."""

from __future__ import annotations

from service.losses.page import PAGE, render
from service.losses.registry import catalogue


def test_the_committed_page_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/losses.md is stale: regenerate it with `python -m service.losses.page`"
    )


def test_the_page_names_every_loss_and_its_notes() -> None:
    text = render()
    for spec in catalogue().values():
        assert f"### `{spec.name}`" in text
        assert spec.notes in text
