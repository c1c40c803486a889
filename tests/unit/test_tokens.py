"""Connect token expiry: read from the JWT only when the API leaves it out, never echoed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import jwt
import pytest

from support import set_connection

from airflow_provider_dynamiq._tokens import CLOCK_SKEW, is_expired, token_expiry
from airflow_provider_dynamiq.exceptions import DynamiqResponseError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook
from airflow_provider_dynamiq.models import Artifact

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


def make_token(**claims) -> str:
    return jwt.encode(claims, "any-signing-key-of-thirty-two-bytes!", algorithm="HS256")


def test_expiry_read_from_exp_claim():
    token = make_token(user_id="u", exp=int(NOW.timestamp()))
    assert token_expiry(token, user_id="u") == NOW


def test_expired_claim_is_still_readable():
    token = make_token(exp=int((NOW - timedelta(days=3)).timestamp()))
    assert token_expiry(token, user_id="u") == NOW - timedelta(days=3)


@pytest.mark.parametrize("token", ["not-a-jwt-SENTINEL", make_token(user_id="u"), make_token(exp="tomorrow")])
def test_unreadable_expiry_raises_without_token(token):
    with pytest.raises(DynamiqResponseError) as raised:
        token_expiry(token, user_id="u")
    assert token not in str(raised.value)
    assert "'u'" in str(raised.value)


def test_skew_of_thirty_seconds_is_allowed():
    assert CLOCK_SKEW >= timedelta(seconds=30)
    assert not is_expired(NOW - timedelta(seconds=29), now=NOW)
    assert is_expired(NOW - timedelta(seconds=31), now=NOW)
    assert not is_expired(NOW + timedelta(hours=24), now=NOW)


def test_hook_fills_missing_expires_at(monkeypatch):
    set_connection(monkeypatch, "dynamiq_default", {"conn_type": "dynamiq", "host": "app.example.test", "password": "k"})
    token = make_token(user_id="u", exp=int(NOW.timestamp()))
    body = {"token": token, "url": f"https://console.example.test/connect?token={token}"}
    with DynamiqHook() as hook:
        hook._client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
        assert hook.create_connect_token("u").expires_at == NOW


def test_artifact_repr_hides_signed_url():
    artifact = Artifact(id="a", name="x.pdf", size=1, download_url="https://storage.example.test/a?sig=SENTINEL")
    assert "SENTINEL" not in repr(artifact)
    assert "SENTINEL" not in str(artifact.metadata())
