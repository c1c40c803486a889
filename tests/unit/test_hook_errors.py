"""How the hook turns error responses and odd bodies into typed errors (transport mocks)."""

from __future__ import annotations

import httpx
import pytest

from support import FAST_RETRIES, set_connection

from airflow_provider_dynamiq.exceptions import (
    DynamiqAPIError,
    DynamiqAuthenticationError,
    DynamiqBadRequestError,
    DynamiqConfigError,
    DynamiqError,
    DynamiqNotFoundError,
    DynamiqPermissionError,
    DynamiqRateLimitError,
    DynamiqResponseError,
    DynamiqServerError,
    DynamiqTransportError,
)
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

ACCESS_KEY = "dynamiq_acc_SENTINEL0123456789"
MANAGEMENT_TOKEN = "dyn_pat_SENTINEL9876543210"
APP_ID = "4f6e1c2a-7b8d-4e9f-a1b2-c3d4e5f60718"
RUN_ID = "8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001"


@pytest.fixture
def make_hook(monkeypatch):
    set_connection(
        monkeypatch,
        "dynamiq_default",
        {
            "conn_type": "dynamiq",
            "host": "app.example.test",
            "password": ACCESS_KEY,
            "extra": {"management_url": "https://mgmt.example.test", "app_id": APP_ID, "management_token": MANAGEMENT_TOKEN},
        },
    )
    created = []

    def factory(handler) -> DynamiqHook:
        hook = DynamiqHook(retry_policy=FAST_RETRIES)
        hook._client = httpx.Client(transport=httpx.MockTransport(handler))
        created.append(hook)
        return hook

    yield factory
    for hook in created:
        hook.close()


def envelope(status: int, code: str, message: str, details=None) -> httpx.Response:
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"error": error})


@pytest.mark.parametrize(
    ("status", "code", "error_class", "hint"),
    [
        (400, "bad_request", DynamiqBadRequestError, ""),
        (401, "unauthorized", DynamiqAuthenticationError, "Access Key (password)"),
        (403, "forbidden", DynamiqPermissionError, "not a Personal Access Token"),
        (404, "not_found", DynamiqNotFoundError, "requests went to 'https://app.example.test'"),
    ],
)
def test_envelope_becomes_typed_error(make_hook, status, code, error_class, hint):
    hook = make_hook(lambda request: envelope(status, code, "Nope", {"user_id": "cannot be blank"}))
    with pytest.raises(error_class) as raised:
        hook.get_requirements_status("customer-7421")
    error = raised.value
    assert error.status_code == status
    assert error.code == code
    assert error.message == "Nope"
    assert error.details == {"user_id": "cannot be blank"}
    assert "requirement status of user 'customer-7421'" in str(error)
    assert hint in str(error)


def test_client_errors_are_not_retried(make_hook):
    calls = []

    def handler(request):
        calls.append(request)
        return envelope(401, "unauthorized", "Unauthorized")

    with pytest.raises(DynamiqAuthenticationError):
        make_hook(handler).get_requirements_status("customer-7421")
    assert len(calls) == 1


def test_management_401_points_at_management_token(make_hook):
    hook = make_hook(lambda request: envelope(401, "unauthorized", "Unauthorized"))
    with pytest.raises(DynamiqAuthenticationError, match="'management_token' extra"):
        hook.list_run_artifacts(RUN_ID)


def test_management_404_names_run_and_app(make_hook):
    hook = make_hook(lambda request: envelope(404, "not_found", "Not Found"))
    with pytest.raises(DynamiqNotFoundError) as raised:
        hook.list_run_artifacts(RUN_ID)
    assert RUN_ID in str(raised.value)
    assert APP_ID in str(raised.value)


def test_503_then_success_is_retried(make_hook):
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"status": "complete", "unsatisfied": []})])
    hook = make_hook(lambda request: next(answers))
    assert hook.get_requirements_status("customer-7421").is_complete


def test_429_exhausted_raises_rate_limit(make_hook):
    calls = []

    def handler(request):
        calls.append(request)
        return envelope(429, "too_many_requests", "Slow down")

    with pytest.raises(DynamiqRateLimitError) as raised:
        make_hook(handler).get_requirements_status("customer-7421")
    assert len(calls) == FAST_RETRIES.max_retries + 1
    assert raised.value.retryable
    assert "Gave up after 4 attempts." in str(raised.value)


def test_long_retry_after_fails_at_once(make_hook):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(429, headers={"Retry-After": "900"})

    with pytest.raises(DynamiqRateLimitError, match="900 s"):
        make_hook(handler).get_requirements_status("customer-7421")
    assert len(calls) == 1


def test_html_proxy_page_keeps_status_and_excerpt(make_hook):
    page = "<html><body><h1>502 Bad Gateway</h1>" + "x" * 500 + "</body></html>"
    hook = make_hook(lambda request: httpx.Response(502, text=page, headers={"Content-Type": "text/html"}))
    with pytest.raises(DynamiqServerError) as raised:
        hook.get_requirements_status("customer-7421")
    error = raised.value
    assert error.status_code == 502
    assert error.code is None
    assert error.retryable
    assert error.body_excerpt.startswith("<html><body><h1>502 Bad Gateway</h1>")
    assert len(error.body_excerpt) <= 200


