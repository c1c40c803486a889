"""Route of the storage listener: downloads through signed, short-lived URLs.

Errors are short XML documents, as object stores send them.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from airflow_provider_dynamiq.testing._http import HttpError, Request, Response, Router
from airflow_provider_dynamiq.testing._state import FakeState


class StorageRoutes:
    """Handlers of the storage listener."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def router(self) -> Router:
        """Return the router of the storage listener."""
        router = Router()
        router.add("GET", r"/artifacts/(?P<artifact_id>[^/]+)", self.download)
        router.add("HEAD", r"/artifacts/(?P<artifact_id>[^/]+)", self.download)
        return router

    def download(self, request: Request, match: re.Match[str]) -> Response:
        """Serve ``GET /artifacts/{id}?expires=&sig=``, streaming the content."""
        # Object stores reject a request that authenticates twice. Here it also catches a
        # client that leaks its Dynamiq credential to the storage host.
        if "authorization" in request.headers:
            raise HttpError(
                400,
                "only one auth mechanism allowed: the URL is signed, so send no Authorization header",
                code="InvalidArgument",
            )
        artifact = self.state.check_download(
            match["artifact_id"], request.query_value("expires"), request.query_value("sig")
        )
        headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(artifact.name, safe='')}"}
        return Response(200, content_type=artifact.mime_type, headers=headers, artifact=artifact)
