"""Base class of the Dynamiq sensors: the hook, and one check before the wait goes to a trigger."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_dynamiq.exceptions import TRANSIENT_ERRORS, DynamiqConfigError, DynamiqError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger


class DynamiqSensorBase(BaseSensorOperator):
    """A sensor that pokes with :class:`DynamiqHook` and can defer to a trigger.

    In deferrable mode it pokes once, returns at once when done, and otherwise defers to the
    trigger from :meth:`make_trigger` with the sensor's ``timeout``. Subclasses implement
    :meth:`check`, :meth:`make_trigger` and ``execute_complete``. Transient failures (network
    errors, 5xx, 429) count as "not yet" in every mode, as they do in the triggers.

    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.
    """

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not float(self.poke_interval) > 0 or float(self.poke_interval) == float("inf"):
            raise DynamiqConfigError(f"poke_interval must be a positive, finite number of seconds, got {self.poke_interval!r}.")
        self.deferrable = deferrable
        self.dynamiq_conn_id = dynamiq_conn_id

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook, kept across pokes so that its connections are reused."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def poke(self, context: Context) -> Any:
        """Check once with :meth:`check`; a transient failure counts as "not yet", like in the trigger."""
        try:
            return self.check(context)
        except TRANSIENT_ERRORS as error:
            self.log.warning("The check failed and will be repeated at the next poke. %s", error)
            return False

    def check(self, context: Context) -> Any:
        """Check once; return a ``PokeReturnValue`` or raise."""
        raise NotImplementedError

    def make_trigger(self, timeout_at: float) -> BaseTrigger:
        """Return the trigger that waits in the triggerer until ``timeout_at`` (Unix time)."""
        raise NotImplementedError

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after deferral, skipping with ``soft_fail`` only on timeout, as in poke mode.

        Airflow's sensor turns every ``AirflowException`` raised after a deferral into a skip when
        ``soft_fail`` is set, so a failed run or a rejected Access Key would pass silently.
        """
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skip:
            if isinstance(skip.__cause__, DynamiqError):
                raise skip.__cause__ from None
            raise

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            finally:
                self.hook.close()
        with self.hook:
            first = self.poke(context)
        if first:
            return first.xcom_value
        timeout = float(self.timeout)
        self.defer(
            trigger=self.make_trigger(time.time() + timeout),
            method_name="execute_complete",
            timeout=timedelta(seconds=timeout),
        )
