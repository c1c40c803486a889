"""Fixtures for the fake Dynamiq server tests: a started server and an HTTP client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_dynamiq.testing import FakeDynamiqServer

# Every request goes to http://127.0.0.1, but httpx builds a TLS context for each client
# anyway and loads the system CA certificates into it. One shared context keeps the
# per-test setup fast.
_TLS_CONTEXT = ssl.create_default_context()


@pytest.fixture
def server() -> Iterator[FakeDynamiqServer]:
    """Yield a started, seeded fake server and close it afterwards."""
    with FakeDynamiqServer() as fake:
        yield fake


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """Yield an HTTP client that ignores proxy settings from the environment."""
    with httpx.Client(trust_env=False, timeout=5.0, verify=_TLS_CONTEXT) as http_client:
        yield http_client
