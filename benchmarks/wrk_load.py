"""POST load with wrk (Debian: `apt-get install wrk`): one body, one URL, bounded in time.

Shared by the benchmarks that drive a live server; wrk is written in C and leaves the server
most of the machine's CPU, where a Python load generator would compete with it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(
    url: str, body: bytes, seconds: float, scratch: Path, connections: int = 8, timeout_s: int = 30
) -> dict[str, float]:
    """Requests per second and latency percentiles of POSTing ``body`` to ``url``; raises when
    any request failed (so a benchmark never reports the speed of errors)."""
    body_file, lua = scratch / "body.json", scratch / "post.lua"
    body_file.write_bytes(body)
    lua.write_text(WRK_SCRIPT)
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s", "-s", str(lua), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
    out = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + timeout_s + 30
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    if data["non2xx"] or data["socket_errors"]:
        raise RuntimeError(f"{url}: wrk saw errors: {data}")
    return {
        "requests": data["requests"],
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "max_ms": data["max_us"] / 1000,
    }
