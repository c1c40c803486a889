"""Operators and the sensor against the fake Dynamiq server and a real SMTP server."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqError
from airflow_provider_dynamiq.operators import connect as connect_module
from airflow_provider_dynamiq.operators.artifacts import (
    DynamiqDownloadRunArtifactsOperator,
    DynamiqListRunArtifactsOperator,
)
from airflow_provider_dynamiq.operators.connect import (
    DynamiqCreateConnectTokenOperator,
    DynamiqSendConnectLinkOperator,
)
from airflow_provider_dynamiq.sensors.requirements import DynamiqRequirementsSensor
from airflow_provider_dynamiq.testing import (
    EXAMPLE_ARTIFACT_ID,
    EXAMPLE_RUN_ID,
    EXAMPLE_USER_ID,
    ArtifactSpec,
)

from support import MemoryStateStore, set_connection

RECIPIENT = "customer-7421@example.com"


def send_link_operator(**kwargs) -> DynamiqSendConnectLinkOperator:
    return DynamiqSendConnectLinkOperator(task_id="send", user_id=EXAMPLE_USER_ID, to=RECIPIENT, **kwargs)


# -- sensor ---------------------------------------------------------------------------


def test_sensor_waits_then_succeeds(dynamiq_conn, fake_server):
    sensor = DynamiqRequirementsSensor(task_id="wait", user_id=EXAMPLE_USER_ID)
    assert not sensor.poke({}).is_done
    fake_server.complete_requirements(EXAMPLE_USER_ID)
    result = sensor.poke({})
    assert result.is_done
    assert result.xcom_value == {"user_id": EXAMPLE_USER_ID, "ready": True, "status": "complete"}


def test_sensor_template_fields():
    assert set(DynamiqRequirementsSensor.template_fields) == {"user_id", "dynamiq_conn_id"}


# -- create connect token -------------------------------------------------------------


def test_create_token_returns_link(dynamiq_conn, fake_server, capsys):
    result = DynamiqCreateConnectTokenOperator(task_id="token", user_id=EXAMPLE_USER_ID).execute({})
    assert set(result) == {"user_id", "url", "expires_at"}
    json.dumps(result)
    assert datetime.fromisoformat(result["expires_at"]) > datetime.now(timezone.utc) + timedelta(hours=23)
    output = capsys.readouterr().out
    assert result["url"] not in output
    assert "127.0.0.1" in output  # the link's host is logged instead
    fake_server.follow_connect_link(result["url"])
    assert fake_server_status_complete(fake_server)


def fake_server_status_complete(fake_server) -> bool:
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    with DynamiqHook() as hook:
        return hook.get_requirements_status(EXAMPLE_USER_ID).is_complete


# -- send connect link ----------------------------------------------------------------


def test_send_link_emails_once(dynamiq_conn, fake_server, smtp_sink, capsys):
    result = send_link_operator().execute({})
    assert result["sent"] is True
    assert result["unsatisfied"] == ["gmail_account"]
    assert set(result) == {"user_id", "sent", "expires_at", "unsatisfied"}
    json.dumps(result)

    (email,) = smtp_sink.wait_for_messages(1, timeout=10)
    assert email.recipients == (RECIPIENT,)
    assert email.subject == "Action needed: connect your accounts"
    body = email.html_body()
    assert "Connect your Gmail account" in body
    assert "Used to send triage replies on your behalf." in body
    assert "/connect?token=" in body

    link = body.split('href="', 1)[1].split('"', 1)[0]
    assert link not in capsys.readouterr().out
    assert link not in json.dumps(result)
    fake_server.follow_connect_link(link)
    assert fake_server_status_complete(fake_server)


def test_send_link_skips_ready_user(dynamiq_conn, fake_server, smtp_sink):
    fake_server.complete_requirements(EXAMPLE_USER_ID)
    fake_server.clear_requests()
    result = send_link_operator().execute({})
    assert result == {"user_id": EXAMPLE_USER_ID, "sent": False, "expires_at": None, "unsatisfied": []}
    assert smtp_sink.messages == []
    assert not [r for r in fake_server.requests if r.path == "/v1/connect/tokens"]


def test_send_link_custom_templates(dynamiq_conn, fake_server, smtp_sink):
    operator = send_link_operator(
        subject="{{ params.product }}: {{ requirements|length }} step\nleft",
        html_content='<a href="{{ connect_url }}">go</a> {% for r in requirements %}[{{ r.name }}]{% endfor %} '
        "until {{ expires_at.year }} <b>{{ params.product }}</b>",
    )
    operator.execute({"params": {"product": "Acme <Triage>"}})
    (email,) = smtp_sink.wait_for_messages(1, timeout=10)
    assert email.subject == "Acme <Triage>: 1 step left"
    body = email.html_body()
    assert "[gmail_account]" in body
    assert "Acme &lt;Triage&gt;" in body  # HTML body is autoescaped
    assert '<a href="http://127.0.0.1:' in body


def test_template_syntax_error_fails_at_parse():
    with pytest.raises(DynamiqConfigError, match="subject is not a valid Jinja template"):
        send_link_operator(subject="{{ broken")


def test_undefined_template_variable_fails_before_sending(dynamiq_conn, fake_server, smtp_sink):
    with pytest.raises(DynamiqConfigError, match="html_content"):
        send_link_operator(html_content="{{ no_such_variable }}").execute({})
    assert smtp_sink.messages == []


def test_rendered_fields_hold_no_link(dynamiq_conn, fake_server, smtp_sink):
    operator = send_link_operator()
    operator.execute({})
    for name in operator.template_fields:
        value = json.dumps(getattr(operator, name), default=str)
        assert "token=" not in value
    assert "subject" not in operator.template_fields
    assert "html_content" not in operator.template_fields


def test_failure_after_send_sends_no_second_email(dynamiq_conn, fake_server, smtp_sink, monkeypatch):
    operator = send_link_operator()

    def broken_link_host(url):
        raise RuntimeError("failure after the email was sent")

    monkeypatch.setattr(connect_module, "link_host", broken_link_host)
    with pytest.raises(RuntimeError, match="after the email"):
        operator.execute({})
    assert len(smtp_sink.wait_for_messages(1, timeout=10)) == 1
    monkeypatch.undo()
    set_connection(monkeypatch, "dynamiq_default", dynamiq_conn)
    with pytest.raises(DynamiqError, match="already attempted"):
        operator.execute({})
    assert len(smtp_sink.messages) == 1


def test_smtp_failure_is_typed(dynamiq_conn, fake_server, monkeypatch):
    set_connection(
        monkeypatch,
        "smtp_default",
        {"conn_type": "smtp", "host": "127.0.0.1", "port": 1, "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "a@example.invalid"}},
    )
    with pytest.raises(DynamiqError, match="through SMTP connection 'smtp_default'") as raised:
        send_link_operator().execute({})
    assert "token=" not in str(raised.value)


@pytest.mark.parametrize("to", [None, "", "not-an-address", ["ok@example.com", "bad"], 5])
def test_bad_recipient_sends_nothing(dynamiq_conn, fake_server, smtp_sink, to):
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="to"):
        DynamiqSendConnectLinkOperator(task_id="send", user_id=EXAMPLE_USER_ID, to=to).execute({})
    assert fake_server.requests == []


def test_expired_token_is_not_emailed(monkeypatch, smtp_sink):
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    set_connection(monkeypatch, "dynamiq_default", {"conn_type": "dynamiq", "host": "app.example.test", "password": "k"})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/requirements/status":
            return httpx.Response(200, json={"status": "incomplete", "unsatisfied": [{"id": "r1", "type": "connection", "name": "crm"}]})
        return httpx.Response(
            200,
            json={"token": "opaque", "url": "https://console.example.test/connect?token=opaque", "expires_at": "2020-01-01T00:00:00Z"},
        )

    operator = send_link_operator()
    hook = DynamiqHook()
    hook._client = httpx.Client(transport=httpx.MockTransport(handler))
    operator.hook = hook
    with pytest.raises(DynamiqError, match="already expired"):
        operator.execute({})
    assert smtp_sink.messages == []


# -- artifacts ------------------------------------------------------------------------


def test_list_artifacts_metadata_only(dynamiq_conn):
    result = DynamiqListRunArtifactsOperator(task_id="list", run_id=EXAMPLE_RUN_ID).execute({})
    assert result == [
        {
            "id": EXAMPLE_ARTIFACT_ID,
            "name": "triage-summary.pdf",
            "type": "file",
            "size": 18231,
            "mime_type": "application/pdf",
            "saved_at": "2026-06-10T09:15:33+00:00",
        }
    ]


def test_download_artifacts(dynamiq_conn, fake_server, tmp_path):
    destination = tmp_path / "new" / "folder"
    result = DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(destination)).execute({})
    (item,) = result
    assert item == {
        "id": EXAMPLE_ARTIFACT_ID,
        "name": "triage-summary.pdf",
        "size": 18231,
        "mime_type": "application/pdf",
        "path": str(destination / "triage-summary.pdf"),
    }
    content = (destination / "triage-summary.pdf").read_bytes()
    assert hashlib.sha256(content).hexdigest() == fake_server.artifact_sha256(EXAMPLE_ARTIFACT_ID)
    assert "sig=" not in json.dumps(result)
    assert sorted(p.name for p in destination.iterdir()) == ["triage-summary.pdf"]


def test_untrusted_names_stay_inside(dynamiq_conn, fake_server, tmp_path):
    names = ["../../escape.txt", "/etc/passwd", "..\\..\\win.txt", "a\x00b\x07c.txt", "", "..", "report.pdf", "REPORT.pdf"]
    run_id = fake_server.add_run(artifacts=[ArtifactSpec(name, content=name.encode() or b"-") for name in names])
    destination = tmp_path / "out"
    result = DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=run_id, destination=str(destination)).execute({})
    paths = [item["path"] for item in result]
    assert len(set(paths)) == len(names)
    for path in paths:
        assert Path(path).parent == destination.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    written = {p.name for p in destination.iterdir()}
    assert {"escape.txt", "passwd", "win.txt", "abc.txt", "report.pdf"} <= written
    assert len(written) == len(names)


@pytest.mark.parametrize("destination", [None, "", "None"])
def test_bad_destination_sends_nothing(dynamiq_conn, fake_server, destination):
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="destination"):
        DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=destination).execute({})
    assert fake_server.requests == []


@pytest.mark.parametrize("run_id", ["", "None", "{{ params.run_id }}", "run-1"])
def test_bad_run_id_sends_nothing(dynamiq_conn, fake_server, tmp_path, run_id):
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="run_id"):
        DynamiqListRunArtifactsOperator(task_id="list", run_id=run_id).execute({})
    assert fake_server.requests == []


def token_requests(fake_server) -> list:
    return [r for r in fake_server.requests if r.path == "/v1/connect/tokens"]


def test_template_error_fails_before_token(dynamiq_conn, fake_server, smtp_sink):
    with pytest.raises(DynamiqConfigError, match="subject"):
        send_link_operator(subject="Hello {{ params.first_name }}").execute({"params": {}})
    assert token_requests(fake_server) == []
    assert smtp_sink.messages == []


def test_template_error_hides_link(dynamiq_conn, fake_server, smtp_sink):
    # Fails only with the real link, after the placeholder rehearsal has passed.
    subject = "{% if 'placeholder' not in connect_url %}{{ requirements[0][connect_url] }}{% endif %}"
    with pytest.raises(DynamiqConfigError) as raised:
        send_link_operator(subject=subject).execute({})
    assert len(token_requests(fake_server)) == 1
    assert "token=" not in str(raised.value)
    assert "<hidden>" in str(raised.value)
    assert smtp_sink.messages == []


@pytest.mark.parametrize("to", ["a@", "@example.com", "a b@example.com", "a@b@c"])
def test_malformed_address_is_rejected(dynamiq_conn, fake_server, to):
    with pytest.raises(DynamiqConfigError, match="invalid email"):
        DynamiqSendConnectLinkOperator(task_id="send", user_id=EXAMPLE_USER_ID, to=to).execute({})
    assert fake_server.requests == []


def test_smtp_refused_says_not_sent(dynamiq_conn, fake_server, monkeypatch):
    set_connection(
        monkeypatch,
        "smtp_default",
        {"conn_type": "smtp", "host": "127.0.0.1", "port": 1, "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "a@example.invalid"}},
    )
    with pytest.raises(DynamiqError, match="The email was not sent"):
        send_link_operator().execute({})


def test_rejected_recipient_says_not_sent(dynamiq_conn, fake_server, monkeypatch):
    from airflow_provider_dynamiq.testing.smtp import SmtpSink

    with SmtpSink(reject_recipients=(RECIPIENT,)) as sink:
        set_connection(monkeypatch, "smtp_default", sink.connection_json())
        with pytest.raises(DynamiqError, match="rejected it .*not sent"):
            send_link_operator().execute({})
        assert sink.messages == []


def test_downloaded_file_follows_umask(dynamiq_conn, fake_server, tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        (item,) = DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path)).execute({})
    finally:
        os.umask(previous)
    assert os.stat(item["path"]).st_mode & 0o777 == 0o644


def test_destination_under_a_file_sends_nothing(dynamiq_conn, fake_server, tmp_path):
    (tmp_path / "afile").write_text("x")
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="destination"):
        DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path / "afile" / "sub")).execute({})
    assert fake_server.requests == []


def test_download_into_a_file_is_rejected(hook, fake_server, tmp_path):
    (artifact,) = hook.list_run_artifacts(EXAMPLE_RUN_ID)
    (tmp_path / "afile").write_text("x")
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="not a folder"):
        hook.download_artifact(artifact, tmp_path / "afile")
    assert fake_server.requests == []



def test_retry_sends_no_second_email(dynamiq_conn, fake_server, smtp_sink, monkeypatch):
    store = MemoryStateStore()

    def broken_link_host(url):
        raise RuntimeError("failure after the email was sent")

    monkeypatch.setattr(connect_module, "link_host", broken_link_host)
    with pytest.raises(RuntimeError):
        send_link_operator().execute({"task_state_store": store})
    monkeypatch.setattr(connect_module, "link_host", lambda url: "127.0.0.1")
    fake_server.clear_requests()
    result = send_link_operator().execute({"task_state_store": store})  # the retry, a new operator object
    assert result["sent"] is True
    assert result["unsatisfied"] == ["gmail_account"]
    assert len(smtp_sink.wait_for_messages(1, timeout=10)) == 1
    assert token_requests(fake_server) == []


def test_retry_sends_when_first_was_not_sent(dynamiq_conn, fake_server, smtp_sink, monkeypatch):
    store = MemoryStateStore()
    working = dict(smtp_sink.connection_json())
    set_connection(monkeypatch, "smtp_default", {**working, "port": 1})
    with pytest.raises(DynamiqError, match="was not sent"):
        send_link_operator().execute({"task_state_store": store})
    assert store.values == {}
    set_connection(monkeypatch, "smtp_default", working)
    assert send_link_operator().execute({"task_state_store": store})["sent"] is True
    assert len(smtp_sink.wait_for_messages(1, timeout=10)) == 1
