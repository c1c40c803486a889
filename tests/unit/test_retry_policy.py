"""The retry policy's decisions, independent of any client."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timezone

import httpx
import pytest

from airflow_provider_dynamiq._retry import RetryPolicy, parse_retry_after

POLICY = RetryPolicy(max_retries=3, backoff_base=1.0, backoff_max=4.0, max_retry_after=60)


def response(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_retry(status):
    assert POLICY.decide(1, idempotent=True, response=response(status)).retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500, 501])
def test_other_statuses_never_retry(status):
    decision = POLICY.decide(1, idempotent=True, response=response(status))
    assert not decision.retry
    assert f"HTTP {status}" in decision.reason


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")],
)
def test_transport_errors_retry_when_idempotent(error):
    assert POLICY.decide(1, idempotent=True, error=error).retry


def test_non_idempotent_retries_only_unsent():
    assert POLICY.decide(1, idempotent=False, error=httpx.ConnectError("refused")).retry
    assert not POLICY.decide(1, idempotent=False, error=httpx.ReadTimeout("slow")).retry
    assert not POLICY.decide(1, idempotent=False, response=response(503)).retry


def test_gives_up_after_max_retries():
    assert POLICY.decide(3, idempotent=True, response=response(503)).retry
    decision = POLICY.decide(4, idempotent=True, response=response(503))
    assert not decision.retry
    assert "4 attempts" in decision.reason


def test_backoff_grows_and_is_capped():
    for retry_number, (low, high) in {1: (0.5, 1.0), 2: (1.0, 2.0), 3: (2.0, 4.0), 6: (2.0, 4.0)}.items():
        waits = [POLICY.backoff(retry_number) for _ in range(200)]
        assert min(waits) >= low
        assert max(waits) <= high


def test_backoff_has_jitter():
    assert len({POLICY.backoff(2) for _ in range(20)}) > 1


def test_retry_after_seconds_replaces_backoff():
    assert POLICY.decide(1, idempotent=True, response=response(429, "7")).wait == 7.0


def test_retry_after_http_date():
    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone.utc)
    later = format_datetime(datetime(2026, 12, 4, 12, 0, 20, tzinfo=timezone.utc), usegmt=True)
    decision = POLICY.decide(1, idempotent=True, response=response(503, later), now=now.timestamp())
    assert decision.wait == pytest.approx(20.0)


def test_retry_after_over_cap_fails_at_once():
    decision = POLICY.decide(1, idempotent=True, response=response(429, "3600"))
    assert not decision.retry
    assert "3600 s" in decision.reason


@pytest.mark.parametrize("value", [None, "soon", "-5", "nan"])
def test_invalid_retry_after_is_ignored(value):
    assert parse_retry_after(value) is None


def test_past_http_date_means_no_wait():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
