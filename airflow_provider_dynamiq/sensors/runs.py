"""Sensor that waits for an existing App run to finish."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import PokeReturnValue

from airflow_provider_dynamiq._deferral import event_payload
from airflow_provider_dynamiq._validation import require_uuid
from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqRunError
from airflow_provider_dynamiq.operators.runs import RUN_URL_XCOM_KEY, DynamiqRunLink
from airflow_provider_dynamiq.sensors._base import DynamiqSensorBase
from airflow_provider_dynamiq.triggers.dynamiq import DynamiqRunTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DynamiqRunSensor(DynamiqSensorBase):
    """Wait until App run ``run_id`` finishes; succeed when it completed.

    ``failed`` and ``canceled`` fail the task with the run id; ``awaiting_input`` keeps waiting,
    or fails with ``on_awaiting_input="fail"``. Returns ``{"run_id", "app_id", "status",
    "output"}`` to XCom.

    :param run_id: UUID of the run (templated).
    :param on_awaiting_input: ``"wait"`` (default) or ``"fail"`` when the run waits for input.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqRunSensor" section of the README.
    """

    template_fields: Sequence[str] = ("run_id", "dynamiq_conn_id")
    operator_extra_links = (DynamiqRunLink(),)
    ui_color = "#f0e8ff"

    def __init__(
        self,
        *,
        run_id: str,
        on_awaiting_input: Literal["wait", "fail"] = "wait",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_awaiting_input not in ("wait", "fail"):
            raise DynamiqConfigError(f"on_awaiting_input must be 'wait' or 'fail', got {on_awaiting_input!r}.")
        self.run_id = run_id
        self.on_awaiting_input = on_awaiting_input

    def execute(self, context: Context) -> Any:
        self.run_id = require_uuid(self.run_id, "run_id")
        context["ti"].xcom_push(key=RUN_URL_XCOM_KEY, value=self.hook.run_url(self.run_id))
        return super().execute(context)

    def make_trigger(self, timeout_at: float) -> DynamiqRunTrigger:
        return DynamiqRunTrigger(
            run_id=self.run_id,
            dynamiq_conn_id=self.dynamiq_conn_id,
            poll_interval=float(self.poke_interval),
            timeout_at=timeout_at,
            fail_on_awaiting_input=self.on_awaiting_input == "fail",
            cancel_on_kill=False,
        )

    def check(self, context: Context) -> PokeReturnValue:
        run = self.hook.get_run(self.run_id)
        outcome = run.evaluate(fail_on_awaiting_input=self.on_awaiting_input == "fail")
        if not outcome.done:
            self.log.info("%s", outcome.message)
            return PokeReturnValue(is_done=False)
        if not outcome.succeeded:
            raise DynamiqRunError(outcome.message)
        self.log.info("%s", outcome.message)
        return PokeReturnValue(is_done=True, xcom_value=run.summary())

    def execute_complete(self, context: Context, event: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Finish the task with the trigger's event: only a success event succeeds."""
        event_payload(event, f"run {self.run_id}", soft_fail=self.soft_fail)
        with self.hook:
            run = self.hook.get_run(self.run_id)
        return run.summary()
