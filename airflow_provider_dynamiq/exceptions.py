"""Errors raised by the Dynamiq provider.

Every failure raised to a task is a :class:`DynamiqError`, never a raw ``httpx``, ``json`` or
``pydantic`` exception. Messages name the operation and the id involved and state what to do;
they never contain an Access Key, a management token, a connect token or link, or a signed
download URL.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException


class DynamiqError(AirflowException):
    """Base class of every error raised by the Dynamiq provider."""


class DynamiqConfigError(DynamiqError, ValueError):
    """Invalid connection settings or operator arguments, raised before any request is sent."""


class DynamiqTransportError(DynamiqError):
    """The request failed on the network (connect error, timeout, reset) after every retry."""


class DynamiqResponseError(DynamiqError):
    """A success status whose body is empty, not JSON, truncated, or not the documented shape."""

    def __init__(self, message: str, *, status_code: int, body_excerpt: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class DynamiqAPIError(DynamiqError):
    """The API returned an error status.

    :param status_code: HTTP status of the response.
    :param code: ``error.code`` from the documented error envelope, or ``None`` when the body
        was not the envelope (an HTML page from a proxy, for example).
    :param message: ``error.message`` from the envelope, or a description of the status.
    :param details: ``error.details`` from the envelope: a mapping of field name to problem.
    :param body_excerpt: at most 200 characters of a body that was not the envelope.
    :param retryable: whether the retry policy treats this status as transient.
    """

    def __init__(
        self,
        summary: str,
        *,
        status_code: int,
        code: str | None = None,
        message: str = "",
        details: dict[str, Any] | None = None,
        body_excerpt: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(summary)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}
        self.body_excerpt = body_excerpt
        self.retryable = retryable


class DynamiqBadRequestError(DynamiqAPIError):
    """HTTP 400: the API rejected the request's parameters."""


class DynamiqAuthenticationError(DynamiqAPIError):
    """HTTP 401: the credential is missing, invalid or expired."""


class DynamiqPermissionError(DynamiqAPIError):
    """HTTP 403: the credential is valid but not allowed for this resource."""


class DynamiqNotFoundError(DynamiqAPIError):
    """HTTP 404: unknown App host, App, run, or a resource outside the credential's scope."""


class DynamiqRateLimitError(DynamiqAPIError):
    """HTTP 429: too many requests, after every retry or with a wait longer than the cap."""


class DynamiqServerError(DynamiqAPIError):
    """HTTP 5xx: the service or a proxy in front of it failed."""


class DynamiqDownloadError(DynamiqError):
    """An artifact could not be downloaded completely from its signed URL.

    :param artifact_id: id of the artifact.
    :param status_code: HTTP status from the storage host, or ``None`` when the body was cut short.
    """

    def __init__(self, message: str, *, artifact_id: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.artifact_id = artifact_id
        self.status_code = status_code

    @property
    def url_expired(self) -> bool:
        """Whether the storage host rejected the signed URL as expired (HTTP 403 or 410)."""
        return self.status_code in (403, 410)


class DynamiqRunError(DynamiqError):
    """An App run ended in a status other than the one the task waits for."""


#: Failures worth waiting out while waiting for a user or a run: the next check may succeed.
#: Anything else (a rejected credential, an unknown App or run, a bad request) is final.
TRANSIENT_ERRORS: tuple[type[DynamiqError], ...] = (
    DynamiqTransportError,
    DynamiqServerError,
    DynamiqRateLimitError,
    DynamiqResponseError,
)

_ERRORS_BY_STATUS: dict[int, type[DynamiqAPIError]] = {
    400: DynamiqBadRequestError,
    401: DynamiqAuthenticationError,
    403: DynamiqPermissionError,
    404: DynamiqNotFoundError,
    429: DynamiqRateLimitError,
}


def api_error_class(status_code: int) -> type[DynamiqAPIError]:
    """Return the error class for an HTTP error status."""
    if status_code >= 500:
        return DynamiqServerError
    return _ERRORS_BY_STATUS.get(status_code, DynamiqAPIError)
