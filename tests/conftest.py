"""Shared fixtures. Airflow reads AIRFLOW_HOME when it is first imported, so it is set here first."""

from __future__ import annotations

import os
import tempfile

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="dynamiq-tests-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest  # noqa: E402

from support import FAST_RETRIES, set_connection  # noqa: E402


@pytest.fixture
def fake_server():
    """A seeded fake Dynamiq server on loopback, stopped after the test."""
    from airflow_provider_dynamiq.testing import FakeDynamiqServer

    with FakeDynamiqServer() as server:
        yield server


@pytest.fixture
def dynamiq_conn(monkeypatch: pytest.MonkeyPatch, fake_server) -> dict:
    """Point the ``dynamiq_default`` connection at the fake server; returns the connection."""
    connection = fake_server.connection_json()
    set_connection(monkeypatch, "dynamiq_default", connection)
    return connection


@pytest.fixture
def hook(dynamiq_conn):
    """A hook on the fake server with millisecond retry waits."""
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    with DynamiqHook(retry_policy=FAST_RETRIES) as dynamiq_hook:
        yield dynamiq_hook


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch):
    """A real SMTP server on loopback behind the ``smtp_default`` connection."""
    from airflow_provider_dynamiq.testing.smtp import SmtpSink

    with SmtpSink() as sink:
        set_connection(monkeypatch, "smtp_default", sink.connection_json())
        yield sink
