"""Check the event a trigger sends back before a deferred task resumes.

``execute_complete`` fails closed: only the expected success event finishes the task. A timeout
event fails it (or skips it with ``soft_fail``), and an error or unknown event fails it with
the event's message.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from airflow_provider_dynamiq import exceptions
from airflow_provider_dynamiq.exceptions import DynamiqAPIError, DynamiqError


def error_fields(error: DynamiqError) -> dict[str, Any]:
    """Return the event fields that let ``execute_complete`` raise the same error class again."""
    fields: dict[str, Any] = {"error_class": type(error).__name__}
    if isinstance(error, DynamiqAPIError):
        fields["status_code"] = error.status_code
    return fields


def _error_from_event(event: dict[str, Any], message: str) -> DynamiqError:
    error_class = getattr(exceptions, str(event.get("error_class") or ""), None)
    if not (isinstance(error_class, type) and issubclass(error_class, DynamiqError)):
        return DynamiqError(message)
    if issubclass(error_class, DynamiqAPIError):
        status_code = event.get("status_code")
        return error_class(message, status_code=status_code if isinstance(status_code, int) else 0)
    try:
        return error_class(message)
    except TypeError:  # an error class whose constructor needs more than a message
        return DynamiqError(message)


def event_payload(event: Any, what: str, *, soft_fail: bool = False) -> dict[str, Any]:
    """Return ``event`` when it is a success event, else raise with its message.

    :param event: the payload the trigger yielded, as Airflow passes it to ``execute_complete``.
    :param what: what the task waited for, e.g. ``"run 8c2c..."``, for the messages.
    :param soft_fail: raise ``AirflowSkipException`` instead of ``AirflowSensorTimeout`` on timeout.
    :raises AirflowSensorTimeout: for a timeout event.
    :raises DynamiqError: for an error event (of the class named in its ``error_class``) or an
        event of unknown shape.
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
        raise _error_from_event(event, message)
    raise DynamiqError(f"The trigger waiting for {what} sent the unknown status {status!r}: {message}")
