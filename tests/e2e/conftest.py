"""Session fixtures for tests that need a real scheduler, executor and triggerer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_dynamiq.testing import FakeDynamiqServer
from airflow_provider_dynamiq.testing.smtp import SmtpSink

from airflow_stack import AirflowStack

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="session")
def stack_servers():
    """A fake Dynamiq server and an SMTP sink that live as long as the Airflow stack."""
    with FakeDynamiqServer() as server, SmtpSink() as smtp:
        yield server, smtp


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory, stack_servers):
    """``airflow standalone`` on loopback, with connections to the session's fake servers."""
    server, smtp = stack_servers
    stack = AirflowStack(
        tmp_path_factory.mktemp("airflow-stack"),
        DAGS_FOLDER,
        {
            "AIRFLOW_CONN_DYNAMIQ_DEFAULT": json.dumps(server.connection_json(management_token=True)),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp.connection_json()),
        },
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
