"""Property test: whatever status and body the server sends, only provider errors come out."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import set_connection

from airflow_provider_dynamiq._retry import RetryPolicy
from airflow_provider_dynamiq.exceptions import DynamiqError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

RUN_ID = "8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001"
APP_ID = "4f6e1c2a-7b8d-4e9f-a1b2-c3d4e5f60718"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
# Bodies shaped like the API's, with wrong types mixed in, reach deeper into validation.
near_miss_bodies = st.fixed_dictionaries(
    {},
    optional={
        "status": json_values,
        "unsatisfied": st.lists(st.dictionaries(st.sampled_from(["id", "type", "name", "form"]), json_values), max_size=3)
        | json_values,
        "token": json_values,
        "url": json_values,
        "expires_at": json_values | st.sampled_from(["2026-06-11T09:15:21Z", "yesterday", "2026-06-11"]),
        "data": json_values | st.lists(st.dictionaries(st.sampled_from(["id", "name", "size", "download_url"]), json_values), max_size=3),
        "pagination": json_values,
        "error": json_values,
    },
)
bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    near_miss_bodies.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
)
statuses = st.sampled_from([200, 201, 202, 204, 301, 400, 401, 403, 404, 409, 410, 415, 422, 429, 500, 502, 503, 504])

CALLS = {
    "status": lambda hook: hook.get_requirements_status("customer-7421"),
    "token": lambda hook: hook.create_connect_token("customer-7421"),
    "artifacts": lambda hook: hook.list_run_artifacts(RUN_ID),
    "app": lambda hook: hook.get_app(),
}


@pytest.fixture(scope="module")
def connection_env():
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_connection(
            monkeypatch,
            "dynamiq_default",
            {"conn_type": "dynamiq", "host": "app.example.test", "password": "k", "extra": {"app_id": APP_ID}},
        )
        yield


@pytest.mark.parametrize("call", sorted(CALLS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=statuses, body=bodies)
def test_only_provider_errors(connection_env, call, status, body):
    hook = DynamiqHook(retry_policy=RetryPolicy(max_retries=0))
    hook._client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body)))
    try:
        CALLS[call](hook)
    except DynamiqError:
        pass
    finally:
        hook.close()
