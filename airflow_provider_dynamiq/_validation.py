"""Checks on ids given by DAG authors, run before any request is sent."""

from __future__ import annotations

import uuid
from typing import Any

from airflow_provider_dynamiq.exceptions import DynamiqConfigError

# Jinja renders a missing value as "None" (``{{ params.missing }}``), and a JSON null pulled from
# XCom often arrives as "null". Sending either would query a user who does not exist.
_PLACEHOLDERS = frozenset({"none", "null"})


def require_id(value: Any, name: str) -> str:
    """Return ``value`` when it is a usable id string, else raise naming the parameter.

    :param value: the id as given by the DAG author, after template rendering.
    :param name: the parameter name to put in the error message, e.g. ``"user_id"``.
    """
    if value is None:
        raise DynamiqConfigError(f"{name} is missing (got None). Pass a non-empty string.")
    if not isinstance(value, str):
        raise DynamiqConfigError(
            f"{name} must be a string, got {type(value).__name__} {value!r}. Pass the id as a string."
        )
    if not value.strip():
        raise DynamiqConfigError(f"{name} is blank ({value!r}). Pass a non-empty string.")
    if value != value.strip():
        raise DynamiqConfigError(
            f"{name} {value!r} has leading or trailing whitespace. Strip it before passing it."
        )
    if value.lower() in _PLACEHOLDERS:
        raise DynamiqConfigError(
            f"{name} is the placeholder string {value!r}, which is what a template renders for a "
            "missing value. Check the template or XCom that produces it."
        )
    return value


def require_uuid(value: Any, name: str) -> str:
    """Return ``value`` in canonical lower-case UUID form, or raise naming the parameter."""
    text = require_id(value, name)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise DynamiqConfigError(
            f"{name} {text!r} is not a UUID. Dynamiq {name.replace('_', ' ')}s look like "
            "'8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001'."
        ) from None
