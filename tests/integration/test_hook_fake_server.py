"""The hook over real HTTP against the fake Dynamiq server."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import httpx
import pytest

from airflow_provider_dynamiq import __version__
from airflow_provider_dynamiq.exceptions import DynamiqAuthenticationError, DynamiqDownloadError, DynamiqNotFoundError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook
from airflow_provider_dynamiq.testing import (
    EXAMPLE_ARTIFACT_ID,
    EXAMPLE_RUN_ID,
    EXAMPLE_USER_ID,
    ArtifactSpec,
)

from support import set_connection


def test_status_incomplete_then_complete(hook, fake_server):
    status = hook.get_requirements_status(EXAMPLE_USER_ID)
    assert status.status == "incomplete"
    assert not status.is_complete
    assert status.unsatisfied_names() == ["gmail_account"]
    assert status.unsatisfied[0].form.title == "Connect your Gmail account"

    fake_server.complete_requirements(EXAMPLE_USER_ID)
    status = hook.get_requirements_status(EXAMPLE_USER_ID)
    assert status.is_complete
    assert status.unsatisfied == []


def test_user_id_round_trips_encoded(hook, fake_server):
    user_id = "josé+qa@example.com/1?x#y"
    assert hook.get_requirements_status(user_id).user_id == user_id
    request = [r for r in fake_server.requests if r.path == "/v1/requirements/status"][-1]
    assert request.query["user_id"] == [user_id]


def test_connect_token_is_usable(hook, fake_server):
    token = hook.create_connect_token(EXAMPLE_USER_ID)
    assert token.expires_at.tzinfo is not None
    assert "**********" in repr(token)
    assert token.token.get_secret_value() not in repr(token)
    fake_server.follow_connect_link(token.url.get_secret_value())
    assert hook.get_requirements_status(EXAMPLE_USER_ID).is_complete


def test_user_agent_names_package(hook, fake_server):
    hook.get_requirements_status(EXAMPLE_USER_ID)
    assert f"airflow-provider-dynamiq/{__version__}" in fake_server.requests[-1].headers["user-agent"]


def test_wrong_access_key_is_401(monkeypatch, fake_server):
    connection = fake_server.connection_json()
    connection["password"] = "dynamiq_acc_wrong"
    set_connection(monkeypatch, "dynamiq_default", connection)
    with DynamiqHook() as hook, pytest.raises(DynamiqAuthenticationError, match="Access Key"):
        hook.get_requirements_status(EXAMPLE_USER_ID)


def test_lists_seeded_artifact(hook):
    (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
    assert artifact.id == EXAMPLE_ARTIFACT_ID
    assert artifact.name == "triage-summary.pdf"
    assert artifact.size == 18231


def test_pagination_reads_every_page(hook, fake_server):
    run_id = fake_server.add_run(artifacts=[ArtifactSpec(f"file-{i:03}.txt", content=b"x") for i in range(250)])
    fake_server.clear_requests()
    artifacts = hook.list_run_artifacts(run_id)
    assert [a.name for a in artifacts] == [f"file-{i:03}.txt" for i in range(250)]
    pages = [r.query["page"] for r in fake_server.requests if r.path.endswith("/artifacts")]
    assert pages == [["1"], ["2"], ["3"]]


def test_empty_run_lists_nothing(hook, fake_server):
    run_id = fake_server.add_run(artifacts=[])
    fake_server.clear_requests()
    assert hook.list_run_artifacts(run_id) == []
    assert len([r for r in fake_server.requests if r.path.endswith("/artifacts")]) == 1


def test_unknown_run_is_404(hook):
    with pytest.raises(DynamiqNotFoundError, match="11111111-1111-1111-1111-111111111111"):
        hook.list_run_artifacts("11111111-1111-1111-1111-111111111111")


def test_management_token_used_when_set(monkeypatch, fake_server):
    set_connection(monkeypatch, "dynamiq_default", fake_server.connection_json(management_token=True))
    with DynamiqHook() as hook:
        hook.list_run_artifacts(EXAMPLE_RUN_ID)
    request = [r for r in fake_server.requests if r.role == "management"][-1]
    assert request.headers["authorization"] == f"Bearer {fake_server.management_token}"


def test_download_has_no_credential(hook, fake_server, tmp_path):
    (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
    path = Path(hook.download_artifact(artifact, tmp_path))
    assert path == tmp_path / "triage-summary.pdf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_server.artifact_sha256(EXAMPLE_ARTIFACT_ID)
    storage = [r for r in fake_server.requests if r.role == "storage"]
    assert storage
    assert all("authorization" not in r.headers for r in storage)
    assert list(tmp_path.iterdir()) == [path]


def test_truncated_download_leaves_nothing(hook, fake_server, tmp_path):
    (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
    fake_server.add_fault(role="storage", truncate=True, count=10)
    with pytest.raises(Exception) as raised:
        hook.download_artifact(artifact, tmp_path)
    assert "triage-summary.pdf" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_truncated_once_is_retried(hook, fake_server, tmp_path):
    (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
    fake_server.add_fault(role="storage", truncate=True, count=1)
    path = hook.download_artifact(artifact, tmp_path, file_name="report.pdf")
    assert Path(path).stat().st_size == 18231
    assert path == str(tmp_path / "report.pdf")


def test_expired_url_says_so(hook, fake_server, tmp_path):
    (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
    fake_server.expire_download_urls()
    with pytest.raises(DynamiqDownloadError) as raised:
        hook.download_artifact(artifact, tmp_path)
    assert raised.value.url_expired
    assert raised.value.artifact_id == EXAMPLE_ARTIFACT_ID
    assert "sig=" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_503_twice_then_success(hook, fake_server):
    fake_server.add_fault(path="/v1/requirements/status", status=503, count=2, retry_after="0")
    fake_server.clear_requests()
    assert not hook.get_requirements_status(EXAMPLE_USER_ID).is_complete
    assert len([r for r in fake_server.requests if r.path == "/v1/requirements/status"]) == 3


def test_connection_reset_is_retried(hook, fake_server):
    fake_server.add_fault(path="/v1/requirements/status", reset=True, count=1)
    assert hook.get_requirements_status(EXAMPLE_USER_ID).status == "incomplete"


def test_timeout_and_retries_reach_client(monkeypatch, fake_server):
    connection = fake_server.connection_json()
    connection["extra"].update({"timeout": "45", "max_retries": "2"})
    set_connection(monkeypatch, "dynamiq_default", connection)
    with DynamiqHook() as hook:
        assert hook.client.timeout == httpx.Timeout(45.0)
        assert hook.retry_policy.max_retries == 2


def test_read_timeout_is_enforced(monkeypatch, fake_server):
    connection = fake_server.connection_json()
    connection["extra"].update({"timeout": "0.2", "max_retries": "0"})
    set_connection(monkeypatch, "dynamiq_default", connection)
    fake_server.add_fault(path="/v1/requirements/status", delay=1.0, count=1)
    with DynamiqHook() as hook, pytest.raises(Exception, match="ReadTimeout"):
        hook.get_requirements_status(EXAMPLE_USER_ID)


def test_connection_test_succeeds(hook):
    ok, message = hook.test_connection()
    assert ok, message
    assert "support-triage-agent" in message


def test_connection_test_reports_bad_key(monkeypatch, fake_server):
    connection = fake_server.connection_json()
    connection["password"] = "dynamiq_acc_wrong"
    set_connection(monkeypatch, "dynamiq_default", connection)
    ok, message = DynamiqHook().test_connection()
    assert not ok
    assert "Access Key" in message
    assert "dynamiq_acc_wrong" not in message


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_httpx_debug_logs_hide_query_strings(hook, fake_server, tmp_path):
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore.http11", "httpcore.connection")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(collector)
    try:
        (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
        hook.download_artifact(artifact, tmp_path)
        token = hook.create_connect_token(EXAMPLE_USER_ID)
    finally:
        for logger, level in zip(loggers, previous):
            logger.removeHandler(collector)
            logger.setLevel(level)
    text = "\n".join(collector.lines)
    assert "HTTP Request: GET" in text  # the lines were captured
    assert "sig=" not in text
    assert artifact.download_url.get_secret_value() not in text
    assert token.token.get_secret_value() not in text
    assert fake_server.access_key not in text


def test_retry_is_logged_without_secrets(hook, fake_server, capsys):
    fake_server.add_fault(path="/v1/requirements/status", status=503, count=1)
    hook.get_requirements_status(EXAMPLE_USER_ID)
    output = capsys.readouterr().out
    assert "GET /v1/requirements/status on 127.0.0.1" in output
    assert "failed with HTTP 503 (attempt 1 of 4); retrying in" in output
    assert fake_server.access_key not in output
    assert "user_id=" not in output  # the path is logged without its query string
