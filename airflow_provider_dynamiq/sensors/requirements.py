"""Sensor that waits until an end user has met every requirement of a Dynamiq App."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_dynamiq._deferral import event_payload
from airflow_provider_dynamiq._validation import require_id
from airflow_provider_dynamiq.models import RequirementsStatus
from airflow_provider_dynamiq.sensors._base import DynamiqSensorBase
from airflow_provider_dynamiq.triggers.dynamiq import DynamiqRequirementsTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DynamiqRequirementsSensor(DynamiqSensorBase):
    """Wait until end user ``user_id`` has connected every account the App requires.

    The user is ready when the API lists no unsatisfied requirement and the status is not
    ``incomplete``. Each check is one ``GET /v1/requirements/status`` on the App host.

    For waits of hours or days, use ``deferrable=True``: the sensor checks once, and when the
    user is not ready it hands the wait to :class:`DynamiqRequirementsTrigger` in the
    triggerer and frees its worker slot. ``mode="reschedule"`` also frees the slot, at the
    cost of starting a task process for each check.

    Returns ``{"user_id": ..., "ready": True, "status": ...}`` to XCom when the user is ready.

    :param user_id: the end user's id in the App (templated).
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
        ``poke_interval`` and ``timeout`` apply in every mode; with ``soft_fail`` a timeout skips
        the task.

    .. seealso:: The "DynamiqRequirementsSensor" section of the README.
    """

    template_fields: Sequence[str] = ("user_id", "dynamiq_conn_id")
    ui_color = "#e8f0ff"

    def __init__(self, *, user_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_id = user_id

    def execute(self, context: Context) -> Any:
        require_id(self.user_id, "user_id")
        return super().execute(context)

    def make_trigger(self, timeout_at: float) -> DynamiqRequirementsTrigger:
        return DynamiqRequirementsTrigger(
            user_id=self.user_id,
            dynamiq_conn_id=self.dynamiq_conn_id,
            poll_interval=float(self.poke_interval),
            timeout_at=timeout_at,
        )

    def execute_complete(self, context: Context, event: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Finish the task with the trigger's event: only a success event succeeds."""
        payload = event_payload(event, f"the requirements of user {self.user_id}", soft_fail=self.soft_fail)
        self.log.info("User %s has met every requirement (status %r).", self.user_id, payload.get("requirements_status"))
        return _ready_value(self.user_id, payload.get("requirements_status"))

    def check(self, context: Context) -> PokeReturnValue:
        status = self.hook.get_requirements_status(self.user_id)
        if status.is_complete:
            self.log.info("User %s has met every requirement (status %r).", self.user_id, status.status)
            return PokeReturnValue(is_done=True, xcom_value=_ready_value(self.user_id, status.status))
        _log_not_ready(self.log, status)
        return PokeReturnValue(is_done=False)


def _ready_value(user_id: str, status: Any) -> dict[str, Any]:
    return {"user_id": user_id, "ready": True, "status": status}


def _log_not_ready(log: Any, status: RequirementsStatus) -> None:
    log.info(
        "User %s is not ready: status %r, %d unsatisfied requirement(s): %s.",
        status.user_id,
        status.status,
        len(status.unsatisfied),
        ", ".join(status.unsatisfied_names()) or "none listed",
    )
