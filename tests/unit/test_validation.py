"""Id checks that run before any request."""

from __future__ import annotations

import pytest

from airflow_provider_dynamiq._validation import require_id, require_uuid
from airflow_provider_dynamiq.exceptions import DynamiqConfigError


@pytest.mark.parametrize("value", [None, "", "   ", "None", "null", "NULL", " x", "x\n", 42])
def test_require_id_rejects(value):
    with pytest.raises(DynamiqConfigError, match="user_id"):
        require_id(value, "user_id")


@pytest.mark.parametrize("value", ["customer-7421", "josé+qa@example.com/1?x#y", "nonexistent"])
def test_require_id_accepts(value):
    assert require_id(value, "user_id") == value


def test_require_uuid_canonicalises():
    assert require_uuid("8C2C8E2E-2F0A-4F4E-9F4F-6E1A52F0A001", "run_id") == "8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001"


@pytest.mark.parametrize("value", ["run-1", "8c2c8e2e", "None", "", None])
def test_require_uuid_rejects(value):
    with pytest.raises(DynamiqConfigError, match="run_id"):
        require_uuid(value, "run_id")
