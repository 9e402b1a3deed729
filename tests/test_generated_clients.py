"""Clients generated from the committed openapi/openapi.json by mainstream generators, built
and run against a live server (``python -m service`` with an API key), their answers compared
with torch: openapi-python-client (Python), openapi-generator typescript-fetch (``tsc
--strict``, node) and openapi-generator java (native library, javac, java).

The drivers are examples/generated/{python,typescript,java}; the generated code goes to a
temporary folder (or the git-ignored folders under examples/generated/). The tools are
installed by ``.ci/clients.sh`` (pinned); a missing tool skips its test, unless
``LOSS_SERVICE_REQUIRE_TOOLS=1`` (set by that script), which makes it a failure."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.support.live import Server, live_server
from tests.test_examples import INPUT, TARGET, mse_reference

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "openapi" / "openapi.json"
DRIVERS = ROOT / "examples" / "generated"
API_KEY = "generated-clients-key"
LOGITS, CLASSES = [[1.2, 0.4, -0.5], [0.8, 1.9, -1.2]], [2, 1]
JAVA_OPTIONS = (
    "openApiNullable=false,useJakartaEe=true,hideGenerationTimestamp=true,"
    "containerDefaultToNull=true,invokerPackage=org.lossservice.client,"
    "apiPackage=org.lossservice.client.api,modelPackage=org.lossservice.client.model"
)
# The generated Java client needs Jackson (with its java.time module) and jakarta.annotation:
# openapi-generator's jar bundles that Jackson, Debian's libjakarta-annotation-api-java the rest.
JAKARTA_ANNOTATION = Path("/usr/share/java/jakarta-annotation-api.jar")
pytestmark = pytest.mark.slow


def need(condition: bool, what: str) -> None:
    if not condition:
        if os.environ.get("LOSS_SERVICE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{what} is required here (LOSS_SERVICE_REQUIRE_TOOLS=1)")
        pytest.skip(f"{what} is not installed (see .ci/clients.sh)")


def run(command: list[str], cwd: Path, timeout: float = 600, **env: str) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def generator_jar() -> Path:
    try:
        import openapi_generator_cli  # type: ignore[import-not-found]
    except ImportError:
        need(False, "openapi-generator-cli (PyPI)")
        raise
    jar = Path(openapi_generator_cli.__file__).parent / "openapi-generator.jar"
    need(jar.is_file(), "openapi-generator's jar")
    need(shutil.which("java") is not None, "Java")
    return jar


def openapi_generator(generator: str, output: Path, *extra: str) -> None:
    jar = generator_jar()
    run(
        ["java", "-jar", str(jar), "generate", "-i", str(DOCUMENT), "-g", generator,
         "-o", str(output), *extra],
        cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("clients"), api_keys=API_KEY) as running:
        yield running


def cross_entropy_reference() -> tuple[float, list[float]]:
    x = torch.tensor(LOGITS, requires_grad=True)
    loss = F.cross_entropy(x, torch.tensor(CLASSES))
    loss.backward()
    assert x.grad is not None
    return loss.item(), x.grad.flatten().tolist()


def check(answer: dict[str, Any]) -> None:
    """The answers a driver printed equal torch's, computed here."""
    mse_loss, mse_grad = mse_reference()
    assert answer["mse_loss"] == mse_loss
    assert answer["mse_grad"] == mse_grad
    ce_loss, ce_grad = cross_entropy_reference()
    assert answer["ce_loss"] == ce_loss
    grad = answer["ce_grad"]
    assert grad["shape"] == [2, 3] and grad["dtype"] == "float32"
    assert np.frombuffer(base64.b64decode(grad["base64"]), "<f4").tolist() == ce_grad
    assert answer["grade_passed"] is True
    assert answer["job_status"] == "succeeded" and answer["job_epochs"] == 1


def output_line(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, stdout
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def test_openapi_python_client(server: Server, tmp_path: Path) -> None:
    tool = shutil.which("openapi-python-client")
    need(tool is not None, "openapi-python-client")
    assert tool is not None
    package = tmp_path / "loss_service_client"
    run(
        [tool, "generate", "--path", str(DOCUMENT), "--output-path", str(package),
         "--meta", "none"],
        cwd=ROOT,
    )  # fmt: skip
    stdout = run(
        [sys.executable, str(DRIVERS / "python" / "main.py"), server.url, API_KEY],
        cwd=ROOT,
        PYTHONPATH=str(tmp_path),
    )
    check(output_line(stdout))


def test_openapi_generator_typescript_fetch(server: Server) -> None:
    folder = DRIVERS / "typescript"
    need(shutil.which("npm") is not None and shutil.which("node") is not None, "node and npm")
    tsc = folder / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
        )
        need(installed.returncode == 0, f"TypeScript from npm ({installed.stderr[-300:]})")
    shutil.rmtree(folder / "client", ignore_errors=True)
    shutil.rmtree(folder / "out", ignore_errors=True)
    openapi_generator("typescript-fetch", folder / "client")
    run([str(tsc), "--project", "tsconfig.json"], cwd=folder)  # strict, see tsconfig.json
    stdout = run(["node", "out/main.js", server.url, API_KEY], cwd=folder)
    check(output_line(stdout))


def test_openapi_generator_java_native(server: Server, tmp_path: Path) -> None:
    need(shutil.which("javac") is not None, "a JDK (javac)")
    need(JAKARTA_ANNOTATION.is_file(), "libjakarta-annotation-api-java")
    jar = generator_jar()
    generated = tmp_path / "java-client"
    openapi_generator(
        "java", generated, "--library", "native", "--additional-properties", JAVA_OPTIONS
    )
    sources = sorted(str(p) for p in (generated / "src" / "main" / "java").rglob("*.java"))
    sources.append(str(DRIVERS / "java" / "Main.java"))
    (tmp_path / "sources.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    classes = tmp_path / "classes"
    classpath = f"{jar}{os.pathsep}{JAKARTA_ANNOTATION}"
    run(
        ["javac", "-nowarn", "-d", str(classes), "-cp", classpath, f"@{tmp_path / 'sources.txt'}"],
        cwd=tmp_path,
    )
    stdout = run(
        ["java", "-cp", f"{classes}{os.pathsep}{classpath}", "Main", server.url, API_KEY],
        cwd=tmp_path,
    )
    check(output_line(stdout))


def test_the_drivers_use_the_example_values() -> None:
    # The drivers hard-code the inputs compared above.
    for driver in ("python/main.py", "typescript/main.ts", "java/Main.java"):
        text = (DRIVERS / driver).read_text(encoding="utf-8")
        assert "1.5, 2.0, 3.2" in text and "1.0, 2.5, 2.8" in text, driver
    assert INPUT == [1.5, 2.0, 3.2] and TARGET == [1.0, 2.5, 2.8]
