"""Turn an Airflow connection into validated settings for the Dynamiq hook.

Rules:

* ``host`` is the deployed App's hostname, with or without a scheme. ``https://`` is assumed
  when it is missing, a path prefix (a reverse proxy) is kept, a trailing slash is ignored.
  A doubled scheme, white space, user info or a scheme other than http/https is an error.
* ``password`` is the Access Key. The management API takes the ``management_token`` extra
  when set, otherwise the Access Key.
* Extras may arrive as strings (URI-form connections): ``"45"`` and ``"false"`` are parsed to
  their types, and a value that cannot be parsed raises an error naming the field.
* Extras set in the Airflow UI may be stored as ``extra__dynamiq__<field>``; both spellings
  are read, and an empty string counts as unset.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_dynamiq._validation import require_uuid
from airflow_provider_dynamiq.exceptions import DynamiqConfigError

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_MANAGEMENT_URL = "https://api.getdynamiq.ai"
DEFAULT_TIMEOUT = 30.0  # seconds, for connect and read
DEFAULT_MAX_RETRIES = 5
# A retry budget beyond this is a typo, not a policy: with the backoff cap it would keep a task
# retrying for hours.
MAX_MAX_RETRIES = 20

_TRUE_STRINGS = frozenset({"true", "1", "yes", "on"})
_FALSE_STRINGS = frozenset({"false", "0", "no", "off"})
_SCHEME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class ConnectionSettings:
    """Validated settings of one Dynamiq connection. Secrets are excluded from ``repr()``."""

    conn_id: str
    app_url: str
    management_url: str
    access_key: str | None = field(repr=False)
    management_token: str | None = field(repr=False)
    app_id: str | None
    timeout: float
    max_retries: int
    verify_ssl: bool

    @property
    def app_host(self) -> str:
        """Host (and port, when not the default) of the App, for messages."""
        return _display_host(self.app_url)

    @property
    def management_host(self) -> str:
        """Host (and port, when not the default) of the management API, for messages."""
        return _display_host(self.management_url)

    @property
    def management_credential(self) -> str | None:
        """Bearer credential for the management API: the management token, else the Access Key."""
        return self.management_token or self.access_key

    def resolve_app_id(self, app_id: str | None = None) -> str:
        """Return the App id to use: the argument, the ``app_id`` extra, or the hostname's first label.

        :raises DynamiqConfigError: when none of the three gives a UUID.
        """
        if app_id is not None:
            return require_uuid(app_id, "app_id")
        if self.app_id is not None:
            return self.app_id
        first_label = (httpx.URL(self.app_url).host or "").split(".", 1)[0]
        try:
            return str(uuid.UUID(first_label))
        except ValueError:
            raise DynamiqConfigError(
                f"Cannot tell the App id: it was not passed, connection {self.conn_id!r} has no "
                f"'app_id' extra, and the App hostname {self.app_host!r} does not start with a UUID. "
                "Pass app_id to the operator or set the 'app_id' extra of the connection."
            ) from None


def settings_from_connection(
    conn: Connection,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> ConnectionSettings:
    """Validate ``conn`` and return its settings; ``timeout`` and ``max_retries`` override the extras.

    :raises DynamiqConfigError: naming the field and the fix, before any request is sent.
    """
    conn_id = conn.conn_id
    extras = _read_extras(conn)

    if not conn.host:
        raise DynamiqConfigError(
            f"Connection {conn_id!r} has no host. Set it to the App hostname, e.g. "
            "'4f6e1c2a-7b8d-4e9f-a1b2-c3d4e5f60718.apps.us-east-1.getdynamiq.ai'."
        )
    app_url = normalize_base_url(conn.host, field_name="host", conn_id=conn_id, port=conn.port)
    management_url = normalize_base_url(
        extras.get("management_url") or DEFAULT_MANAGEMENT_URL,
        field_name="management_url",
        conn_id=conn_id,
    )

    app_id = extras.get("app_id")
    if app_id is not None:
        try:
            app_id = require_uuid(app_id, "app_id")
        except DynamiqConfigError as error:
            raise DynamiqConfigError(f"Connection {conn_id!r} extra 'app_id': {error}") from None

    if timeout is None:
        timeout = _parse_timeout(
            extras.get("timeout", DEFAULT_TIMEOUT), f"Connection {conn_id!r} extra 'timeout'"
        )
    else:
        timeout = _parse_timeout(timeout, "The hook argument timeout")
    if max_retries is None:
        max_retries = _parse_max_retries(
            extras.get("max_retries", DEFAULT_MAX_RETRIES), f"Connection {conn_id!r} extra 'max_retries'"
        )
    else:
        max_retries = _parse_max_retries(max_retries, "The hook argument max_retries")

    return ConnectionSettings(
        conn_id=conn_id,
        app_url=app_url,
        management_url=management_url,
        access_key=conn.password or None,
        management_token=extras.get("management_token") or None,
        app_id=app_id,
        timeout=timeout,
        max_retries=max_retries,
        verify_ssl=_parse_bool(extras.get("verify_ssl", True), "verify_ssl", conn_id),
    )


def normalize_base_url(value: Any, *, field_name: str, conn_id: str, port: int | None = None) -> str:
    """Return ``value`` as an absolute http(s) base URL without a trailing slash.

    :raises DynamiqConfigError: for white space, a doubled or unsupported scheme, user info, a
        query string or fragment, or no host.
    """
    where = f"Connection {conn_id!r} field {field_name!r}"
    if not isinstance(value, str):
        raise DynamiqConfigError(f"{where} must be a string, got {type(value).__name__}.")
    shown = _hide_user_info(value)
    text = value.strip()
    if not text or any(character.isspace() for character in text):
        raise DynamiqConfigError(
            f"{where} is blank or contains white space ({shown!r}). Set a hostname such as "
            "'example.apps.us-east-1.getdynamiq.ai'."
        )
    match = _SCHEME_PATTERN.match(text)
    if match:
        scheme = match.group(0)[:-3].lower()
        if scheme not in ("http", "https"):
            raise DynamiqConfigError(
                f"{where} has the unsupported scheme {scheme!r} ({shown!r}). Use https:// or no scheme."
            )
        rest = text[match.end() :]
    else:
        scheme = "https"
        rest = text
    if "://" in rest or re.match(r"^https?:?/+", rest, re.IGNORECASE):
        raise DynamiqConfigError(
            f"{where} has a doubled scheme ({shown!r}). Keep one 'https://' or none."
        )
    try:
        url = httpx.URL(f"{scheme}://{rest}")
    except httpx.InvalidURL as error:
        raise DynamiqConfigError(f"{where} is not a valid URL ({shown!r}): {error}.") from None
    if not url.host:
        raise DynamiqConfigError(f"{where} has no host name ({shown!r}).")
    if url.userinfo:
        raise DynamiqConfigError(
            f"{where} contains user info before the host. Put the Access Key in the password field instead."
        )
    if url.query or url.fragment:
        raise DynamiqConfigError(
            f"{where} must not contain a query string or fragment ({shown!r})."
        )
    if port and url.port is None:
        url = url.copy_with(port=port)
    return str(url).rstrip("/")


def _read_extras(conn: Connection) -> dict[str, Any]:
    raw = conn.extra_dejson or {}
    extras: dict[str, Any] = {}
    for name in ("management_url", "management_token", "app_id", "timeout", "max_retries", "verify_ssl"):
        value = raw.get(name)
        if value is None or value == "":
            value = raw.get(f"extra__dynamiq__{name}")
        if value is not None and value != "":
            extras[name] = value
    return extras


def _parse_timeout(value: Any, where: str) -> float:
    if isinstance(value, bool):
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise DynamiqConfigError(
            f"{where} is invalid ({value!r}). Set a positive number of seconds, e.g. 30."
        )
    return number


def _parse_max_retries(value: Any, where: str) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or not 0 <= number <= MAX_MAX_RETRIES:
        raise DynamiqConfigError(
            f"{where} is invalid ({value!r}). Set a whole number from 0 to {MAX_MAX_RETRIES}."
        )
    return number


def _parse_bool(value: Any, name: str, conn_id: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    raise DynamiqConfigError(
        f"Connection {conn_id!r} extra {name!r} is invalid ({value!r}). Set true or false."
    )


def _hide_user_info(value: str) -> str:
    # A host typed as "user:secret@host" must not reach an error message.
    return re.sub(r"^([^/]*//)?[^/@]*@", lambda match: f"{match.group(1) or ''}***@", value)


def _display_host(url: str) -> str:
    parsed = httpx.URL(url)
    host = parsed.host
    if parsed.port is not None:
        host = f"{host}:{parsed.port}"
    return host
