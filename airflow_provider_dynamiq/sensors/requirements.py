"""Sensor that waits until an end user has met every requirement of a Dynamiq App."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_dynamiq._validation import require_id
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class DynamiqRequirementsSensor(BaseSensorOperator):
    """Wait until end user ``user_id`` has connected every account the App requires.

    The user is ready when the API lists no unsatisfied requirement and the status is not
    ``incomplete``. Each check is one ``GET /v1/requirements/status`` on the App host. Use
    ``mode="reschedule"`` for waits of hours or days, so the sensor frees its worker slot
    between checks.

    Returns ``{"user_id": ..., "ready": True, "status": ...}`` to XCom when the user is ready.

    :param user_id: the end user's id in the App (templated).
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqRequirementsSensor" section of the README.
    """

    template_fields: Sequence[str] = ("user_id", "dynamiq_conn_id")
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        user_id: str,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.user_id = user_id
        self.dynamiq_conn_id = dynamiq_conn_id

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook, kept across pokes so that its connections are reused."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def execute(self, context: Context) -> Any:
        require_id(self.user_id, "user_id")
        try:
            return super().execute(context)
        finally:
            self.hook.close()

    def poke(self, context: Context) -> PokeReturnValue:
        status = self.hook.get_requirements_status(self.user_id)
        ready = status.is_complete
        if ready:
            self.log.info("User %s has met every requirement (status %r).", self.user_id, status.status)
            return PokeReturnValue(
                is_done=True,
                xcom_value={"user_id": self.user_id, "ready": True, "status": status.status},
            )
        self.log.info(
            "User %s is not ready: status %r, %d unsatisfied requirement(s): %s.",
            self.user_id,
            status.status,
            len(status.unsatisfied),
            ", ".join(status.unsatisfied_names()) or "none listed",
        )
        return PokeReturnValue(is_done=False)
