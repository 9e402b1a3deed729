"""/docs and /redoc render in a real browser with every request to another host blocked: the
pages load Swagger UI and ReDoc from the service itself, and show the operations.

Needs Chromium (Debian's ``chromium``) and Playwright for Python (the ``dev`` extra); it never
downloads a browser. Skipped when they are missing, unless ``LOSS_SERVICE_REQUIRE_TOOLS=1``
(set by ``.ci/clients.sh``), which makes a missing tool a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.live import Server, live_server

CHROMIUM = os.environ.get("LOSS_SERVICE_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.slow


def need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("LOSS_SERVICE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{what} is required here (LOSS_SERVICE_REQUIRE_TOOLS=1)")
        pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("docs")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is not None, "Chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "Playwright for Python")
        raise
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_offline(browser: Any, server: Server, path: str) -> tuple[Any, list[str]]:
    """A page at ``path`` where any request to a host other than the server is aborted."""
    own = urlsplit(server.url).netloc
    blocked: list[str] = []
    context = browser.new_context()

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlsplit(url).netloc == own or url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(server.url + path, wait_until="load", timeout=60_000)
    return page, blocked


def test_swagger_ui_shows_the_operations_with_no_network(browser: Any, server: Server) -> None:
    page, blocked = open_offline(browser, server, "/docs")
    operation = page.get_by_text("/v1/losses/mse_loss", exact=True)
    operation.first.wait_for(state="visible", timeout=60_000)
    assert page.get_by_text("/v1/jobs/mnist", exact=True).first.is_visible()
    assert page.title() == "Loss Service - Swagger UI"
    assert blocked == []


def test_redoc_shows_the_operations_with_no_network(browser: Any, server: Server) -> None:
    page, blocked = open_offline(browser, server, "/redoc")
    page.get_by_text("Mean squared error", exact=False).first.wait_for(
        state="attached", timeout=60_000
    )
    assert page.locator("h2").count() > 10  # one heading per operation
    assert blocked == []


def test_the_root_is_the_web_page_and_links_the_docs(server: Server) -> None:
    answer = httpx.get(server.url + "/", timeout=30)
    assert answer.status_code == 200
    assert 'href="/docs"' in answer.text
    assets = httpx.get(server.url + "/docs-assets/swagger-ui-bundle.js", timeout=30)
    assert assets.status_code == 200 and len(assets.content) > 100_000
