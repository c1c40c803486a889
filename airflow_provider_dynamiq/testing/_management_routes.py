"""Routes of the management API: Apps, run artifacts and the ``/v1/connect/*`` fulfilment API.

``/v1/apps...`` takes a Personal Access Token or an Access Key. A project-scoped Access
Key gets 404 for Apps of other projects, as for resources that do not exist.
``/v1/connect/*`` takes only a connect token. The same listener also serves the hosted
console pages (:mod:`._console`) and the test-control routes (:mod:`._control`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from airflow_provider_dynamiq.testing._http import (
    HttpError,
    Request,
    Response,
    Router,
    paginate,
    parse_pagination,
)
from airflow_provider_dynamiq.testing._model import App, is_uuid
from airflow_provider_dynamiq.testing._state import FakeState

_APP_SORT_FIELDS = ("name", "created_at", "updated_at", "id")


class ManagementRoutes:
    """Handlers of the management API."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        """Add the management API routes to ``router``."""
        router.add("GET", r"/v1/apps", self.list_apps)
        router.add("GET", r"/v1/apps/(?P<app_id>[^/]+)", self.get_app)
        router.add("GET", r"/v1/apps/(?P<app_id>[^/]+)/runs/(?P<run_id>[^/]+)/artifacts", self.list_artifacts)
        router.add("GET", r"/v1/connect/requirements", self.list_requirements)
        router.add("GET", r"/v1/connect/requirements/status", self.requirement_statuses)
        requirement = r"/v1/connect/requirements/(?P<requirement_id>[^/]+)"
        router.add("POST", requirement + r"/credentials", self.submit_credentials)
        router.add("POST", requirement + r"/oauth2/authorize", self.authorize_oauth2)
        router.add("POST", requirement + r"/pipedream/authorize", self.authorize_pipedream)

    def _visible_app(self, app_id: str, scope: str | None) -> App:
        try:
            app = self.state.get_app(app_id)
        except KeyError:
            raise HttpError(404, f"App {app_id} not found") from None
        if scope is not None and app.project_id != scope:
            raise HttpError(404, f"App {app_id} not found")
        return app

    def list_apps(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/apps?project_id=`` with optional ``workflow_id``, ``sort`` and pagination."""
        scope = self.state.authorize_management_request(request)
        project_id = request.query_value("project_id")
        if project_id is None or not project_id.strip():
            raise HttpError(400, details={"project_id": "is required"})
        if not is_uuid(project_id):
            raise HttpError(400, details={"project_id": "must be a UUID"})
        workflow_id = request.query_value("workflow_id")
        sort_text = request.query_value("sort") or "name"
        descending = sort_text.startswith("-")
        sort_field = sort_text.lstrip("-+")
        if sort_field not in _APP_SORT_FIELDS:
            raise HttpError(400, details={"sort": f"unknown field {sort_field!r}; use one of {', '.join(_APP_SORT_FIELDS)}"})
        page, page_size = parse_pagination(request)
        if scope is not None and scope != project_id:
            raise HttpError(404, f"project {project_id} not found")

        with self.state.lock:
            apps = [app for app in self.state.apps.values() if app.project_id == project_id]
            if workflow_id is not None:
                apps = [app for app in apps if app.workflow_id == workflow_id]
            items = [app.to_json() for app in apps]
        items.sort(key=lambda item: item[sort_field], reverse=descending)

        data, pagination = paginate(items, page, page_size)
        return Response.json(200, {"data": data, "pagination": pagination})

    def get_app(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/apps/{app_id}``."""
        scope = self.state.authorize_management_request(request)
        app = self._visible_app(match["app_id"], scope)
        with self.state.lock:
            data = app.to_json()
        return Response.json(200, {"data": data})

    def list_artifacts(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/apps/{app_id}/runs/{run_id}/artifacts``, signing fresh download URLs."""
        scope = self.state.authorize_management_request(request)
        app = self._visible_app(match["app_id"], scope)
        run = self.state.find_run(app.id, match["run_id"])
        page, page_size = parse_pagination(request)

        artifacts, pagination = paginate(self.state.run_artifacts(run), page, page_size)
        data = [
            {
                "id": artifact.id,
                "type": "file",
                "download_url": self.state.sign_download_url(artifact.id),
                "name": artifact.name,
                "size": artifact.size,
                "mime_type": artifact.mime_type,
                "saved_at": artifact.saved_at,
            }
            for artifact in artifacts
        ]
        return Response.json(200, {"data": data, "pagination": pagination})

    def list_requirements(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/connect/requirements`` for the connect token's App."""
        claims = self.state.authorize_connect_request(request)
        statuses = self.state.requirement_statuses(claims.app_id, claims.user_id)
        return Response.json(200, {"data": [requirement.to_connect_item() for requirement, _done in statuses]})

    def requirement_statuses(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /v1/connect/requirements/status``: each requirement with ``pending`` or ``completed``."""
        claims = self.state.authorize_connect_request(request)
        data: list[dict[str, Any]] = []
        for requirement, done in self.state.requirement_statuses(claims.app_id, claims.user_id):
            item = requirement.to_connect_item()
            item["status"] = "completed" if done else "pending"
            data.append(item)
        return Response.json(200, {"data": data})

    def submit_credentials(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/connect/requirements/{id}/credentials`` with ``{"type", "config"}``."""
        claims = self.state.authorize_connect_request(request)
        requirement = self.state.find_requirement(claims.app_id, match["requirement_id"])
        if requirement.type != "connection":
            raise HttpError(
                400,
                f"requirement {requirement.id} is of type {requirement.type}; "
                "link the account with POST .../pipedream/authorize",
            )
        if requirement.is_oauth2:
            raise HttpError(
                400,
                f"requirement {requirement.id} needs an OAuth2 grant; use POST .../oauth2/authorize",
            )

        payload = request.json_object()
        details: dict[str, str] = {}
        connection_type = payload.get("type")
        if not isinstance(connection_type, str) or not connection_type:
            details["type"] = "is required"
        elif connection_type != requirement.connection_type:
            details["type"] = f"must be {requirement.connection_type}"
        if not isinstance(payload.get("config"), dict):
            details["config"] = "must be an object"
        if details:
            raise HttpError(400, details=details)

        self.state.complete_requirements(claims.app_id, claims.user_id, [requirement.id])
        return Response.json(200, {"message": "created"})

    def authorize_oauth2(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/connect/requirements/{id}/oauth2/authorize`` with a consent URL on the console."""
        claims = self.state.authorize_connect_request(request)
        requirement = self.state.find_requirement(claims.app_id, match["requirement_id"])
        if not requirement.is_oauth2:
            raise HttpError(400, f"requirement {requirement.id} is not an OAuth2 connection")
        state_token = self.state.create_authorization(claims, requirement.id, "oauth_")
        url = f"{self.state.console_url}/_oauth2/consent?state={state_token}&client_id=fake-dynamiq&response_type=code"
        return Response.json(200, {"data": {"url": url}})

    def authorize_pipedream(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /v1/connect/requirements/{id}/pipedream/authorize`` with a linking URL on the console."""
        claims = self.state.authorize_connect_request(request)
        requirement = self.state.find_requirement(claims.app_id, match["requirement_id"])
        if requirement.type != "pipedream_account":
            raise HttpError(400, f"requirement {requirement.id} is not a pipedream_account requirement")
        link_token = self.state.create_authorization(claims, requirement.id, "ctok_")
        app_slug = quote(str(requirement.spec_data.get("app_slug", "")), safe="")
        url = f"{self.state.console_url}/_pipedream/connect?token={link_token}&connect_link=true&app={app_slug}"
        return Response.json(200, {"data": {"url": url}})
