"""Test-control routes under ``/_fake/`` for tests that run the fake in another process.

They take no credential, because the fake listens on 127.0.0.1 only. They neither
consume faults nor appear in the recorded requests.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from airflow_provider_dynamiq.testing._http import HttpError, Request, Response, Router
from airflow_provider_dynamiq.testing._model import ArtifactSpec, RunBehaviour, make_fault
from airflow_provider_dynamiq.testing._state import FakeState


class ControlRoutes:
    """Handlers of the ``/_fake/`` routes."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        """Add the control routes to ``router``."""
        router.add("POST", r"/_fake/users/(?P<user_id>[^/]+)/complete", self.complete_user)
        router.add("POST", r"/_fake/faults", self.add_fault)
        router.add("DELETE", r"/_fake/faults", self.clear_faults)
        router.add("POST", r"/_fake/runs/behaviour", self.set_run_behaviour)

    def complete_user(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /_fake/users/{user_id}/complete[?app_id=]``: fulfil every requirement of the App."""
        user_id = unquote(match["user_id"])
        try:
            self.state.complete_requirements(request.query_value("app_id"), user_id, None)
        except KeyError as error:
            raise HttpError(404, str(error.args[0])) from None
        return Response.json(200, {"message": "completed"})

    def add_fault(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /_fake/faults``. The JSON body contains the keyword arguments of ``add_fault``."""
        payload = request.json_object()
        try:
            fault = make_fault(**payload)
        except TypeError as error:
            raise HttpError(400, f"invalid fault argument: {error}") from None
        except ValueError as error:
            raise HttpError(400, str(error)) from None
        self.state.add_fault(fault)
        return Response.json(200, {"message": "created"})

    def clear_faults(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``DELETE /_fake/faults``."""
        self.state.clear_faults()
        return Response.json(200, {"message": "cleared"})

    def set_run_behaviour(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``POST /_fake/runs/behaviour``. The JSON body contains the arguments of ``set_run_behaviour``.

        ``artifacts`` is a list of ``{"name", "content"?, "size"?, "mime_type"?}`` objects,
        where ``content`` is UTF-8 text.
        """
        payload = request.json_object()
        try:
            artifacts = payload.pop("artifacts", None)
            if artifacts is not None:
                payload["artifacts"] = tuple(_artifact_spec(item) for item in artifacts)
            behaviour = RunBehaviour(**payload)
        except TypeError as error:
            raise HttpError(400, f"invalid run behaviour: {error}") from None
        except ValueError as error:
            raise HttpError(400, str(error)) from None
        self.state.set_behaviour(behaviour)
        return Response.json(200, {"message": "ok"})


def _artifact_spec(item: Any) -> ArtifactSpec:
    if not isinstance(item, dict):
        raise ValueError("each artifact must be an object with name and content or size")
    content = item.get("content")
    if content is not None:
        if not isinstance(content, str):
            raise ValueError("artifact content must be a string")
        item = {**item, "content": content.encode()}
    return ArtifactSpec(**item)
