"""Check the event a trigger sends back before a deferred task resumes.

``execute_complete`` fails closed: only the expected success event finishes the task. A timeout
event fails it (or skips it with ``soft_fail``), and an error or unknown event fails it with
the event's message.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from airflow_provider_dynamiq.exceptions import DynamiqError


def event_payload(event: Any, what: str, *, soft_fail: bool = False) -> dict[str, Any]:
    """Return ``event`` when it is a success event, else raise with its message.

    :param event: the payload the trigger yielded, as Airflow passes it to ``execute_complete``.
    :param what: what the task waited for, e.g. ``"run 8c2c..."``, for the messages.
    :param soft_fail: raise ``AirflowSkipException`` instead of ``AirflowSensorTimeout`` on timeout.
    :raises AirflowSensorTimeout: for a timeout event.
    :raises DynamiqError: for an error event or an event of unknown shape.
    """
    if not isinstance(event, dict) or not isinstance(event.get("status"), str):
        raise DynamiqError(f"The trigger waiting for {what} sent an event of unknown shape ({event!r}); failing the task.")
    status = event["status"]
    if status == "success":
        return event
    message = str(event.get("message") or f"The trigger waiting for {what} ended with status {status!r}.")
    if status == "timeout":
        if soft_fail:
            raise AirflowSkipException(message)
        raise AirflowSensorTimeout(message)
    if status == "error":
        raise DynamiqError(message)
    raise DynamiqError(f"The trigger waiting for {what} sent the unknown status {status!r}: {message}")
