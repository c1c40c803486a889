"""Connection rules: host forms, credentials per host, typed extras, app id resolution."""

from __future__ import annotations

import json

import pytest

from airflow.sdk import Connection

from airflow_provider_dynamiq._connection import DEFAULT_MANAGEMENT_URL, settings_from_connection
from airflow_provider_dynamiq.exceptions import DynamiqConfigError

APP_ID = "4f6e1c2a-7b8d-4e9f-a1b2-c3d4e5f60718"
APP_HOST = f"{APP_ID}.apps.us-east-1.getdynamiq.ai"


def make_connection(host: str | None = APP_HOST, password: str | None = "dynamiq_acc_key", port=None, **extra) -> Connection:
    return Connection(
        conn_id="dynamiq_test",
        conn_type="dynamiq",
        host=host,
        password=password,
        port=port,
        extra=json.dumps(extra) if extra else None,
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (APP_HOST, f"https://{APP_HOST}"),
        (f"https://{APP_HOST}", f"https://{APP_HOST}"),
        (f"https://{APP_HOST}/", f"https://{APP_HOST}"),
        (f"  {APP_HOST}  ", f"https://{APP_HOST}"),
        ("proxy.example.com/dynamiq/app/", "https://proxy.example.com/dynamiq/app"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("HTTPS://Example.COM", "https://example.com"),
    ],
)
def test_host_forms(host, expected):
    assert settings_from_connection(make_connection(host)).app_url == expected


def test_port_field_applies_when_host_has_none():
    settings = settings_from_connection(make_connection("proxy.example.com/prefix", port=8443))
    assert settings.app_url == "https://proxy.example.com:8443/prefix"


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("https://https://x.example.com", "doubled scheme"),
        ("https//x.example.com", "doubled scheme"),
        ("ftp://x.example.com", "unsupported scheme 'ftp'"),
        ("x.example .com", "white space"),
        ("   ", "blank"),
        ("https://", "no host name"),
        ("x.example.com?token=abc", "query string"),
    ],
)
def test_bad_host_raises(host, fragment):
    with pytest.raises(DynamiqConfigError, match="dynamiq_test") as raised:
        settings_from_connection(make_connection(host))
    assert fragment in str(raised.value)


def test_missing_host_raises():
    with pytest.raises(DynamiqConfigError, match="has no host"):
        settings_from_connection(make_connection(None))


def test_user_info_in_host_is_not_echoed():
    with pytest.raises(DynamiqConfigError) as raised:
        settings_from_connection(make_connection("https://me:hunter22secret@x.example.com"))
    assert "hunter22secret" not in str(raised.value)


def test_user_info_in_bad_host_is_not_echoed():
    with pytest.raises(DynamiqConfigError) as raised:
        settings_from_connection(make_connection("ftp://me:hunter22secret@x.example.com"))
    assert "hunter22secret" not in str(raised.value)


def test_management_defaults_to_access_key():
    settings = settings_from_connection(make_connection())
    assert settings.management_url == DEFAULT_MANAGEMENT_URL
    assert settings.management_credential == "dynamiq_acc_key"


def test_management_token_wins_for_management():
    settings = settings_from_connection(make_connection(management_token="dyn_pat_x"))
    assert settings.management_credential == "dyn_pat_x"
    assert settings.access_key == "dynamiq_acc_key"


def test_prefixed_ui_extras_are_read():
    settings = settings_from_connection(
        make_connection(**{"extra__dynamiq__management_url": "mgmt.example.com", "extra__dynamiq__timeout": "12"})
    )
    assert settings.management_url == "https://mgmt.example.com"
    assert settings.timeout == 12.0


def test_empty_string_extras_count_as_unset():
    settings = settings_from_connection(make_connection(management_url="", management_token="", timeout=""))
    assert settings.management_url == DEFAULT_MANAGEMENT_URL
    assert settings.management_credential == "dynamiq_acc_key"
    assert settings.timeout == 30.0


@pytest.mark.parametrize(
    ("extras", "field", "expected"),
    [
        ({"timeout": "45"}, "timeout", 45.0),
        ({"timeout": 2.5}, "timeout", 2.5),
        ({"max_retries": "0"}, "max_retries", 0),
        ({"max_retries": 7}, "max_retries", 7),
        ({"verify_ssl": "false"}, "verify_ssl", False),
        ({"verify_ssl": "True"}, "verify_ssl", True),
        ({"verify_ssl": False}, "verify_ssl", False),
    ],
)
def test_string_extras_are_typed(extras, field, expected):
    assert getattr(settings_from_connection(make_connection(**extras)), field) == expected


@pytest.mark.parametrize(
    ("extras", "field"),
    [
        ({"timeout": "maybe"}, "timeout"),
        ({"timeout": "0"}, "timeout"),
        ({"timeout": "-3"}, "timeout"),
        ({"timeout": "nan"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_retries": "maybe"}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1000}, "max_retries"),
        ({"max_retries": "2.5"}, "max_retries"),
        ({"verify_ssl": "maybe"}, "verify_ssl"),
        ({"app_id": "not-a-uuid"}, "app_id"),
        ({"management_url": "ftp://x"}, "management_url"),
    ],
)
def test_nonsense_extras_raise_naming_field(extras, field):
    with pytest.raises(DynamiqConfigError, match=field):
        settings_from_connection(make_connection(**extras))


def test_hook_arguments_override_extras():
    settings = settings_from_connection(make_connection(timeout="45", max_retries="2"), timeout=3, max_retries=0)
    assert settings.timeout == 3.0
    assert settings.max_retries == 0


def test_app_id_from_argument_first():
    settings = settings_from_connection(make_connection(app_id="11111111-1111-1111-1111-111111111111"))
    other = "22222222-2222-2222-2222-222222222222"
    assert settings.resolve_app_id(other) == other


def test_app_id_from_extra_before_hostname():
    settings = settings_from_connection(make_connection(app_id="11111111-1111-1111-1111-111111111111"))
    assert settings.resolve_app_id() == "11111111-1111-1111-1111-111111111111"


def test_app_id_from_hostname_label():
    assert settings_from_connection(make_connection()).resolve_app_id() == APP_ID


def test_app_id_missing_says_how_to_set():
    settings = settings_from_connection(make_connection("custom.example.com"))
    with pytest.raises(DynamiqConfigError, match="'app_id' extra"):
        settings.resolve_app_id()


def test_app_id_argument_must_be_uuid():
    settings = settings_from_connection(make_connection())
    with pytest.raises(DynamiqConfigError, match="app_id 'abc' is not a UUID"):
        settings.resolve_app_id("abc")


def test_repr_hides_secrets():
    settings = settings_from_connection(make_connection(management_token="dyn_pat_secret"))
    assert "dynamiq_acc_key" not in repr(settings)
    assert "dyn_pat_secret" not in repr(settings)


def test_query_string_error_quotes_value():
    with pytest.raises(DynamiqConfigError, match=r"\('x.example.com/\?a=1'\)"):
        settings_from_connection(make_connection("x.example.com/?a=1"))


def test_404_hint_shows_path_prefix():
    from airflow_provider_dynamiq._calls import requirements_status_call

    settings = settings_from_connection(make_connection("proxy.example.com/dynamiq"))
    hint = requirements_status_call(settings, "u").context.not_found_hint
    assert "'https://proxy.example.com/dynamiq'" in hint
