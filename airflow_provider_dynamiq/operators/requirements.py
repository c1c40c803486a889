"""Operator that checks the requirement status of many end users at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Requests in flight by default. With 25 ms of latency per request, 20 at once cannot check
#: more than 800 users a second. bench/bulk.py measured 2,000 users in 1.6 s at 50.
BULK_MAX_CONCURRENCY = 50


class DynamiqRequirementsStatusOperator(BaseOperator):
    """Check which of many end users have met every requirement of the App, concurrently.

    All checks share one async HTTP client with at most ``max_concurrency`` requests in flight
    and the provider's retry policy. Each id is checked once, however often it appears. A user
    whose check fails after retries is reported with an ``"error"``. The task fails only when the
    share of failed users is above ``max_failure_ratio``, and its message then names every failed id.

    Returns one ``{"user_id", "ready", "status", "unsatisfied"}`` per input id, in input order,
    where ``unsatisfied`` lists ``{"id", "name", "type", "title", "description"}``. A failed
    check also has ``"error"``.

    :param user_ids: list of end user ids (templated); a JSON list in a string, as an XCom
        template renders it, is accepted too.
    :param max_concurrency: requests in flight at once (default 50).
    :param max_failure_ratio: largest share of failed users, from 0 to 1, that still lets the task
        succeed; 0 (the default) fails the task on any failure.
    :param dynamiq_conn_id: Dynamiq connection id (templated), ``dynamiq_default`` by default.

    .. seealso:: The "DynamiqRequirementsStatusOperator" section of the README.
    """

    template_fields: Sequence[str] = ("user_ids", "dynamiq_conn_id")
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        user_ids: Any,
        max_concurrency: int = BULK_MAX_CONCURRENCY,
        max_failure_ratio: float = 0.0,
        dynamiq_conn_id: str = DynamiqHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(max_failure_ratio, bool) or not isinstance(max_failure_ratio, (int, float)) or not 0 <= max_failure_ratio <= 1:
            raise DynamiqConfigError(f"max_failure_ratio must be a number from 0 to 1, got {max_failure_ratio!r}.")
        self.user_ids = user_ids
        self.max_concurrency = max_concurrency
        self.max_failure_ratio = float(max_failure_ratio)
        self.dynamiq_conn_id = dynamiq_conn_id

    @cached_property
    def hook(self) -> DynamiqHook:
        """The hook this task talks to Dynamiq through."""
        return DynamiqHook(dynamiq_conn_id=self.dynamiq_conn_id, max_concurrency=self.max_concurrency)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        user_ids = _as_list(self.user_ids)
        results = self.hook.check_requirements(user_ids)
        failed = sorted({item["user_id"] for item in results if "error" in item})
        checked = len({item["user_id"] for item in results})
        ready = len({item["user_id"] for item in results if item["ready"]})
        self.log.info("%d of %d users are ready; %d checks failed.", ready, checked, len(failed))
        if failed and len(failed) / checked > self.max_failure_ratio:
            shown = ", ".join(failed)
            first_error = next(item["error"] for item in results if "error" in item)
            raise DynamiqError(
                f"{len(failed)} of {checked} user checks failed, more than max_failure_ratio "
                f"{self.max_failure_ratio:g} allows. Failed user ids: {shown}. First error: {first_error}"
            )
        return results


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise DynamiqConfigError(
                f"user_ids must be a list of user ids, got the string {value[:100]!r}. Pass a list, or a JSON list."
            ) from None
    if isinstance(value, (list, tuple)):
        return list(value)
    raise DynamiqConfigError(f"user_ids must be a list of user ids, got {type(value).__name__}.")
