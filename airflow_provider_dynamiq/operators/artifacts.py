"""Operators that list and download the files an App run produced."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dynamiq._validation import require_uuid
from airflow_provider_dynamiq.exceptions import DynamiqConfigError
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
    """Download the artifacts of an App run into a local folder or Airflow object storage.

    Each file is streamed from its signed URL, which gets no Dynamiq credential, into a
    temporary file that becomes the final file only when it is complete and has the listed
    size. File names come from the server, so they are made safe. Only the last path component
    is kept, control characters are removed, and a duplicate name gets the artifact id appended.
    No file is written outside ``destination``, and none overwrites another of the same run.

    An expired signed URL is refreshed by listing the run again, once per artifact. Running the
    task again is safe: files already present with the listed size are skipped, not downloaded
    again (``overwrite=True`` replaces them, atomically).

    Returns a list of ``{"id", "name", "size", "mime_type", "path"}`` where ``name`` is the
    artifact's name on the server and ``path`` the absolute local path or the object storage URL.
    When the task has ``outlets``, each outlet's asset event gets ``{"run_id", "paths"}`` as extra,
    so downstream DAGs scheduled on the asset know which files arrived.

    :param run_id: UUID of the run (templated).
    :param destination: local folder, ``ObjectStoragePath`` or object storage URL such as
        ``s3://bucket/prefix`` (templated); created when missing.
    :param app_id: UUID of the App (templated); defaults as for
        :class:`DynamiqListRunArtifactsOperator`.
    :param name_pattern: only artifacts whose name matches this shell-style pattern, e.g.
        ``*.pdf`` (templated).
    :param mime_types: only artifacts of these MIME types; ``image/*`` matches a family (templated).
    :param max_concurrency: downloads at once, from 1 to 32 (default 4).
    :param overwrite: download files again even when present with the right size.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqDownloadRunArtifactsOperator" section of the README.
    """

    template_fields: Sequence[str] = (*_RunArtifactsOperator.template_fields, "destination", "name_pattern", "mime_types")

    def __init__(
        self,
        *,
        run_id: str,
        destination: Any,
        app_id: str | None = None,
        name_pattern: str | None = None,
        mime_types: list[str] | None = None,
        max_concurrency: int = 4,
        overwrite: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(run_id=run_id, app_id=app_id, **kwargs)
        self.destination = destination
        self.name_pattern = name_pattern
        self.mime_types = mime_types
        self.max_concurrency = max_concurrency
        self.overwrite = overwrite

    def execute(self, context: Context) -> list[dict[str, Any]]:
        run_id, app_id = self._validated_ids()
        if self.mime_types is not None and (
            isinstance(self.mime_types, str) or not all(isinstance(item, str) for item in self.mime_types)
        ):
            raise DynamiqConfigError(f"mime_types must be a list of strings, got {self.mime_types!r}.")
        with self.hook:
            results = self.hook.download_run_artifacts(
                run_id,
                self.destination,
                app_id=app_id,
                name_pattern=self.name_pattern or None,
                mime_types=self.mime_types,
                max_concurrency=self.max_concurrency,
                overwrite=self.overwrite,
            )
        self.log.info("%d artifact(s) of run %s are in %s.", len(results), run_id, self.destination)
        self._describe_asset_events(context, run_id, [item["path"] for item in results])
        return results

    def _describe_asset_events(self, context: Context, run_id: str, paths: list[str]) -> None:
        outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
        if not self.outlets or outlet_events is None:
            return
        for outlet in self.outlets:
            outlet_events[outlet].extra.update({"run_id": run_id, "paths": paths})
