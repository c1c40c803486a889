"""Tests of the fake Dynamiq server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from airflow_provider_dynamiq.testing import (
    EXAMPLE_APP_ID,
    EXAMPLE_ARTIFACT_ID,
    EXAMPLE_PROJECT_ID,
    EXAMPLE_REQUIREMENT_ID,
    EXAMPLE_RUN_ID,
    EXAMPLE_USER_ID,
    EXAMPLE_WORKFLOW_ID,
    ArtifactSpec,
    ConnectLinkError,
    FakeDynamiqServer,
)

# The unmet Gmail requirement exactly as the API reference shows it.
EXAMPLE_UNSATISFIED = {
    "id": EXAMPLE_REQUIREMENT_ID,
    "type": "pipedream_account",
    "form": {
        "title": "Connect your Gmail account",
        "description": "Used to send triage replies on your behalf.",
    },
    "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}},
    "workflow_id": EXAMPLE_WORKFLOW_ID,
    "name": "gmail_account",
}
OTHER_PROJECT_ID = "0f1e2d3c-4b5a-4968-8776-655443322110"


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def key_headers(server: FakeDynamiqServer) -> dict[str, str]:
    return bearer(server.access_key)


def status_url(server: FakeDynamiqServer, app_id: str | None = None) -> str:
    return f"{server.app_url(app_id)}/v1/requirements/status"


def artifacts_url(server: FakeDynamiqServer, run_id: str = EXAMPLE_RUN_ID, app_id: str = EXAMPLE_APP_ID) -> str:
    return f"{server.management_url}/v1/apps/{app_id}/runs/{run_id}/artifacts"


def mint_token(server: FakeDynamiqServer, client: httpx.Client, user_id: str = EXAMPLE_USER_ID) -> dict[str, Any]:
    response = client.post(
        f"{server.app_url()}/v1/connect/tokens", json={"user_id": user_id}, headers=key_headers(server)
    )
    assert response.status_code == 200, response.text
    return response.json()


def download_url(server: FakeDynamiqServer, client: httpx.Client, artifact_id: str, run_id: str = EXAMPLE_RUN_ID) -> str:
    response = client.get(artifacts_url(server, run_id), headers=key_headers(server))
    assert response.status_code == 200, response.text
    urls = {item["id"]: item["download_url"] for item in response.json()["data"]}
    return urls[artifact_id]


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


# App host: credentials


def test_app_host_without_credential_401(server, client):
    response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID})

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_app_host_unknown_key_401(server, client):
    response = client.get(
        status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=bearer("dynamiq_acc_" + "x" * 64)
    )

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_app_host_rejects_pat_403(server, client):
    response = client.get(
        status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=bearer(server.management_token)
    )

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "forbidden"
    assert error["message"] == "Personal Access Tokens are not accepted by deployed Apps"


def test_app_host_rejects_legacy_pat_403(client):
    legacy_token = "uak_" + "a" * 40
    with FakeDynamiqServer(management_token=legacy_token) as server:
        response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=bearer(legacy_token))

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_app_host_other_project_key_403(server, client):
    other_key = server.add_access_key(OTHER_PROJECT_ID)

    response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=bearer(other_key))

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_app_host_same_project_key_200(server, client):
    project_key = server.add_access_key(EXAMPLE_PROJECT_ID)

    response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=bearer(project_key))

    assert response.status_code == 200


def test_public_app_needs_no_credential(server, client):
    app = server.add_app(access_type="public")

    anonymous = client.get(status_url(server, app.id), params={"user_id": "anyone"})
    wrong_header = client.get(status_url(server, app.id), params={"user_id": "anyone"}, headers=bearer("nonsense"))

    assert anonymous.status_code == 200
    assert wrong_header.status_code == 200
    assert anonymous.json() == {"status": "complete", "unsatisfied": []}


def test_app_host_unknown_path_404(server, client):
    response = client.get(f"{server.app_url()}/v1/nothing-here")

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_app_host_wrong_method_405(server, client):
    response = client.delete(f"{server.app_url()}/v1/requirements/status")

    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


# Requirement status and connect tokens


def test_status_missing_user_id_400(server, client):
    for params in ({}, {"user_id": ""}, {"user_id": "   "}):
        response = client.get(status_url(server), params=params, headers=key_headers(server))

        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "bad_request"
        assert error["details"] == {"user_id": "is required"}


def test_status_incomplete_example(server, client):
    response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=key_headers(server))

    assert response.status_code == 200
    assert response.json() == {"status": "incomplete", "unsatisfied": [EXAMPLE_UNSATISFIED]}


def test_status_complete_after_connect_link(server, client):
    token = mint_token(server, client)

    server.follow_connect_link(token["url"])

    response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=key_headers(server))
    assert response.json() == {"status": "complete", "unsatisfied": []}


def test_status_complete_and_reset_helpers(server, client):
    params = {"user_id": "customer-1"}

    server.complete_requirements("customer-1")
    completed = client.get(status_url(server), params=params, headers=key_headers(server)).json()
    server.reset_requirements("customer-1")
    reset = client.get(status_url(server), params=params, headers=key_headers(server)).json()

    assert completed["status"] == "complete"
    assert reset["status"] == "incomplete"


def test_status_partial_completion(server, client):
    helpdesk_id = server.add_requirement(title="Helpdesk API key")

    server.complete_requirements(EXAMPLE_USER_ID, requirement_ids=[EXAMPLE_REQUIREMENT_ID])

    body = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=key_headers(server)).json()
    assert body["status"] == "incomplete"
    assert [item["id"] for item in body["unsatisfied"]] == [helpdesk_id]
    assert body["unsatisfied"][0]["spec"] == {"type": "connection", "data": {"type": "dynamiq.connections.HttpApiKey"}}


def test_connect_token_claims(server, client):
    before = time.time()
    body = mint_token(server, client)

    header = jwt.get_unverified_header(body["token"])
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert set(body) == {"token", "url", "expires_at"}
    assert header["alg"] == "HS256"
    assert header["typ"] == "JWT"
    assert claims["user_id"] == EXAMPLE_USER_ID
    assert claims["app_id"] == EXAMPLE_APP_ID
    assert before - 1 <= claims["iat"] <= time.time()
    assert 86400 <= claims["exp"] - before <= 86401
    assert body["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"]))
    assert body["url"] == f"{server.console_url}/connect?token={body['token']}"


def test_connect_tokens_are_unique(server, client):
    first = mint_token(server, client)
    second = mint_token(server, client)

    first_claims = jwt.decode(first["token"], options={"verify_signature": False})
    second_claims = jwt.decode(second["token"], options={"verify_signature": False})
    assert first["token"] != second["token"]
    assert first_claims["jti"] != second_claims["jti"]


def test_connect_token_invalid_body_400(server, client):
    url = f"{server.app_url()}/v1/connect/tokens"
    cases = [
        (b"", {"body": "must be a JSON object"}),
        (b"[1, 2]", {"body": "must be a JSON object"}),
        (b"{not json", {"body": "is not valid JSON"}),
        (b"{}", {"user_id": "is required"}),
        (b'{"user_id": "  "}', {"user_id": "is required"}),
        (b'{"user_id": 7421}', {"user_id": "must be a string"}),
    ]
    for content, details in cases:
        headers = {**key_headers(server), "Content-Type": "application/json"}
        response = client.post(url, content=content, headers=headers)

        assert response.status_code == 400, content
        assert error_of(response) == {"code": "bad_request", "message": "Bad Request", "details": details}


def test_connect_token_expires(client):
    with FakeDynamiqServer(connect_token_ttl=1) as server:
        body = mint_token(server, client)
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= 2

        time.sleep(max(0.0, claims["exp"] - time.time()) + 0.05)

        page = client.get(body["url"])
        api = client.get(f"{server.management_url}/v1/connect/requirements", headers=bearer(body["token"]))
        assert page.status_code == 401
        assert page.headers["content-type"].startswith("text/html")
        assert api.status_code == 401
        with pytest.raises(ConnectLinkError, match="HTTP 401"):
            server.follow_connect_link(body["url"])


def test_follow_connect_link_rejects_other_host(server):
    with pytest.raises(ValueError, match="not a connect link of this fake server"):
        server.follow_connect_link("http://127.0.0.1:9/connect?token=abc")


def test_connect_page_lists_requirements(server, client):
    body = mint_token(server, client)

    page = client.get(body["url"])

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Connect your Gmail account" in page.text
    assert "Used to send triage replies on your behalf." in page.text
    assert '<form method="post" action="/connect">' in page.text
    assert f'<input type="hidden" name="token" value="{body["token"]}">' in page.text


def test_connect_page_post_invalid_token_401(server, client):
    response = client.post(f"{server.console_url}/connect", data={"token": "not-a-token"})

    assert response.status_code == 401
    assert "invalid or has expired" in response.text


# Connect API on the management host


def test_connect_api_rejects_other_credentials(server, client):
    url = f"{server.management_url}/v1/connect/requirements"
    for headers in ({}, key_headers(server), bearer(server.management_token), bearer("x.y.z")):
        response = client.get(url, headers=headers)

        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"


def test_connect_api_lists_requirements(server, client):
    token = mint_token(server, client)["token"]

    response = client.get(f"{server.management_url}/v1/connect/requirements", headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "id": EXAMPLE_REQUIREMENT_ID,
                "type": "pipedream_account",
                "title": "Connect your Gmail account",
                "description": "Used to send triage replies on your behalf.",
                "spec": {"type": "pipedream_account", "data": {"app_slug": "gmail"}},
            }
        ]
    }


def test_connect_credentials_complete_requirement(server, client):
    requirement_id = server.add_requirement()
    headers = bearer(mint_token(server, client)["token"])
    base = f"{server.management_url}/v1/connect/requirements"

    created = client.post(
        f"{base}/{requirement_id}/credentials",
        json={"type": "dynamiq.connections.HttpApiKey", "config": {"url": "https://helpdesk.invalid", "api_key": "k"}},
        headers=headers,
    )
    statuses = client.get(f"{base}/status", headers=headers).json()["data"]

    assert created.status_code == 200
    assert created.json() == {"message": "created"}
    assert {item["id"]: item["status"] for item in statuses} == {
        EXAMPLE_REQUIREMENT_ID: "pending",
        requirement_id: "completed",
    }


def test_connect_credentials_wrong_type_400(server, client):
    requirement_id = server.add_requirement()
    headers = bearer(mint_token(server, client)["token"])

    response = client.post(
        f"{server.management_url}/v1/connect/requirements/{requirement_id}/credentials",
        json={"type": "dynamiq.connections.OpenAI", "config": {}},
        headers=headers,
    )

    assert response.status_code == 400
    assert error_of(response)["details"] == {"type": "must be dynamiq.connections.HttpApiKey"}


def test_connect_credentials_on_pipedream_400(server, client):
    headers = bearer(mint_token(server, client)["token"])

    response = client.post(
        f"{server.management_url}/v1/connect/requirements/{EXAMPLE_REQUIREMENT_ID}/credentials",
        json={"type": "pipedream_account", "config": {}},
        headers=headers,
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


def test_connect_unknown_requirement_404(server, client):
    headers = bearer(mint_token(server, client)["token"])

    response = client.post(
        f"{server.management_url}/v1/connect/requirements/{uuid.uuid4()}/pipedream/authorize", headers=headers
    )

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_pipedream_authorize_link_completes(server, client):
    headers = bearer(mint_token(server, client)["token"])
    base = f"{server.management_url}/v1/connect/requirements"

    authorize = client.post(f"{base}/{EXAMPLE_REQUIREMENT_ID}/pipedream/authorize", headers=headers)
    link = authorize.json()["data"]["url"]
    page = client.get(link)
    statuses = client.get(f"{base}/status", headers=headers).json()["data"]

    assert authorize.status_code == 200
    assert link.startswith(f"{server.console_url}/_pipedream/connect?token=ctok_")
    assert link.endswith("&connect_link=true&app=gmail")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert statuses[0]["status"] == "completed"


def test_oauth2_authorize_link_completes(server, client):
    requirement_id = server.add_requirement(
        name="drive", title="Google Drive", spec_data={"type": "dynamiq.connections.GoogleOAuth2"}
    )
    headers = bearer(mint_token(server, client)["token"])
    base = f"{server.management_url}/v1/connect/requirements"

    wrong_kind = client.post(f"{base}/{EXAMPLE_REQUIREMENT_ID}/oauth2/authorize", headers=headers)
    authorize = client.post(f"{base}/{requirement_id}/oauth2/authorize", headers=headers)
    consent = client.get(authorize.json()["data"]["url"])
    statuses = client.get(f"{base}/status", headers=headers).json()["data"]

    assert wrong_kind.status_code == 400
    assert authorize.status_code == 200
    assert consent.status_code == 200
    assert {item["id"]: item["status"] for item in statuses}[requirement_id] == "completed"


# Management API: Apps and credentials


def test_management_get_app_with_pat(server, client):
    response = client.get(f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}", headers=bearer(server.management_token))

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == EXAMPLE_APP_ID
    assert data["name"] == "support-triage-agent"
    assert data["project_id"] == EXAMPLE_PROJECT_ID
    assert data["workflow_id"] == EXAMPLE_WORKFLOW_ID
    assert data["access_control"] == {"access_type": "private"}
    assert data["hostname"] == server.app_url().removeprefix("http://")


def test_management_get_app_with_access_key(server, client):
    response = client.get(f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}", headers=key_headers(server))

    assert response.status_code == 200


def test_management_scoped_key_other_project_404(server, client):
    other_key = server.add_access_key(OTHER_PROJECT_ID)

    app = client.get(f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}", headers=bearer(other_key))
    artifacts = client.get(artifacts_url(server), headers=bearer(other_key))

    assert app.status_code == 404
    assert error_of(app)["code"] == "not_found"
    assert artifacts.status_code == 404


def test_management_rejects_connect_token_401(server, client):
    token = mint_token(server, client)["token"]

    response = client.get(f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}", headers=bearer(token))

    assert response.status_code == 401


def test_management_without_credential_401(server, client):
    response = client.get(f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}")

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_list_apps_requires_project_id(server, client):
    response = client.get(f"{server.management_url}/v1/apps", headers=key_headers(server))

    assert response.status_code == 400
    assert error_of(response)["details"] == {"project_id": "is required"}


def test_list_apps_by_project(server, client):
    second = server.add_app(name="another-agent")
    server.add_app(name="elsewhere", project_id=OTHER_PROJECT_ID)

    response = client.get(
        f"{server.management_url}/v1/apps", params={"project_id": EXAMPLE_PROJECT_ID}, headers=key_headers(server)
    )

    body = response.json()
    assert response.status_code == 200
    assert [app["name"] for app in body["data"]] == ["another-agent", "support-triage-agent"]
    assert body["data"][0]["hostname"] == second.hostname
    assert body["pagination"] == {"page": 1, "page_size": 25, "page_count": 1, "total_count": 2}


def test_added_app_has_own_host(server, client):
    app = server.add_app(name="second")
    server.add_requirement(app.id, title="Second requirement")

    response = client.get(status_url(server, app.id), params={"user_id": EXAMPLE_USER_ID}, headers=key_headers(server))

    assert app.url != server.app_url()
    assert app.url == server.app_url(app.id)
    assert [item["form"]["title"] for item in response.json()["unsatisfied"]] == ["Second requirement"]


# Artifacts and storage


def test_artifacts_example_listing(server, client):
    response = client.get(artifacts_url(server), headers=key_headers(server))

    body = response.json()
    item = body["data"][0]
    assert response.status_code == 200
    assert set(item) == {"id", "type", "download_url", "name", "size", "mime_type", "saved_at"}
    assert item["id"] == EXAMPLE_ARTIFACT_ID
    assert item["type"] == "file"
    assert item["name"] == "triage-summary.pdf"
    assert item["size"] == 18231
    assert item["mime_type"] == "application/pdf"
    assert item["saved_at"] == "2026-06-10T09:15:33Z"
    assert item["download_url"].startswith(f"{server.storage_url}/artifacts/{EXAMPLE_ARTIFACT_ID}?expires=")
    assert "&sig=" in item["download_url"]
    assert body["pagination"] == {"page": 1, "page_size": 25, "page_count": 1, "total_count": 1}


def test_artifacts_pages_of_250(server, client):
    run_id = server.add_run(artifacts=[])
    for index in range(250):
        server.add_artifact(run_id, ArtifactSpec(f"part-{index:03}.txt", content=b"x"))

    pages = [
        client.get(artifacts_url(server, run_id), params={"page": page, "page_size": 100}, headers=key_headers(server))
        for page in (1, 2, 3)
    ]

    names = [item["name"] for page in pages for item in page.json()["data"]]
    assert [len(page.json()["data"]) for page in pages] == [100, 100, 50]
    assert names == [f"part-{index:03}.txt" for index in range(250)]
    for number, page in enumerate(pages, start=1):
        assert page.json()["pagination"] == {"page": number, "page_size": 100, "page_count": 3, "total_count": 250}


def test_artifacts_page_size_clamped(server, client):
    run_id = server.add_run(artifacts=[ArtifactSpec(f"f{index}", content=b"") for index in range(120)])

    response = client.get(artifacts_url(server, run_id), params={"page_size": 500}, headers=key_headers(server))

    body = response.json()
    assert len(body["data"]) == 100
    assert body["pagination"] == {"page": 1, "page_size": 100, "page_count": 2, "total_count": 120}


def test_artifacts_page_past_end_empty(server, client):
    response = client.get(artifacts_url(server), params={"page": 5}, headers=key_headers(server))

    assert response.status_code == 200
    assert response.json() == {
        "data": [],
        "pagination": {"page": 5, "page_size": 25, "page_count": 1, "total_count": 1},
    }


def test_artifacts_invalid_page_400(server, client):
    cases = [
        ({"page": "0"}, {"page": "must be an integer >= 1"}),
        ({"page": "two"}, {"page": "must be an integer >= 1"}),
        ({"page_size": "0"}, {"page_size": "must be an integer >= 1"}),
        ({"page_size": "-5"}, {"page_size": "must be an integer >= 1"}),
        ({"page": "1.5", "page_size": ""}, {"page": "must be an integer >= 1", "page_size": "must be an integer >= 1"}),
    ]
    for params, details in cases:
        response = client.get(artifacts_url(server), params=params, headers=key_headers(server))

        assert response.status_code == 400, params
        assert error_of(response)["details"] == details


def test_artifacts_unknown_run_or_app_404(server, client):
    other_app = server.add_app()
    other_run = server.add_run(other_app.id)
    urls = [
        artifacts_url(server, str(uuid.uuid4())),
        artifacts_url(server, EXAMPLE_RUN_ID, str(uuid.uuid4())),
        artifacts_url(server, other_run, EXAMPLE_APP_ID),
    ]
    for url in urls:
        response = client.get(url, headers=key_headers(server))

        assert response.status_code == 404, url
        assert error_of(response)["code"] == "not_found"


def test_download_example_pdf(server, client):
    response = client.get(download_url(server, client, EXAMPLE_ARTIFACT_ID))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == "18231"
    assert response.content == server.artifact_bytes(EXAMPLE_ARTIFACT_ID)
    assert response.content.startswith(b"%PDF-1.4")
    assert response.content.endswith(b"%%EOF\n")


def test_download_bad_signature_403(server, client):
    url = download_url(server, client, EXAMPLE_ARTIFACT_ID)
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")

    response = client.get(tampered)

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/xml"
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_download_missing_signature_403(server, client):
    response = client.get(f"{server.storage_url}/artifacts/{EXAMPLE_ARTIFACT_ID}")

    assert response.status_code == 403
    assert "<Error>" in response.text


def test_download_url_expires_403(client):
    with FakeDynamiqServer(download_url_ttl=0.2) as server:
        url = download_url(server, client, EXAMPLE_ARTIFACT_ID)
        expires = int(httpx.URL(url).params["expires"])

        time.sleep(max(0.0, expires - time.time()) + 0.05)
        response = client.get(url)

    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text


def test_expire_download_urls_403(server, client):
    old_url = download_url(server, client, EXAMPLE_ARTIFACT_ID)

    server.expire_download_urls()
    old = client.get(old_url)
    fresh = client.get(download_url(server, client, EXAMPLE_ARTIFACT_ID))

    assert old.status_code == 403
    assert fresh.status_code == 200


def test_download_deleted_artifact_410(server, client):
    url = download_url(server, client, EXAMPLE_ARTIFACT_ID)

    server.delete_artifact(EXAMPLE_ARTIFACT_ID)
    response = client.get(url)

    assert response.status_code == 410
    assert response.headers["content-type"] == "application/xml"


def test_download_with_authorization_400(server, client):
    url = download_url(server, client, EXAMPLE_ARTIFACT_ID)

    response = client.get(url, headers=key_headers(server))

    storage_requests = [request for request in server.requests if request.role == "storage"]
    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text
    assert storage_requests[-1].headers["authorization"] == f"Bearer {server.access_key}"
    assert storage_requests[-1].status == 400


def test_download_generated_content(server, client):
    size = 3 * 1024 * 1024 + 123
    artifact_id = server.add_artifact(EXAMPLE_RUN_ID, ArtifactSpec("data.bin", size=size))

    response = client.get(download_url(server, client, artifact_id))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert len(response.content) == size
    assert hashlib.sha256(response.content).hexdigest() == server.artifact_sha256(artifact_id)
    assert response.content == server.artifact_bytes(artifact_id)


def test_generated_content_depends_on_id(server):
    first = server.add_artifact(EXAMPLE_RUN_ID, ArtifactSpec("a.bin", size=4096))
    second = server.add_artifact(EXAMPLE_RUN_ID, ArtifactSpec("b.bin", size=4096))

    assert server.artifact_bytes(first) != server.artifact_bytes(second)
    assert server.artifact_sha256(first) != server.artifact_sha256(second)


def test_artifact_spec_validation():
    with pytest.raises(ValueError, match="needs content or size"):
        ArtifactSpec("empty")
    with pytest.raises(ValueError, match="does not match"):
        ArtifactSpec("wrong", content=b"abc", size=4)
    with pytest.raises(ValueError, match="size must be"):
        ArtifactSpec("negative", size=-1)


# Runs API


def runs_url(server: FakeDynamiqServer) -> str:
    return f"{server.app_url()}/v1/runs"


def create_run(server: FakeDynamiqServer, client: httpx.Client, **fields: Any) -> httpx.Response:
    payload = {"input": {"ticket_subject": "Refund"}, "user_id": EXAMPLE_USER_ID, **fields}
    return client.post(runs_url(server), json=payload, headers=key_headers(server))


def get_run(server: FakeDynamiqServer, client: httpx.Client, run_id: str) -> dict[str, Any]:
    response = client.get(f"{runs_url(server)}/{run_id}", headers=key_headers(server))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_background_run_completes(server, client):
    server.set_run_behaviour(duration=0.3)

    created = create_run(server, client, background=True)
    run = created.json()["data"]
    final = wait_for(lambda: (data := get_run(server, client, run["id"]))["status"] == "completed" and data)
    artifacts = client.get(artifacts_url(server, run["id"]), headers=key_headers(server)).json()["data"]

    assert created.status_code == 202
    assert run["status"] == "created"
    assert run["app_id"] == EXAMPLE_APP_ID
    assert "ended_at" not in run
    assert "output" not in run
    assert final["output"] == {"echo": {"ticket_subject": "Refund"}}
    assert "ended_at" in final
    assert [artifact["name"] for artifact in artifacts] == ["result.json"]
    assert json.loads(client.get(artifacts[0]["download_url"]).content) == final["output"]


def test_background_run_passes_started(server, client):
    # Status "created" lasts 0.5 s of the 5 s, which leaves a wide margin on a busy machine.
    server.set_run_behaviour(duration=5.0)

    run_id = create_run(server, client, background=True).json()["data"]["id"]
    time.sleep(0.6)

    assert get_run(server, client, run_id)["status"] == "started"


def test_background_run_fails(server, client):
    server.set_run_behaviour(outcome="failed", duration=0.1)

    run_id = create_run(server, client, background=True).json()["data"]["id"]
    final = wait_for(lambda: (data := get_run(server, client, run_id))["status"] == "failed" and data)

    assert final["output"] is None
    assert "ended_at" in final


def test_sync_run_returns_terminal(server, client):
    server.set_run_behaviour(duration=0.2, output={"category": "billing"})

    started = time.monotonic()
    response = create_run(server, client)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.19
    assert response.json()["data"]["status"] == "completed"
    assert response.json()["data"]["output"] == {"category": "billing"}


def test_run_awaiting_input_then_completes(server, client):
    server.set_run_behaviour(outcome="awaiting_input", duration=0.1)
    run_id = create_run(server, client, background=True).json()["data"]["id"]
    waiting = wait_for(lambda: (data := get_run(server, client, run_id))["status"] == "awaiting_input" and data)
    input_request = waiting["input_requests"][0]
    url = f"{runs_url(server)}/{run_id}/input"

    wrong = client.post(
        url, json={"type": "approval_response", "data": {"request_id": str(uuid.uuid4())}}, headers=key_headers(server)
    )
    answer = client.post(
        url,
        json={"type": "approval_response", "data": {"request_id": input_request["id"], "approved": True}},
        headers=key_headers(server),
    )
    final = get_run(server, client, run_id)
    again = client.post(
        url, json={"type": "approval_response", "data": {"request_id": input_request["id"]}}, headers=key_headers(server)
    )

    assert input_request["type"] == "approval_request"
    assert wrong.status_code == 400
    assert error_of(wrong)["details"] == {"data.request_id": "does not match a pending input request"}
    assert answer.status_code == 200
    assert answer.json() == {"message": "ok"}
    assert final["status"] == "completed"
    assert "input_requests" not in final
    assert again.status_code == 400


def test_cancel_is_idempotent(server, client):
    server.set_run_behaviour(duration=30)
    run_id = create_run(server, client, background=True).json()["data"]["id"]
    cancel_url = f"{runs_url(server)}/{run_id}/cancel"

    first = client.post(cancel_url, headers=key_headers(server))
    second = client.post(cancel_url, headers=key_headers(server))
    ended = client.post(f"{runs_url(server)}/{EXAMPLE_RUN_ID}/cancel", headers=key_headers(server))

    assert first.status_code == 200
    assert first.json() == {"message": "canceled"}
    assert second.status_code == 200
    assert get_run(server, client, run_id)["status"] == "canceled"
    assert ended.status_code == 200
    assert get_run(server, client, EXAMPLE_RUN_ID)["status"] == "completed"


def test_create_run_invalid_body_400(server, client):
    cases = [
        ({"user_id": "u"}, {"input": "cannot be blank"}),
        ({"input": "text"}, {"input": "must be an object"}),
        ({"input": {}, "background": "yes"}, {"background": "must be a boolean"}),
        ({"input": {}, "session_id": "not-a-uuid"}, {"session_id": "must be a UUID"}),
        ({"input": {}, "stream": True, "background": True}, {"stream": "cannot be true when background is true"}),
    ]
    for payload, details in cases:
        response = client.post(runs_url(server), json=payload, headers=key_headers(server))

        assert response.status_code == 400, payload
        assert error_of(response)["details"] == details


def test_create_run_stream_unsupported_400(server, client):
    response = create_run(server, client, stream=True)

    assert response.status_code == 400
    assert "streaming" in error_of(response)["message"]
    assert "not supported" in error_of(response)["message"]


def test_get_seeded_run(server, client):
    run = get_run(server, client, EXAMPLE_RUN_ID)

    assert run["status"] == "completed"
    assert run["user_id"] == EXAMPLE_USER_ID
    assert run["started_at"] == "2026-06-10T09:15:21Z"
    assert run["ended_at"] == "2026-06-10T09:15:34Z"
    assert run["input"]["ticket_subject"] == "Charged twice for June invoice"
    assert run["output"]["category"] == "billing"


def test_run_of_other_app_404(server, client):
    other_app = server.add_app()
    other_run = server.add_run(other_app.id)

    response = client.get(f"{runs_url(server)}/{other_run}", headers=key_headers(server))

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_list_runs_filters(server, client):
    failed = server.add_run(user_id="u1", status="failed")
    waiting = server.add_run(user_id="u1", status="awaiting_input")
    server.add_run(user_id="u2", status="completed")

    def listed(params: dict[str, Any]) -> list[str]:
        response = client.get(runs_url(server), params=params, headers=key_headers(server))
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()["data"]]

    assert listed({"user_id": "u1"}) == [waiting, failed]
    assert listed({"user_id": "u1", "sort": "started_at"}) == [failed, waiting]
    assert listed({"status": ["failed", "awaiting_input"]}) == [waiting, failed]
    assert listed({"status": "completed", "user_id": EXAMPLE_USER_ID}) == [EXAMPLE_RUN_ID]
    assert len(listed({})) == 4


def test_list_runs_invalid_filter_400(server, client):
    bad_status = client.get(runs_url(server), params={"status": "running"}, headers=key_headers(server))
    bad_sort = client.get(runs_url(server), params={"sort": "-name"}, headers=key_headers(server))

    assert bad_status.status_code == 400
    assert "status" in error_of(bad_status)["details"]
    assert bad_sort.status_code == 400
    assert "sort" in error_of(bad_sort)["details"]


# Faults


def test_fault_status_with_retry_after(server, client):
    server.add_fault(path=r"^/v1/requirements/status$", status=429, retry_after="2")

    response = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=key_headers(server))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert error_of(response)["code"] == "too_many_requests"


def test_fault_count_exhausts(server, client):
    server.add_fault(role="app", status=503, count=2)

    statuses = [
        client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server)).status_code
        for _ in range(3)
    ]

    assert statuses == [503, 503, 200]


def test_fault_without_count_until_cleared(server, client):
    server.add_fault(role="management", status=502, count=None)
    url = f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}"

    during = [client.get(url, headers=key_headers(server)).status_code for _ in range(3)]
    server.clear_faults()
    after = client.get(url, headers=key_headers(server)).status_code

    assert during == [502, 502, 502]
    assert after == 200


def test_fault_matches_method_role_path(server, client):
    server.add_fault(method="POST", role="app", path=r"/v1/connect/tokens", status=500)

    status_request = client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))
    token_request = client.post(
        f"{server.app_url()}/v1/connect/tokens", json={"user_id": "u"}, headers=key_headers(server)
    )

    assert status_request.status_code == 200
    assert token_request.status_code == 500


def test_fault_delay(server, client):
    server.add_fault(role="app", delay=0.3)

    started = time.monotonic()
    response = client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))

    assert time.monotonic() - started >= 0.29
    assert response.status_code == 200


def test_fault_reset_is_transport_error(server, client):
    server.add_fault(role="app", reset=True)

    with pytest.raises(httpx.TransportError):
        client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))

    assert server.requests[-1].status is None
    assert client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server)).status_code == 200


def test_fault_truncate_json(server, client):
    server.add_fault(role="management", truncate=True)

    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{server.management_url}/v1/apps/{EXAMPLE_APP_ID}", headers=key_headers(server))


def test_fault_truncate_download(server, client):
    url = download_url(server, client, EXAMPLE_ARTIFACT_ID)
    server.add_fault(role="storage", truncate=True)

    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("GET", url) as response:
            for chunk in response.iter_bytes():
                received += chunk

    assert len(received) == 18231 // 2


def test_fault_html_body(server, client):
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    server.add_fault(role="app", status=502, body=page, content_type="text/html")

    response = client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))

    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text == page


def test_fault_storage_error_is_xml(server, client):
    url = download_url(server, client, EXAMPLE_ARTIFACT_ID)
    server.add_fault(role="storage", status=503)

    response = client.get(url)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/xml"
    assert "<Code>ServiceUnavailable</Code>" in response.text


def test_fault_invalid_arguments(server):
    with pytest.raises(ValueError, match="role"):
        server.add_fault(role="database", status=500)
    with pytest.raises(ValueError, match="need a status"):
        server.add_fault(body="oops")
    with pytest.raises(ValueError, match="reset"):
        server.add_fault(reset=True, status=500)
    with pytest.raises(ValueError, match="at least one"):
        server.add_fault(path="/v1/runs")
    with pytest.raises(ValueError, match="regular expression"):
        server.add_fault(path="(", status=500)


# Test-control routes


def test_control_completes_user(server, client):
    response = client.post(f"{server.management_url}/_fake/users/{EXAMPLE_USER_ID}/complete")

    status = client.get(status_url(server), params={"user_id": EXAMPLE_USER_ID}, headers=key_headers(server))
    assert response.status_code == 200
    assert status.json()["status"] == "complete"


def test_control_faults(server, client):
    added = client.post(
        f"{server.management_url}/_fake/faults", json={"role": "app", "status": 503, "count": None}
    )
    during = client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))
    cleared = client.delete(f"{server.management_url}/_fake/faults")
    after = client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))
    invalid = client.post(f"{server.management_url}/_fake/faults", json={"colour": "red"})

    assert added.status_code == 200
    assert during.status_code == 503
    assert cleared.status_code == 200
    assert after.status_code == 200
    assert invalid.status_code == 400


def test_control_run_behaviour(server, client):
    response = client.post(
        f"{server.management_url}/_fake/runs/behaviour",
        json={"outcome": "completed", "duration": 0, "artifacts": [{"name": "a.txt", "content": "hello"}]},
    )

    run_id = create_run(server, client).json()["data"]["id"]
    artifacts = client.get(artifacts_url(server, run_id), headers=key_headers(server)).json()["data"]
    assert response.status_code == 200
    assert [(artifact["name"], artifact["size"]) for artifact in artifacts] == [("a.txt", 5)]


def test_control_routes_not_recorded(server, client):
    client.delete(f"{server.management_url}/_fake/faults")

    assert server.requests == []


# Recorded requests, logging and lifecycle


def test_requests_are_recorded(server, client):
    client.post(
        f"{server.app_url()}/v1/connect/tokens?trace=1",
        json={"user_id": "u"},
        headers={**key_headers(server), "X-Custom": "yes"},
    )

    recorded = server.requests[-1]
    assert recorded.role == "app"
    assert recorded.app_id == EXAMPLE_APP_ID
    assert recorded.method == "POST"
    assert recorded.path == "/v1/connect/tokens"
    assert recorded.query == {"trace": ["1"]}
    assert recorded.headers["x-custom"] == "yes"
    assert json.loads(recorded.body) == {"user_id": "u"}
    assert recorded.status == 200


def test_clear_requests(server, client):
    client.get(status_url(server), params={"user_id": "u"})

    server.clear_requests()

    assert server.requests == []


def test_log_omits_query_string(server, client, caplog):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_dynamiq.testing")
    token = mint_token(server, client)["token"]

    client.get(f"{server.console_url}/connect", params={"token": token})

    assert "GET /connect -> 200" in caplog.text
    assert token not in caplog.text


def test_nothing_written_to_stderr(capfd):
    with FakeDynamiqServer() as server, httpx.Client(trust_env=False) as client:
        client.get(status_url(server), params={"user_id": "u"})
        client.get(f"{server.app_url()}/missing")
        server.add_fault(role="app", reset=True)
        server.add_fault(role="app", truncate=True)
        for _ in range(2):
            with pytest.raises(httpx.TransportError):
                client.get(status_url(server), params={"user_id": "u"})

    assert capfd.readouterr().err == ""


def test_close_ends_keepalive_connections(client):
    server = FakeDynamiqServer().start()
    client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))

    started = time.monotonic()
    server.close()

    assert time.monotonic() - started < 1.5
    with pytest.raises(httpx.TransportError):
        client.get(status_url(server), params={"user_id": "u"}, headers=key_headers(server))


def test_constructor_validation():
    with pytest.raises(ValueError, match="access_key"):
        FakeDynamiqServer(access_key="sk-123")
    with pytest.raises(ValueError, match="management_token"):
        FakeDynamiqServer(management_token="token")
    with pytest.raises(ValueError, match="connect_token_ttl"):
        FakeDynamiqServer(connect_token_ttl=0)


def test_unseeded_server_has_no_app():
    with FakeDynamiqServer(seed=False) as server:
        assert server.default_app_id is None
        app = server.add_app()
        assert server.default_app_id == app.id


def test_credentials_have_documented_prefixes(server):
    assert server.access_key.startswith("dynamiq_acc_")
    assert len(server.access_key) == len("dynamiq_acc_") + 64
    assert server.management_token.startswith("dyn_pat_")
    assert len(server.management_token) == len("dyn_pat_") + 40


def test_connection_json(server):
    connection = server.connection_json()
    with_token = server.connection_json(management_token=True)

    assert connection == {
        "conn_type": "dynamiq",
        "host": server.app_url(),
        "password": server.access_key,
        "extra": {"management_url": server.management_url, "app_id": EXAMPLE_APP_ID},
    }
    assert with_token["extra"]["management_token"] == server.management_token
    assert json.loads(server.airflow_conn_env()) == connection


def test_main_serves_until_sigterm(client):
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dynamiq.testing", "--download-url-ttl", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)
    reader.start()
    try:
        connection_line = ""
        deadline = time.monotonic() + 20
        while not connection_line.startswith("export AIRFLOW_CONN_DYNAMIQ_DEFAULT="):
            connection_line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        connection = json.loads(shlex.split(connection_line.removeprefix("export AIRFLOW_CONN_DYNAMIQ_DEFAULT="))[0])

        response = client.get(
            f"{connection['host']}/v1/requirements/status",
            params={"user_id": EXAMPLE_USER_ID},
            headers=bearer(connection["password"]),
        )
        process.send_signal(signal.SIGTERM)
        return_code = process.wait(timeout=10)

        assert response.status_code == 200
        assert response.json()["status"] == "incomplete"
        assert connection["extra"]["app_id"] == EXAMPLE_APP_ID
        assert return_code == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
        process.stderr.close()
