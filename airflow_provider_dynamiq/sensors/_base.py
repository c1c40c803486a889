"""Base class of the Dynamiq sensors: the hook, and one check before the wait goes to a trigger."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf

from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger


class DynamiqSensorBase(BaseSensorOperator):
    """A sensor that pokes with :class:`DynamiqHook` and can defer to a trigger.

    In deferrable mode it pokes once, returns at once when done, and otherwise defers to the
    trigger from :meth:`make_trigger` with the sensor's ``timeout``. Subclasses implement
    ``poke``, :meth:`make_trigger` and ``execute_complete``.

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
        self.deferrable = deferrable
        self.dynamiq_conn_id = dynamiq_conn_id

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook, kept across pokes so that its connections are reused."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id)

    def make_trigger(self, timeout_at: float) -> BaseTrigger:
        """Return the trigger that waits in the triggerer until ``timeout_at`` (Unix time)."""
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            finally:
                self.hook.close()
        with self.hook:
            first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        timeout = float(self.timeout)
        self.defer(
            trigger=self.make_trigger(time.time() + timeout),
            method_name="execute_complete",
            timeout=timedelta(seconds=timeout),
        )
