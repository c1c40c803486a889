"""One description per API call, shared by the hook's sync and async methods.

A :class:`Call` describes everything about a request except sending it: method, host, path,
parameters, whether it may be repeated, the messages for its errors, and how to turn the
success response into a model. The hook sends it with ``httpx.Client`` or
``httpx.AsyncClient``; validation, error messages and parsing exist once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx

from airflow_provider_dynamiq._connection import ConnectionSettings
from airflow_provider_dynamiq._responses import CallContext, parse_json, validate_model
from airflow_provider_dynamiq._tokens import token_expiry
from airflow_provider_dynamiq._validation import require_id, require_uuid
from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqResponseError
from airflow_provider_dynamiq.models import App, ArtifactPage, ConnectToken, RequirementsStatus, Run

ResultT = TypeVar("ResultT")
Target = Literal["app", "management"]

#: Maximum page size the provider requests when listing.
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Call(Generic[ResultT]):
    """A request to send and how to read its success response.

    :param idempotent: whether repeating the request is harmless; when it is not, the request
        is retried only when it cannot have reached the server.
    """

    method: str
    target: Target
    path: str
    context: CallContext
    parse: Callable[[httpx.Response], ResultT]
    params: dict[str, Any] | None = None
    json: Any = None
    idempotent: bool = True


def call_context(settings: ConnectionSettings, description: str, target: Target, *, not_found: str = "") -> CallContext:
    """Return the error context of a call: what it does and what to check after 401, 403 or 404."""
    conn = f"connection {settings.conn_id!r}"
    if target == "app":
        auth_hint = f"Check the Access Key (password) of {conn}."
        forbidden_hint = (
            f"The credential is valid but not allowed on App host {settings.app_host}: use an Access Key "
            f"of the App's project (not a Personal Access Token) as the password of {conn}."
        )
        not_found_hint = not_found or f"Check the App hostname (host) of {conn}; requests went to {settings.app_url!r}."
    else:
        auth_hint = (
            f"Check the 'management_token' extra of {conn}, or its Access Key (password) when that "
            "extra is empty."
        )
        forbidden_hint = f"The management credential of {conn} is not allowed to read this resource."
        not_found_hint = not_found or f"Check the 'management_url' extra of {conn}; requests went to {settings.management_url!r}."
    return CallContext(
        description=description,
        auth_hint=auth_hint,
        forbidden_hint=forbidden_hint,
        not_found_hint=not_found_hint,
        secrets=tuple(secret for secret in (settings.access_key, settings.management_token) if secret),
    )


def requirements_status_call(settings: ConnectionSettings, user_id: str) -> Call[RequirementsStatus]:
    """Describe ``GET /v1/requirements/status`` for one end user on the App host."""
    user_id = require_id(user_id, "user_id")
    context = call_context(settings, f"get the requirement status of user {user_id!r}", "app")

    def parse(response: httpx.Response) -> RequirementsStatus:
        body = parse_json(response, context)
        if isinstance(body, dict):
            # The API may leave the list out (or send null) when nothing is unsatisfied.
            body = {**body, "user_id": user_id, "unsatisfied": body.get("unsatisfied") or []}
        return validate_model(RequirementsStatus, body, context, status_code=response.status_code)

    return Call("GET", "app", "/v1/requirements/status", context, parse, params={"user_id": user_id})


def connect_token_call(settings: ConnectionSettings, user_id: str) -> Call[ConnectToken]:
    """Describe ``POST /v1/connect/tokens``. Repeating it is harmless: an extra token simply expires."""
    user_id = require_id(user_id, "user_id")
    context = call_context(settings, f"create a connect token for user {user_id!r}", "app")

    def parse(response: httpx.Response) -> ConnectToken:
        body = parse_json(response, context)
        if isinstance(body, dict):
            body = {**body, "user_id": user_id}
            if body.get("expires_at") is None and isinstance(body.get("token"), str):
                body["expires_at"] = token_expiry(body["token"], user_id=user_id)
        return validate_model(ConnectToken, body, context, status_code=response.status_code)

    return Call("POST", "app", "/v1/connect/tokens", context, parse, json={"user_id": user_id})


def app_call(settings: ConnectionSettings, app_id: str | None) -> Call[App]:
    """Describe ``GET /v1/apps/{app_id}`` on the management API."""
    app_id = settings.resolve_app_id(app_id)
    context = call_context(
        settings, f"get App {app_id}", "management", not_found=f"Check app_id {app_id} and the management_url."
    )
    return Call("GET", "management", f"/v1/apps/{app_id}", context, _data_parser(App, context))


def artifacts_page_call(
    settings: ConnectionSettings, run_id: str, app_id: str, page: int, page_size: int
) -> Call[ArtifactPage]:
    """Describe one page of ``GET /v1/apps/{app_id}/runs/{run_id}/artifacts``; ids already validated."""
    context = call_context(
        settings,
        f"list the artifacts of run {run_id} of App {app_id}",
        "management",
        not_found=(
            f"Check run_id {run_id} and app_id {app_id}: the run must belong to that App, and the "
            "credential's project must contain the App."
        ),
    )

    def parse(response: httpx.Response) -> ArtifactPage:
        return validate_model(ArtifactPage, parse_json(response, context), context, status_code=response.status_code)

    return Call(
        "GET",
        "management",
        f"/v1/apps/{app_id}/runs/{run_id}/artifacts",
        context,
        parse,
        params={"page": page, "page_size": page_size},
    )


def create_run_call(
    settings: ConnectionSettings,
    input: dict[str, Any],
    *,
    user_id: str | None = None,
    session_id: str | None = None,
) -> Call[Run]:
    """Describe ``POST /v1/runs`` in background mode. Never repeated once it may have reached the server."""
    if not isinstance(input, dict):
        raise DynamiqConfigError(
            f"input must be a JSON object (a dict of the workflow's input fields), got {type(input).__name__}."
        )
    body: dict[str, Any] = {"input": input, "background": True}
    if user_id is not None:
        body["user_id"] = require_id(user_id, "user_id")
    if session_id is not None:
        body["session_id"] = require_uuid(session_id, "session_id")
    try:
        # The same check httpx makes when it encodes the body: NaN and infinity are rejected too.
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise DynamiqConfigError(f"input is not JSON-serialisable: {error}.") from None
    description = "create a run" + (f" for user {user_id!r}" if user_id else "")
    context = call_context(settings, description, "app")
    return Call("POST", "app", "/v1/runs", context, _data_parser(Run, context), json=body, idempotent=False)


def get_run_call(settings: ConnectionSettings, run_id: str) -> Call[Run]:
    """Describe ``GET /v1/runs/{run_id}`` on the App host."""
    run_id = require_uuid(run_id, "run_id")
    context = call_context(settings, f"get run {run_id}", "app", not_found=_run_not_found(settings, run_id))
    return Call("GET", "app", f"/v1/runs/{run_id}", context, _data_parser(Run, context))


def cancel_run_call(settings: ConnectionSettings, run_id: str) -> Call[None]:
    """Describe ``POST /v1/runs/{run_id}/cancel``, which is idempotent: a finished run stays as it is."""
    run_id = require_uuid(run_id, "run_id")
    context = call_context(settings, f"cancel run {run_id}", "app", not_found=_run_not_found(settings, run_id))

    def parse(response: httpx.Response) -> None:
        return None

    return Call("POST", "app", f"/v1/runs/{run_id}/cancel", context, parse)


def _run_not_found(settings: ConnectionSettings, run_id: str) -> str:
    return f"Check run_id {run_id}: it must be a run of the App at {settings.app_host}."


def validate_page_size(page_size: Any) -> int:
    """Return ``page_size`` when it is a whole number from 1 to :data:`MAX_PAGE_SIZE`."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise DynamiqConfigError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {page_size!r}.")
    return page_size


def _data_parser(model: type[ResultT], context: CallContext) -> Callable[[httpx.Response], ResultT]:
    def parse(response: httpx.Response) -> ResultT:
        body = parse_json(response, context)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise DynamiqResponseError(
                f"Failed to {context.description}: the response has no 'data' object.",
                status_code=response.status_code,
            )
        return validate_model(model, body["data"], context, status_code=response.status_code)

    return parse
