"""Operator that starts an App run and waits for it, and the extra link to the run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator, BaseOperatorLink, conf
from airflow.sdk.exceptions import AirflowSensorTimeout
from airflow.sdk.execution_time.xcom import XCom

from airflow_provider_dynamiq._deferral import event_payload
from airflow_provider_dynamiq._validation import require_id, require_uuid
from airflow_provider_dynamiq.exceptions import (
    TRANSIENT_ERRORS,
    DynamiqConfigError,
    DynamiqNotFoundError,
    DynamiqRunError,
)
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook
from airflow_provider_dynamiq.triggers.dynamiq import DynamiqRunTrigger

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import Context

    from airflow_provider_dynamiq.models import Run

#: XCom key of the run's URL, read by :class:`DynamiqRunLink`.
RUN_URL_XCOM_KEY = "run_url"
#: Task state store key of the run a try started, so that a retry can resume it.
RUN_ID_STATE_KEY = "dynamiq_run_id"
AwaitingInput = Literal["wait", "fail"]


class DynamiqRunLink(BaseOperatorLink):
    """Extra link from a task to the Dynamiq run it started or waited for."""

    name = "Dynamiq run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = XCom.get_value(ti_key=ti_key, key=RUN_URL_XCOM_KEY)
        return url if isinstance(url, str) else ""


class DynamiqCreateRunOperator(BaseOperator):
    """Start a background run of the App and, by default, wait until it finishes.

    The run is created with ``POST /v1/runs`` (``background: true``). That request is never
    repeated once it may have reached the server, so a retry of the HTTP call can never start
    a second run. The task pushes ``run_id``, ``app_id`` and ``run_url`` to XCom as soon as the
    run exists, so that the run can be found even if the task fails while waiting.

    A retry or a clear of the task resumes the run an earlier try started, unless that run failed
    or was canceled (``resume_previous_run=False`` always starts a new one). The run id is kept
    in Airflow's task state store, which survives retries.

    ``completed`` finishes the task and returns ``{"run_id", "app_id", "status", "output"}``.
    ``failed`` and ``canceled`` fail it with the run id. ``awaiting_input`` (a person must
    respond in Dynamiq) keeps waiting, or fails the task with ``on_awaiting_input="fail"``.
    Killing the task cancels the run, also while it is deferred.

    :param input: the workflow's input fields, a JSON object (templated).
    :param user_id: end user the run acts for (templated); their connected accounts are used.
    :param session_id: UUID of a conversation session to continue (templated).
    :param wait_for_completion: wait for the run to finish; when ``False``, return right after
        creating it with status ``created``.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: seconds between status checks.
    :param wait_timeout: seconds to wait for the run before failing; ``None`` waits as long as the
        task's ``execution_timeout`` allows.
    :param on_awaiting_input: ``"wait"`` (default) or ``"fail"`` when the run waits for input.
    :param resume_previous_run: on a retry, wait for the run an earlier try started instead of
        starting another.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqCreateRunOperator" section of the README.
    """

    template_fields: Sequence[str] = ("input", "user_id", "session_id", "dynamiq_conn_id")
    template_fields_renderers = {"input": "json"}
    operator_extra_links = (DynamiqRunLink(),)
    ui_color = "#f0e8ff"

    def __init__(
        self,
        *,
        input: dict[str, Any],
        user_id: str | None = None,
        session_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        wait_timeout: float | None = None,
        on_awaiting_input: AwaitingInput = "wait",
        resume_previous_run: bool = True,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_awaiting_input not in ("wait", "fail"):
            raise DynamiqConfigError(f"on_awaiting_input must be 'wait' or 'fail', got {on_awaiting_input!r}.")
        if not _positive_seconds(poll_interval):
            raise DynamiqConfigError(f"poll_interval must be a positive, finite number of seconds, got {poll_interval!r}.")
        if wait_timeout is not None and not _positive_seconds(wait_timeout):
            raise DynamiqConfigError(
                f"wait_timeout must be a positive, finite number of seconds or None, got {wait_timeout!r}."
            )
        self.input = input
        self.user_id = user_id
        self.session_id = session_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.on_awaiting_input = on_awaiting_input
        self.resume_previous_run = resume_previous_run
        self.dynamiq_conn_id = dynamiq_conn_id
        self.run_id: str | None = None

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook this task talks to Dynamiq through."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        if self.user_id is not None:
            require_id(self.user_id, "user_id")
        if self.session_id is not None:
            require_uuid(self.session_id, "session_id")
        store = context.get("task_state_store") if hasattr(context, "get") else None
        with self.hook:
            run = self._previous_run(store)
            if run is None:
                run = self.hook.create_run(self.input, user_id=self.user_id, session_id=self.session_id)
                if store is not None:
                    store.set(RUN_ID_STATE_KEY, run.id)
            self.run_id = run.id
            app_id = run.app_id or self._connection_app_id()
            ti = context["ti"]
            ti.xcom_push(key="run_id", value=run.id)
            ti.xcom_push(key="app_id", value=app_id)
            ti.xcom_push(key=RUN_URL_XCOM_KEY, value=self.hook.run_url(run.id))
            self.log.info("Created run %s of App %s (status %r).", run.id, app_id, run.status)
            if not self.wait_for_completion:
                return {**run.summary(), "app_id": app_id}
            if self.deferrable:
                self._defer_or_finish(run, app_id)
            return self._poll(run, app_id)

    def execute_complete(self, context: Context, event: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Finish the task with the trigger's event: only a success event succeeds."""
        run_id = event.get("run_id") if isinstance(event, dict) else None
        self.run_id = run_id or self.run_id
        try:
            event_payload(event, f"run {self.run_id}")
        except AirflowSensorTimeout as timeout:
            raise DynamiqRunError(f"{timeout} The run keeps going in Dynamiq; cancel it there if needed.") from None
        with self.hook:
            run = self.hook.get_run(event["run_id"])
        return self._finish(run, run.app_id or self._connection_app_id())

    def on_kill(self) -> None:
        """Cancel the run this task started; canceling a finished run is harmless."""
        if not self.run_id:
            return
        try:
            self.hook.cancel_run(self.run_id)
            self.log.info("Canceled run %s because the task was killed.", self.run_id)
        finally:
            self.hook.close()

    def _previous_run(self, store: Any) -> Run | None:
        """Return the run an earlier try of this task started, when it can still be waited for."""
        if store is None or not self.resume_previous_run:
            return None
        run_id = store.get(RUN_ID_STATE_KEY)
        if not isinstance(run_id, str):
            return None
        try:
            run = self.hook.get_run(run_id)
        except DynamiqNotFoundError:
            return None
        if run.status in ("failed", "canceled"):
            self.log.info("Run %s of an earlier try ended %r; starting a new run.", run_id, run.status)
            return None
        self.log.info("Resuming run %s, started by an earlier try of this task (status %r).", run_id, run.status)
        return run

    def _defer_or_finish(self, run: Run, app_id: str) -> None:
        outcome = run.evaluate(fail_on_awaiting_input=self.on_awaiting_input == "fail")
        if outcome.done:
            return
        self.defer(
            trigger=DynamiqRunTrigger(
                run_id=run.id,
                dynamiq_conn_id=self.dynamiq_conn_id,
                poll_interval=self.poll_interval,
                timeout_at=None if self.wait_timeout is None else time.time() + self.wait_timeout,
                fail_on_awaiting_input=self.on_awaiting_input == "fail",
            ),
            method_name="execute_complete",
            timeout=None if self.wait_timeout is None else timedelta(seconds=self.wait_timeout),
        )

    def _poll(self, run: Run, app_id: str) -> dict[str, Any]:
        started = time.monotonic()
        deadline = None if self.wait_timeout is None else started + self.wait_timeout
        fail_on_input = self.on_awaiting_input == "fail"
        while not run.evaluate(fail_on_awaiting_input=fail_on_input).done:
            if deadline is not None and time.monotonic() >= deadline:
                raise DynamiqRunError(
                    f"Timed out after {time.monotonic() - started:.0f} s waiting for run {run.id} "
                    f"(last status {run.status!r}). The run keeps going in Dynamiq; cancel it there if needed."
                )
            wait = self.poll_interval if deadline is None else min(self.poll_interval, deadline - time.monotonic())
            self.log.info("Run %s is %r; checking again in %.0f s.", run.id, run.status, wait)
            time.sleep(max(wait, 0))
            try:
                run = self.hook.get_run(run.id)
            except TRANSIENT_ERRORS as error:
                # The run exists and keeps going: failing here would make a task retry start a second one.
                self.log.warning("Checking run %s failed; checking again in %g s. %s", run.id, self.poll_interval, error)
        return self._finish(run, app_id)

    def _finish(self, run: Run, app_id: str) -> dict[str, Any]:
        outcome = run.evaluate(fail_on_awaiting_input=self.on_awaiting_input == "fail")
        if not outcome.succeeded:
            raise DynamiqRunError(outcome.message)
        self.log.info("%s", outcome.message)
        return {**run.summary(), "app_id": app_id}

    def _connection_app_id(self) -> str | None:
        try:
            return self.hook.settings.resolve_app_id()
        except DynamiqConfigError:
            return None


def _positive_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
