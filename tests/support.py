"""Helpers shared by the test modules (imported as ``support``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_dynamiq._retry import RetryPolicy

#: A retry policy that waits a few milliseconds, so retry tests stay fast.
FAST_RETRIES = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.002, max_retry_after=5)


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, connection: dict) -> None:
    """Define an Airflow connection through its environment variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
