"""Routes of an App host: requirement status, connect tokens and the Runs API.

Every route resolves first and then checks the credential, so an unknown path is 404
even without a credential.
"""

from __future__ import annotations

import re
import time
from typing import Any

from airflow_provider_dynamiq.testing._http import (
    HttpError,
    Request,
    Response,
    Router,
    paginate,
    parse_pagination,
)
from airflow_provider_dynamiq.testing._model import RUN_STATUSES, format_timestamp, is_uuid
from airflow_provider_dynamiq.testing._state import FakeState

# Documented App-host routes that the fake does not serve. They return 404 with a
# message that names the fake as the reason, instead of the plain "no route" message.
_UNSUPPORTED_ROUTES = (
    ("POST", r"/"),
    ("POST", r"/v1/files"),
    ("GET", r"/v1/runs/[^/]+/events"),
    ("GET", r"/v1/runs/[^/]+/stream"),
)

_RUN_SORT_FIELDS = ("started_at", "ended_at", "status", "id")


class AppRoutes:
    """Handlers of one App host."""

    def __init__(self, state: FakeState, app_id: str) -> None:
        self.state = state
        self.app_id = app_id

    def router(self) -> Router:
        """Return the router of the App host."""
        router = Router()
        router.add("GET", r"/v1/requirements/status", self.requirements_status)
        router.add("POST", r"/v1/connect/tokens", self.create_connect_token)
        router.add("POST", r"/v1/runs", self.create_run)
        router.add("GET", r"/v1/runs", self.list_runs)
        router.add("GET", r"/v1/runs/(?P<run_id>[^/]+)", self.get_run)
        router.add("POST", r"/v1/runs/(?P<run_id>[^/]+)/cancel", self.cancel_run)
        router.add("POST", r"/v1/runs/(?P<run_id>[^/]+)/input", self.send_input)
        for method, pattern in _UNSUPPORTED_ROUTES:
            router.add(method, pattern, self.unsupported)
        return router

    def _authorize(self, request: Request) -> None:
        self.state.authorize_app_request(self.state.get_app(self.app_id), request)

    def unsupported(self, request: Request, match: re.Match[str]) -> Response:
        """Reject a documented route that the fake does not serve."""
        raise HttpError(404, f"{request.method} {request.path} is not implemented by the fake Dynamiq server")

    def requirements_status(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/requirements/status?user_id=``."""
        self._authorize(request)
        user_id = request.query_value("user_id")
        if user_id is None or not user_id.strip():
            raise HttpError(400, details={"user_id": "is required"})

        statuses = self.state.requirement_statuses(self.app_id, user_id)
        unsatisfied = [requirement.to_status_item() for requirement, done in statuses if not done]
        status = "incomplete" if unsatisfied else "complete"
        return Response.json(200, {"status": status, "unsatisfied": unsatisfied})

    def create_connect_token(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/connect/tokens`` with a JSON body ``{"user_id": ...}``."""
        self._authorize(request)
        payload = request.json_object()
        user_id = payload.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            raise HttpError(400, details={"user_id": "must be a string"})
        if user_id is None or not user_id.strip():
            raise HttpError(400, details={"user_id": "is required"})

        token, expires_at = self.state.mint_connect_token(self.app_id, user_id)
        payload = {
            "token": token,
            "url": f"{self.state.console_url}/connect?token={token}",
            "expires_at": format_timestamp(expires_at),
        }
        return Response.json(200, payload)

    def create_run(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/runs``: 202 with a ``created`` run in background mode, else 200 once it ends."""
        self._authorize(request)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type == "multipart/form-data":
            raise HttpError(400, "multipart/form-data runs are not supported by the fake Dynamiq server; send JSON")
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            raise HttpError(415, f"unsupported Content-Type {media_type}; send application/json")

        payload = request.json_object()
        fields = _validate_run_fields(payload)
        if fields["stream"] and fields["background"]:
            raise HttpError(400, details={"stream": "cannot be true when background is true"})
        if fields["stream"]:
            raise HttpError(
                400,
                "streaming runs are not supported by the fake Dynamiq server; use background or synchronous mode",
                details={"stream": "is not supported by the fake server"},
            )

        run = self.state.create_run(
            self.app_id,
            run_input=fields["input"],
            user_id=fields["user_id"],
            session_id=fields["session_id"],
            file_ids=fields["file_ids"],
        )
        if fields["background"]:
            return Response.json(202, {"data": self.state.run_json(run)})

        # A synchronous request returns once the run has reached its outcome. A run that
        # waits for input is returned with status awaiting_input.
        deadline = run.created_at + run.duration
        while not self.state.stopping.is_set() and time.time() < deadline:
            self.state.stopping.wait(deadline - time.time())
        return Response.json(200, {"data": self.state.run_json(run)})

    def list_runs(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/runs`` with filters ``status`` (repeated), ``user_id``, ``session_id``."""
        self._authorize(request)
        statuses = request.query.get("status", [])
        unknown = [status for status in statuses if status not in RUN_STATUSES]
        if unknown:
            raise HttpError(400, details={"status": f"unknown status {unknown[0]!r}"})
        sort_fields = _parse_run_sort(request.query_value("sort") or "-started_at")
        page, page_size = parse_pagination(request)
        user_id = request.query_value("user_id")
        session_id = request.query_value("session_id")

        entries = self.state.list_runs(self.app_id)
        if statuses:
            entries = [entry for entry in entries if entry[1]["status"] in statuses]
        if user_id is not None:
            entries = [entry for entry in entries if entry[0].user_id == user_id]
        if session_id is not None:
            entries = [entry for entry in entries if entry[0].session_id == session_id]

        # Stable sorts applied from the last key to the first give a multi-key sort.
        for field, descending in reversed(sort_fields):
            entries.sort(key=lambda entry: _run_sort_key(entry, field), reverse=descending)

        data, pagination = paginate([entry[1] for entry in entries], page, page_size)
        return Response.json(200, {"data": data, "pagination": pagination})

    def get_run(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/runs/{run_id}``."""
        self._authorize(request)
        run = self.state.find_run(self.app_id, match["run_id"])
        return Response.json(200, {"data": self.state.run_json(run)})

    def cancel_run(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/runs/{run_id}/cancel``, which succeeds for ended runs too."""
        self._authorize(request)
        self.state.cancel_run(self.app_id, match["run_id"])
        return Response.json(200, {"message": "canceled"})

    def send_input(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/runs/{run_id}/input`` with ``{"type", "data": {"request_id", ...}}``."""
        self._authorize(request)
        run_id = match["run_id"]
        self.state.find_run(self.app_id, run_id)
        payload = request.json_object()

        details: dict[str, str] = {}
        message_type = payload.get("type")
        if not isinstance(message_type, str) or not message_type.strip():
            details["type"] = "is required"
        data = payload.get("data")
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(data, dict):
            details["data"] = "must be an object"
        elif not isinstance(request_id, str) or not request_id:
            details["data.request_id"] = "is required"
        if details:
            raise HttpError(400, details=details)

        assert isinstance(request_id, str)
        self.state.send_run_input(self.app_id, run_id, request_id, payload)
        return Response.json(200, {"message": "ok"})


def _validate_run_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Return the fields of a create-run body with defaults applied.

    :raises HttpError: 400 with one ``details`` entry per invalid field.
    """
    details: dict[str, str] = {}
    run_input = payload.get("input")
    if run_input is None:
        details["input"] = "cannot be blank"
    elif not isinstance(run_input, dict):
        details["input"] = "must be an object"

    user_id = payload.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        details["user_id"] = "must be a string"
    session_id = payload.get("session_id")
    if session_id is not None and not is_uuid(session_id):
        details["session_id"] = "must be a UUID"
    file_ids = payload.get("file_ids")
    if file_ids is not None and not (
        isinstance(file_ids, list) and all(isinstance(file_id, str) for file_id in file_ids)
    ):
        details["file_ids"] = "must be an array of strings"
    for flag in ("background", "stream"):
        if payload.get(flag) is not None and not isinstance(payload[flag], bool):
            details[flag] = "must be a boolean"
    if details:
        raise HttpError(400, details=details)

    return {
        "input": run_input,
        "user_id": user_id,
        "session_id": session_id,
        "file_ids": list(file_ids or []),
        "background": bool(payload.get("background")),
        "stream": bool(payload.get("stream")),
    }


def _parse_run_sort(text: str) -> list[tuple[str, bool]]:
    """Parse ``sort`` (comma-separated fields, ``-`` for descending) into (field, descending) pairs."""
    fields = []
    for part in text.split(","):
        part = part.strip()
        descending = part.startswith("-")
        field = part.lstrip("-+")
        if field not in _RUN_SORT_FIELDS:
            raise HttpError(
                400, details={"sort": f"unknown field {field!r}; use one of {', '.join(_RUN_SORT_FIELDS)}"}
            )
        fields.append((field, descending))
    return fields


def _run_sort_key(entry: tuple[Any, dict[str, Any]], field: str) -> tuple[bool, Any]:
    run, data = entry
    # The stored float time, not the formatted one, keeps runs started within the same
    # second in order.
    if field == "started_at":
        return (False, (run.created_at, run.sequence))
    value = data.get(field)
    return (value is None, value if value is not None else "")
