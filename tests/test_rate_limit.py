"""The per-client token bucket on /v1: past the burst, 429 with Retry-After; each API key (or
address) has its own bucket; health and /v1/info are not limited."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.http.rate_limit import TokenBuckets

BURST = 5


def test_a_bucket_refills_at_its_rate() -> None:
    buckets = TokenBuckets(rate_per_s=2.0, burst=3)
    assert [buckets.take("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", now=100.0) == pytest.approx(0.5)
    assert buckets.take("b", now=100.0) == 0.0  # another client, another bucket
    assert buckets.take("a", now=100.5) == 0.0  # one token back after 1 / rate
    assert buckets.take("a", now=100.5) == pytest.approx(0.5)


def test_past_the_burst_a_client_gets_429_with_retry_after(make_client: Any) -> None:
    # One token every 20 s: none comes back while the burst is spent, however slow the machine.
    client: TestClient = make_client(rate_limit_per_s=0.05, rate_limit_burst=BURST)
    statuses = [client.get("/v1/losses").status_code for _ in range(BURST)]
    assert statuses == [200] * BURST
    refused = client.get("/v1/losses")
    assert refused.status_code == 429
    # At most 20 s to wait (less if the requests above took a while).
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "LOSS_SERVICE_RATE_LIMIT_PER_S" in refused.json()["detail"]
    # Operations stay open to monitoring.
    for path in ("/healthz", "/readyz", "/v1/info", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_each_api_key_has_its_own_bucket(make_client: Any) -> None:
    client: TestClient = make_client(
        rate_limit_per_s=0.05, rate_limit_burst=BURST, api_keys="alpha-key, beta-key"
    )
    alpha = {"Authorization": "Bearer alpha-key"}
    beta = {"Authorization": "Bearer beta-key"}
    assert [client.get("/v1/losses", headers=alpha).status_code for _ in range(BURST)] == [
        200
    ] * BURST
    assert client.get("/v1/losses", headers=alpha).status_code == 429
    assert client.get("/v1/losses", headers=beta).status_code == 200


def test_the_rate_limit_can_be_turned_off(make_client: Any) -> None:
    client: TestClient = make_client(rate_limit_per_s=0, rate_limit_burst=1)
    assert {client.get("/v1/losses").status_code for _ in range(10)} == {200}
