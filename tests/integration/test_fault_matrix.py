"""Every operator and the sensor through every fault the fake server can inject.

Each case asserts the outcome (success after retries, or a typed error naming the call), that
no secret reached the captured output or the error message, that no email was sent twice, and
that no partial file was left behind.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_dynamiq._retry import RetryPolicy
from airflow_provider_dynamiq.exceptions import (
    TRANSIENT_ERRORS,
    DynamiqAuthenticationError,
    DynamiqDownloadError,
    DynamiqError,
    DynamiqNotFoundError,
    DynamiqPermissionError,
    DynamiqRateLimitError,
    DynamiqResponseError,
    DynamiqServerError,
    DynamiqTransportError,
)
from airflow_provider_dynamiq.hooks import dynamiq as hook_module
from airflow_provider_dynamiq.operators.artifacts import (
    DynamiqDownloadRunArtifactsOperator,
    DynamiqListRunArtifactsOperator,
)
from airflow_provider_dynamiq.operators.connect import (
    DynamiqCreateConnectTokenOperator,
    DynamiqSendConnectLinkOperator,
)
from airflow_provider_dynamiq.sensors.requirements import DynamiqRequirementsSensor
from airflow_provider_dynamiq.testing import EXAMPLE_RUN_ID, EXAMPLE_USER_ID

from support import set_connection

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
SUCCESS = None  # expected error class of a case that recovers


@dataclass(frozen=True)
class Fault:
    """A fault to inject, and what each kind of target should end with."""

    arguments: dict[str, Any]
    api_error: type[Exception] | None
    storage_error: type[Exception] | None = field(default=None)


FAULTS = {
    "503 twice then ok": Fault({"status": 503, "count": 2}, SUCCESS, SUCCESS),
    "429 with Retry-After then ok": Fault({"status": 429, "count": 1, "retry_after": "1"}, SUCCESS, SUCCESS),
    "reset once then ok": Fault({"reset": True, "count": 1}, SUCCESS, SUCCESS),
    "truncated once then ok": Fault({"truncate": True, "count": 1}, SUCCESS, SUCCESS),
    "slow once then ok": Fault({"delay": 1.5, "count": 1}, SUCCESS, SUCCESS),
    "HTML 502 always": Fault(
        {"status": 502, "count": None, "body": HTML_PAGE, "content_type": "text/html"},
        DynamiqServerError,
        DynamiqDownloadError,
    ),
    "500 always": Fault({"status": 500, "count": None}, DynamiqServerError, DynamiqDownloadError),
    "429 asking for an hour": Fault(
        {"status": 429, "count": None, "retry_after": "3600"}, DynamiqRateLimitError, DynamiqDownloadError
    ),
    "malformed JSON": Fault(
        {"status": 200, "count": None, "body": '{"status": "incomp', "content_type": "application/json"},
        DynamiqResponseError,
        DynamiqDownloadError,
    ),
    "empty body": Fault({"status": 200, "count": None, "body": ""}, DynamiqResponseError, DynamiqDownloadError),
    "401": Fault({"status": 401, "count": None}, DynamiqAuthenticationError, DynamiqDownloadError),
    "403": Fault({"status": 403, "count": None}, DynamiqPermissionError, DynamiqDownloadError),
    "404": Fault({"status": 404, "count": None}, DynamiqNotFoundError, DynamiqDownloadError),
    "reset always": Fault({"reset": True, "count": None}, DynamiqTransportError, DynamiqDownloadError),
    "truncated always": Fault({"truncate": True, "count": None}, DynamiqError, DynamiqError),
}


@dataclass(frozen=True)
class Target:
    """An operator to run and the requests its faults hit."""

    build: Any
    fault_scope: dict[str, str]
    description: str
    storage: bool = False


TARGETS = {
    "sensor": Target(
        lambda tmp: DynamiqRequirementsSensor(task_id="wait", user_id=EXAMPLE_USER_ID),
        {"role": "app", "path": "^/v1/requirements/status$"},
        "requirement status of user 'customer-7421'",
    ),
    "create token": Target(
        lambda tmp: DynamiqCreateConnectTokenOperator(task_id="token", user_id=EXAMPLE_USER_ID),
        {"role": "app", "path": "^/v1/connect/tokens$"},
        "connect token for user 'customer-7421'",
    ),
    "send link": Target(
        lambda tmp: DynamiqSendConnectLinkOperator(task_id="send", user_id=EXAMPLE_USER_ID, to="u@example.com"),
        {"role": "app", "path": "^/v1/connect/tokens$"},
        "connect token for user 'customer-7421'",
    ),
    "list artifacts": Target(
        lambda tmp: DynamiqListRunArtifactsOperator(task_id="list", run_id=EXAMPLE_RUN_ID),
        {"role": "management", "path": "/artifacts$"},
        f"artifacts of run {EXAMPLE_RUN_ID}",
    ),
    "download artifacts": Target(
        lambda tmp: DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp)),
        {"role": "storage"},
        "download artifact",
        storage=True,
    ),
}


@pytest.fixture
def quick_retries(monkeypatch):
    """Give the hooks that operators create millisecond backoff waits."""
    monkeypatch.setattr(hook_module, "RetryPolicy", functools.partial(RetryPolicy, backoff_base=0.001, backoff_max=0.002))


def run_target(operator, context: dict) -> Any:
    if isinstance(operator, DynamiqRequirementsSensor):
        return operator.poke(context)
    return operator.execute(context)


@pytest.mark.parametrize("fault_name", list(FAULTS))
@pytest.mark.parametrize("target_name", list(TARGETS))
def test_fault(monkeypatch, fake_server, smtp_sink, quick_retries, tmp_path, capsys, target_name, fault_name):
    connection = fake_server.connection_json(management_token=True)
    connection["extra"].update({"timeout": 0.5, "max_retries": 3})
    set_connection(monkeypatch, "dynamiq_default", connection)
    target = TARGETS[target_name]
    fault = FAULTS[fault_name]
    expected_error = fault.storage_error if target.storage else fault.api_error
    destination = tmp_path / "files"
    operator = target.build(destination)

    fake_server.add_fault(**target.fault_scope, **fault.arguments)
    outcome: Any = None
    error: Exception | None = None
    try:
        outcome = run_target(operator, {})
    except Exception as raised:  # checked below against the expected class
        error = raised
    fake_server.clear_faults()

    output = capsys.readouterr()
    transient = expected_error is DynamiqError or (
        expected_error is not SUCCESS and issubclass(expected_error, TRANSIENT_ERRORS)
    )
    if target_name == "sensor" and transient:
        # A sensor counts a transient failure as "not yet" and keeps waiting.
        assert error is None, f"{type(error).__name__}: {error}"
        assert not outcome
        assert "will be repeated at the next poke" in output.out
    elif expected_error is SUCCESS:
        assert error is None, f"{type(error).__name__}: {error}"
    else:
        assert isinstance(error, expected_error), f"expected {expected_error.__name__}, got {error!r}"
        assert target.description in str(error)

    issued_links = [
        email.html_body().split('href="', 1)[1].split('"', 1)[0] for email in smtp_sink.messages
    ]
    text = output.out + output.err + (str(error) if error else "") + json.dumps(outcome, default=str)
    if target_name == "create token" and outcome:
        text = text.replace(outcome["url"], "<returned link>")  # returning the link is this operator's purpose
    for secret in [fake_server.access_key, fake_server.management_token, *issued_links]:
        assert secret not in text
    assert "eyJ" not in text  # no JWT
    assert "sig=" not in text  # no signed URL

    if target_name == "send link":
        assert len(smtp_sink.messages) == (1 if expected_error is SUCCESS else 0)
    if target.storage:
        files = sorted(path.name for path in destination.rglob("*")) if destination.exists() else []
        assert files == (["triage-summary.pdf"] if expected_error is SUCCESS else [])
        if expected_error is SUCCESS:
            assert Path(outcome[0]["path"]).stat().st_size == 18231
