"""A fake Dynamiq service for tests, demos and benchmarks, served on 127.0.0.1.

Importing it needs only the standard library and PyJWT. See
:mod:`airflow_provider_dynamiq.testing.server` for the routes and the choices the fake
makes where the Dynamiq API reference is silent. Run ``python -m
airflow_provider_dynamiq.testing`` to serve it from a terminal.
"""

from __future__ import annotations

from airflow_provider_dynamiq.testing._model import (
    EXAMPLE_APP_ID,
    EXAMPLE_ARTIFACT_ID,
    EXAMPLE_PROJECT_ID,
    EXAMPLE_REQUIREMENT_ID,
    EXAMPLE_RUN_ID,
    EXAMPLE_SESSION_ID,
    EXAMPLE_USER_ID,
    EXAMPLE_WORKFLOW_ID,
    ArtifactSpec,
    FakeApp,
    RecordedRequest,
)
from airflow_provider_dynamiq.testing.server import ConnectLinkError, FakeDynamiqServer

__all__ = [
    "EXAMPLE_APP_ID",
    "EXAMPLE_ARTIFACT_ID",
    "EXAMPLE_PROJECT_ID",
    "EXAMPLE_REQUIREMENT_ID",
    "EXAMPLE_RUN_ID",
    "EXAMPLE_SESSION_ID",
    "EXAMPLE_USER_ID",
    "EXAMPLE_WORKFLOW_ID",
    "ArtifactSpec",
    "ConnectLinkError",
    "FakeApp",
    "FakeDynamiqServer",
    "RecordedRequest",
]
