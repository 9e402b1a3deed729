"""The web page in a real browser: Debian's Chromium driven by Playwright against a live
server, every request to another host blocked and counted. Screenshots of each view go to
``LOSS_SERVICE_SCREENSHOTS`` (the committed ones in docs/screenshots were made this way)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import torch
import torch.nn.functional as F

from tests.support.live import Server, live_server

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# The one console error the page may cause on purpose: the browser's own line for the 4xx
# answer that a test provokes with an invalid tensor.
PROVOKED = (
    "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
)
TIMEOUT_MS = 180_000


class Browser:
    def __init__(self, server: Server, page: Any, screenshots: Path) -> None:
        self.server, self.page, self.screenshots = server, page, screenshots
        self.outside: list[str] = []
        self.console_errors: list[str] = []
        origin = urlsplit(server.url).netloc
        page.context.route("**/*", self._guard(origin))
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(f"page error: {e}"))

    def _guard(self, origin: str) -> Any:
        def handle(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).netloc == origin or url.startswith("data:"):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        return handle

    def open(self, view: str) -> None:
        self.page.goto(f"{self.server.url}/#/{view}")
        self.page.wait_for_selector("body[data-ready='true']", timeout=TIMEOUT_MS)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.screenshots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("web")) as running:
        yield running


@pytest.fixture
def browser(server: Server, tmp_path: Path) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (.ci/run does)")
    screenshots = Path(os.environ.get("LOSS_SERVICE_SCREENSHOTS", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = chromium.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        driver = Browser(server, page, screenshots)
        try:
            yield driver
        finally:
            chromium.close()
    assert driver.outside == [], f"requests to other hosts: {driver.outside}"


def read_json(page: Any, selector: str) -> Any:
    return json.loads(page.text_content(selector))


def test_losses_view_computes_what_torch_computes_and_renders_problems(browser: Browser) -> None:
    page = browser.page
    browser.open("losses")
    labelled = page.evaluate(
        "[...document.querySelectorAll('main input, main select, main textarea')]"
        ".every(n => n.closest('label') || n.getAttribute('aria-label'))"
    )
    assert labelled, "every control has a label"

    page.select_option("#loss-name", "cross_entropy")
    page.focus("#loss-compute")
    page.keyboard.press("Enter")  # usable from the keyboard
    page.wait_for_selector("#loss-result:not([hidden])")
    curl = page.text_content("#loss-curl") or ""
    sent = json.loads(curl.split(" -d '", 1)[1].removesuffix("'"))
    params = {
        k: torch.tensor(v) if isinstance(v, list) else v for k, v in sent.get("params", {}).items()
    }
    x = torch.tensor(sent["input"], requires_grad=True)
    expected = F.cross_entropy(x, torch.tensor(sent["target"]), **params)
    expected.backward()
    assert float(page.text_content("#loss-value") or "nan") == expected.item()
    assert read_json(page, ".grad-values[data-input='input']") == x.grad.tolist()  # type: ignore[union-attr]
    assert page.locator("canvas.heatmap").count() == 1
    browser.shot("losses")

    page.select_option("#loss-name", "mse_loss")
    page.fill("[data-field='input']", "[[1, 2], [3]]")
    page.click("#loss-compute")
    error = page.wait_for_selector("#loss-error:not([hidden])")
    assert error is not None and "ragged" in (error.text_content() or "")
    assert page.locator("#loss-error li[data-field='body.input.1']").count() == 1
    assert page.get_attribute("[data-field='input']", "aria-invalid") == "true"
    browser.shot("losses-error")
    assert set(browser.console_errors) <= {PROVOKED}, browser.console_errors


def test_curves_view_plots_losses_from_one_evaluate_call(browser: Browser) -> None:
    page = browser.page
    evaluate_calls: list[str] = []
    page.on("request", lambda r: "/v1/evaluate" in r.url and evaluate_calls.append(r.url))
    browser.open("curves")
    page.wait_for_selector("#chart-reg-loss path[data-series='huber δ=1']")
    assert page.get_attribute("#chart-reg-loss", "data-series") == "3"
    assert page.get_attribute("#chart-bin-loss", "data-series") == "2"
    calls = len(evaluate_calls)
    page.eval_on_selector(
        "#curves-delta",
        "n => { n.value = '2'; n.dispatchEvent(new Event('input', {bubbles: true})) }",
    )
    page.wait_for_selector("#chart-reg-loss path[data-series='huber δ=2']")
    assert len(evaluate_calls) == calls + 1
    browser.shot("curves")
    assert browser.console_errors == []


def job_row(page: Any, job_id: str) -> str:
    return f"#jobs-table tr[data-job='{job_id}']"


def start_job(page: Any, **fields: str) -> str:
    for name, value in fields.items():
        selector = f"#job-fields [name='{name}']"
        if page.eval_on_selector(selector, "n => n.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    with page.expect_response(lambda r: r.url.endswith("/v1/jobs/mnist")) as answer:
        page.click("#job-start")
    job_id: str = answer.value.json()["id"]
    page.wait_for_selector(job_row(page, job_id))
    for name in fields:  # back to the defaults for the next job
        selector = f"#job-fields [name='{name}']"
        if page.eval_on_selector(selector, "n => n.tagName") != "SELECT":
            page.fill(selector, "")
    return job_id


def test_jobs_view_trains_compares_predicts_and_cancels(browser: Browser) -> None:
    page = browser.page
    browser.open("jobs")
    # Every value the loss chart's point count takes, as the page redraws it.
    page.evaluate(
        "window.pointCounts = []; new MutationObserver(() => window.pointCounts.push("
        "Number(document.querySelector('#chart-job-loss').dataset.points))).observe("
        "document.querySelector('#chart-job-loss'), {attributes: true})"
    )
    first = start_job(page, epochs="3", log_every="2", seed="1")
    page.wait_for_selector(f"{job_row(page, first)}[data-status='succeeded']")
    record = httpx.get(f"{browser.server.url}/v1/jobs/{first}", timeout=30).json()
    assert record["status"] == "succeeded"
    final = len(record["train_loss_series"]["points"])
    page.wait_for_function(
        f"Number(document.querySelector('#chart-job-loss').dataset.points) === {final}"
    )
    counts = [c for c in page.evaluate("window.pointCounts") if c > 0]
    assert len(set(counts)) >= 2 and max(counts) == final, counts  # the curve grew to the end
    assert page.get_attribute("#chart-job-acc", "data-points") == str(len(record["metrics"]))

    second = start_job(
        page, epochs="2", learning_rate="0.01", loss="nll_loss", seed="2", log_every="2"
    )
    page.wait_for_selector(f"{job_row(page, second)}[data-status='succeeded']")
    for job in (first, second):
        box = page.locator(f"{job_row(page, job)} input[data-action='compare']")
        if not box.is_checked():
            box.check()
    assert page.get_attribute("#chart-job-loss", "data-series") == "2"
    assert page.get_attribute("#chart-job-acc", "data-series") == "2"

    with page.expect_download() as download:
        page.click(f"{job_row(page, first)} button[data-action='model']")
    assert Path(download.value.path()).stat().st_size == record["model"]["bytes"]

    page.select_option("#predict-job", first)
    page.locator("#digit").scroll_into_view_if_needed()
    canvas = page.locator("#digit").bounding_box()
    assert canvas is not None
    page.mouse.move(canvas["x"] + 140, canvas["y"] + 40)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(canvas["x"] + 140, canvas["y"] + 40 + step * 10)
    page.mouse.up()
    drawn = page.evaluate(
        "(() => { const c = document.querySelector('#digit');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4) n += d[i] > 128; return n; })()"
    )
    assert drawn > 1000, f"{drawn} white pixels drawn"
    page.click("#predict")
    page.wait_for_selector("#probabilities li:nth-child(10)")
    probabilities = [
        float(p) for p in page.eval_on_selector_all(
            "#probabilities li", "items => items.map(i => i.dataset.probability)"
        )
    ]  # fmt: skip
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-4
    assert int(page.get_attribute("#probabilities", "data-predicted") or -1) == max(
        range(10), key=probabilities.__getitem__
    )
    browser.shot("jobs")

    long = start_job(page, epochs="200")
    page.wait_for_selector(f"{job_row(page, long)}[data-status='running']")
    page.click(f"{job_row(page, long)} button[data-action='cancel']")
    page.wait_for_selector(f"{job_row(page, long)}[data-status='cancelled']")
    assert browser.console_errors == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 391, f"the page is {width}px wide at phone width"
    browser.shot("jobs-phone")
