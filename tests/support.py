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


class MemoryStateStore:
    """Stands in for Airflow's task state store, which keeps values across task tries."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