def test_error_body_echoing_key_is_scrubbed(make_hook):
    hook = make_hook(lambda request: httpx.Response(400, text=f"bad header Bearer {ACCESS_KEY}"))
    with pytest.raises(DynamiqAPIError) as raised:
        hook.get_requirements_status("customer-7421")
    assert ACCESS_KEY not in str(raised.value)
    assert ACCESS_KEY not in raised.value.body_excerpt


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty body"),
        (b"<html>maintenance</html>", "not JSON"),
        (b'{"status": "incomplete", "unsatis', "not JSON"),
        (b'["a list"]', "not the documented shape"),
        (b'{"unsatisfied": []}', "status: Field required"),
        (b'{"status": "incomplete", "unsatisfied": [{"type": "connection"}]}', "unsatisfied.0.id"),
    ],
)
def test_bad_success_bodies_raise_response_error(make_hook, body, fragment):
    hook = make_hook(lambda request: httpx.Response(200, content=body))
    with pytest.raises(DynamiqResponseError, match=fragment):
        hook.get_requirements_status("customer-7421")


def test_validation_error_does_not_echo_token(make_hook):
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoieCJ9.SENTINELSIG"
    hook = make_hook(lambda request: httpx.Response(200, json={"token": secret, "url": 5, "expires_at": "never"}))
    with pytest.raises(DynamiqResponseError) as raised:
        hook.create_connect_token("customer-7421")
    assert secret not in str(raised.value)


def test_transport_error_after_retries_is_typed(make_hook):
    def handler(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(DynamiqTransportError, match="ConnectError"):
        make_hook(handler).get_requirements_status("customer-7421")


def test_unknown_status_warns_ready(make_hook, capsys):
    hook = make_hook(lambda request: httpx.Response(200, json={"status": "all_done", "unsatisfied": []}))
    status = hook.get_requirements_status("customer-7421")
    assert status.is_complete
    assert "unknown value 'all_done'" in capsys.readouterr().out


def test_extra_fields_are_accepted(make_hook):
    hook = make_hook(
        lambda request: httpx.Response(200, json={"status": "complete", "unsatisfied": [], "new_field": {"x": 1}})
    )
    assert hook.get_requirements_status("customer-7421").is_complete


def test_null_unsatisfied_counts_as_empty(make_hook):
    hook = make_hook(lambda request: httpx.Response(200, json={"status": "complete", "unsatisfied": None}))
    assert hook.get_requirements_status("customer-7421").unsatisfied == []


@pytest.mark.parametrize("user_id", ["", "  ", None, "None", "null"])
def test_bad_user_id_sends_nothing(make_hook, user_id):
    calls = []
    hook = make_hook(lambda request: calls.append(request) or httpx.Response(200))
    with pytest.raises(DynamiqConfigError, match="user_id"):
        hook.get_requirements_status(user_id)
    with pytest.raises(DynamiqConfigError, match="user_id"):
        hook.create_connect_token(user_id)
    assert calls == []


@pytest.mark.parametrize("run_id", ["", "None", "null", "run-1"])
def test_bad_run_id_sends_nothing(make_hook, run_id):
    calls = []
    hook = make_hook(lambda request: calls.append(request) or httpx.Response(200))
    with pytest.raises(DynamiqConfigError, match="run_id"):
        hook.list_run_artifacts(run_id)
    assert calls == []


def test_user_id_is_encoded_by_httpx(make_hook):
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"status": "complete", "unsatisfied": []})

    user_id = "josé+qa@example.com/1?x#y"
    make_hook(handler).get_requirements_status(user_id)
    request = seen[0]
    assert request.url.path == "/v1/requirements/status"
    assert request.url.params["user_id"] == user_id
    assert b"user_id=jos%C3%A9%2Bqa%40example.com%2F1%3Fx%23y" in request.url.query


def test_credentials_go_to_their_hosts(make_hook):
    seen = []

    def handler(request):
        seen.append(request)
        if request.url.path.endswith("/artifacts"):
            return httpx.Response(200, json={"data": [], "pagination": {"page": 1, "page_size": 100, "page_count": 0, "total_count": 0}})
        return httpx.Response(200, json={"status": "complete", "unsatisfied": []})

    hook = make_hook(handler)
    hook.get_requirements_status("customer-7421")
    hook.list_run_artifacts(RUN_ID)
    app_request, management_request = seen
    assert app_request.url.host == "app.example.test"
    assert app_request.headers["Authorization"] == f"Bearer {ACCESS_KEY}"
    assert management_request.url.host == "mgmt.example.test"
    assert management_request.headers["Authorization"] == f"Bearer {MANAGEMENT_TOKEN}"


def test_errors_are_dynamiq_errors():
    assert issubclass(DynamiqAPIError, DynamiqError)
    from airflow.sdk.exceptions import AirflowException

    assert issubclass(DynamiqError, AirflowException)


def test_storage_redirect_carries_no_credential(make_hook, tmp_path):
    from airflow_provider_dynamiq.models import Artifact

    seen = []

    def handler(request):
        seen.append(request)
        if request.url.host == "storage.example.test":
            return httpx.Response(302, headers={"Location": "https://mirror.example.test/file?sig=abc"})
        return httpx.Response(200, stream=httpx.ByteStream(b"12345"))  # streamed, as a real server sends it

    artifact = Artifact(id="a1", name="f.txt", size=5, download_url="https://storage.example.test/a1?sig=xyz")
    path = make_hook(handler).download_artifact(artifact, tmp_path)
    assert open(path, "rb").read() == b"12345"
    assert [request.url.host for request in seen] == ["storage.example.test", "mirror.example.test"]
    assert all("authorization" not in request.headers for request in seen)
