"""Operators that list and download the files an App run produced."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dynamiq._download import contained_path, plan_file_names, prepare_folder
from airflow_provider_dynamiq._validation import require_uuid
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class _RunArtifactsOperator(BaseOperator):
    template_fields: Sequence[str] = ("run_id", "app_id", "dynamiq_conn_id")
    ui_color = "#eef7e8"

    def __init__(
        self,
        *,
        run_id: str,
        app_id: str | None = None,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.app_id = app_id
        self.dynamiq_conn_id = dynamiq_conn_id

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook this task talks to Dynamiq through."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def _validated_ids(self) -> tuple[str, str]:
        run_id = require_uuid(self.run_id, "run_id")
        app_id = self.hook.settings.resolve_app_id(self.app_id)
        return run_id, app_id


class DynamiqListRunArtifactsOperator(_RunArtifactsOperator):
    """List the artifacts of an App run.

    Returns a list of ``{"id", "name", "type", "size", "mime_type", "saved_at"}`` (size in bytes,
    ``saved_at`` in ISO 8601). The signed download URLs are left out: they are credentials.

    :param run_id: UUID of the run (templated).
    :param app_id: UUID of the App (templated); defaults to the connection's ``app_id`` extra,
        then to the first label of the App hostname.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqListRunArtifactsOperator" section of the README.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        run_id, app_id = self._validated_ids()
        with self.hook:
            artifacts = [artifact.metadata() for artifact in self.hook.iter_run_artifacts(run_id, app_id=app_id)]
        self.log.info("Run %s of App %s has %d artifact(s).", run_id, app_id, len(artifacts))
        return artifacts


class DynamiqDownloadRunArtifactsOperator(_RunArtifactsOperator):
    """Download every artifact of an App run into a local folder.

    Each file is streamed from its signed URL, which gets no Dynamiq credential, into a
    temporary file that is moved into place only when it is complete and has the listed size.
    File names come from the server, so they are made safe. Only the last path component is
    kept, control characters are removed, and a duplicate name gets the artifact id appended.
    No file is written outside ``destination``, and none overwrites another of the same run.

    Returns a list of ``{"id", "name", "size", "mime_type", "path"}`` where ``name`` is the
    artifact's name on the server and ``path`` the absolute local path.

    :param run_id: UUID of the run (templated).
    :param destination: local folder to write to (templated); created when missing.
    :param app_id: UUID of the App (templated); defaults as for
        :class:`DynamiqListRunArtifactsOperator`.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqDownloadRunArtifactsOperator" section of the README.
    """

    template_fields: Sequence[str] = (*_RunArtifactsOperator.template_fields, "destination")

    def __init__(self, *, run_id: str, destination: str | os.PathLike[str], app_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(run_id=run_id, app_id=app_id, **kwargs)
        self.destination = destination

    def execute(self, context: Context) -> list[dict[str, Any]]:
        run_id, app_id = self._validated_ids()
        folder = prepare_folder(self.destination)
        results: list[dict[str, Any]] = []
        with self.hook:
            artifacts = self.hook.list_run_artifacts(run_id, app_id=app_id)
            file_names = plan_file_names(artifacts)
            for artifact in artifacts:
                path = contained_path(folder, file_names[artifact.id])
                self.hook.download_artifact(artifact, path)
                self.log.info(
                    "Downloaded artifact %s (%s, %d bytes) to %s.", artifact.id, artifact.mime_type, artifact.size, path
                )
                results.append(
                    {
                        "id": artifact.id,
                        "name": artifact.name,
                        "size": artifact.size,
                        "mime_type": artifact.mime_type,
                        "path": str(path),
                    }
                )
        self.log.info("Downloaded %d artifact(s) of run %s to %s.", len(results), run_id, folder)
        return results
