"""Turn HTTP responses into models or typed errors.

Nothing here raises a raw ``json`` or ``pydantic`` exception: every failure becomes a
:class:`~airflow_provider_dynamiq.exceptions.DynamiqError` whose message names the call.
Messages never quote request URLs with their query strings, and pydantic errors are
rendered without the offending input, because inputs can be tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from airflow_provider_dynamiq._retry import RETRYABLE_STATUS_CODES
from airflow_provider_dynamiq.exceptions import DynamiqAPIError, DynamiqResponseError, api_error_class

ModelT = TypeVar("ModelT", bound=BaseModel)

MAX_EXCERPT_CHARS = 200
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class CallContext:
    """Purpose of a request, so that its errors can state what failed and what to do.

    :param description: the operation, e.g. ``"get the requirement status of user 'customer-7421'"``.
    :param auth_hint: what to check after a 401.
    :param forbidden_hint: what to check after a 403.
    :param not_found_hint: what to check after a 404.
    :param secrets: values to replace with ``***`` wherever the server's text is quoted, in case
        an error page echoes a credential.
    """

    description: str
    auth_hint: str = ""
    forbidden_hint: str = ""
    not_found_hint: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        """Return ``text`` with every known secret replaced by ``***``."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def hint_for(self, status_code: int) -> str:
        """Return the advice for an error status, or an empty string."""
        if status_code == 401:
            return self.auth_hint
        if status_code == 403:
            return self.forbidden_hint
        if status_code == 404:
            return self.not_found_hint
        if status_code == 429:
            return "The service is rate limiting this client; lower the concurrency or retry later."
        if status_code >= 500:
            return "The Dynamiq service or a proxy in front of it failed; retry later."
        return ""


def body_excerpt(response: httpx.Response) -> str:
    """Return at most 200 characters of the body with control characters and runs of spaces folded."""
    try:
        text = response.text
    except (httpx.HTTPError, UnicodeDecodeError, LookupError):
        return ""
    text = _CONTROL_CHARACTERS.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > MAX_EXCERPT_CHARS:
        return text[: MAX_EXCERPT_CHARS - 3] + "..."
    return text


def api_error(response: httpx.Response, context: CallContext, *, extra: str = "") -> DynamiqAPIError:
    """Build the typed error for an error response, reading the documented envelope when present.

    :param extra: a sentence to append, e.g. why the request was not retried.
    """
    status = response.status_code
    code: str | None = None
    message = ""
    details: dict[str, Any] = {}
    excerpt = ""

    envelope = _error_envelope(response)
    if envelope is not None:
        code = envelope.get("code") if isinstance(envelope.get("code"), str) else None
        message = envelope.get("message") if isinstance(envelope.get("message"), str) else ""
        raw_details = envelope.get("details")
        if isinstance(raw_details, dict):
            details = {str(key): value for key, value in raw_details.items()}
        elif raw_details is not None:
            details = {"details": raw_details}
    else:
        excerpt = body_excerpt(response)

    parts = [f"Failed to {context.description}: HTTP {status}"]
    if code:
        parts[0] += f" {code}"
    if message:
        parts[0] += f": {message}"
    if details:
        parts.append("Details: " + "; ".join(f"{key}: {value}" for key, value in details.items()) + ".")
    if excerpt:
        parts.append(f"The body was not the JSON error envelope: {excerpt!r}.")
    hint = context.hint_for(status)
    if hint:
        parts.append(hint)
    if extra:
        parts.append(extra)
    summary = context.scrub(parts[0].rstrip(".") + "." + "".join(f" {part}" for part in parts[1:]))

    return api_error_class(status)(
        summary,
        status_code=status,
        code=code,
        message=context.scrub(message or response.reason_phrase),
        details={key: context.scrub(str(value)) for key, value in details.items()},
        body_excerpt=context.scrub(excerpt),
        retryable=status in RETRYABLE_STATUS_CODES,
    )


def parse_json(response: httpx.Response, context: CallContext) -> Any:
    """Return the decoded JSON body of a success response.

    :raises DynamiqResponseError: for an empty, truncated or non-JSON body.
    """
    try:
        content = response.read()
    except httpx.HTTPError as error:
        raise DynamiqResponseError(
            f"Failed to {context.description}: the response body could not be read ({type(error).__name__}). "
            "The connection was probably cut; retry the task.",
            status_code=response.status_code,
        ) from None
    if not content.strip():
        raise DynamiqResponseError(
            f"Failed to {context.description}: HTTP {response.status_code} with an empty body, "
            "where a JSON object was expected.",
            status_code=response.status_code,
        )
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        excerpt = context.scrub(body_excerpt(response))
        raise DynamiqResponseError(
            f"Failed to {context.description}: HTTP {response.status_code} with a body that is not JSON "
            f"(truncated, or a page from a proxy): {excerpt!r}.",
            status_code=response.status_code,
            body_excerpt=excerpt,
        ) from None


def validate_model(
    model: type[ModelT], data: Any, context: CallContext, *, status_code: int
) -> ModelT:
    """Return ``data`` validated as ``model``.

    :raises DynamiqResponseError: naming each missing or invalid field, without its value.
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors(include_url=False, include_input=False, include_context=False)[:5]
        )
        raise DynamiqResponseError(
            f"Failed to {context.description}: the response is not the documented shape ({problems}).",
            status_code=status_code,
        ) from None


def _error_envelope(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, httpx.HTTPError):
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return None
