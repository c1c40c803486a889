"""Hook for Dynamiq deployed Apps and the Dynamiq management API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import httpx

from airflow.sdk import BaseHook

from airflow_provider_dynamiq import __version__
from airflow_provider_dynamiq._connection import ConnectionSettings, settings_from_connection
from airflow_provider_dynamiq._download import stream_to_file
from airflow_provider_dynamiq._logging import install_query_string_redaction
from airflow_provider_dynamiq._responses import CallContext, api_error, parse_json, validate_model
from airflow_provider_dynamiq._retry import RETRYABLE_STATUS_CODES, RetryDecision, RetryPolicy
from airflow_provider_dynamiq._tokens import token_expiry
from airflow_provider_dynamiq._validation import require_id, require_uuid
from airflow_provider_dynamiq.exceptions import (
    DynamiqConfigError,
    DynamiqDownloadError,
    DynamiqError,
    DynamiqTransportError,
)
from airflow_provider_dynamiq.models import App, Artifact, ArtifactPage, ConnectToken, RequirementsStatus

install_query_string_redaction()

Target = Literal["app", "management", "storage"]

#: Maximum page size the provider requests when listing artifacts.
MAX_PAGE_SIZE = 100
#: Pages read at most from one listing, against a server whose pagination never ends.
MAX_PAGES = 10_000
#: User id whose requirement status ``test_connection`` requests. Any valid id works.
TEST_CONNECTION_USER_ID = "airflow-connection-test"


class DynamiqHook(BaseHook):
    """Talk to a Dynamiq deployed App and to the Dynamiq management API over HTTP.

    The connection's host is the App hostname and its password the App's Access Key. The
    extras ``management_url``, ``management_token``, ``app_id``, ``timeout``, ``max_retries``
    and ``verify_ssl`` are optional. Methods return pydantic models and raise
    :class:`~airflow_provider_dynamiq.exceptions.DynamiqError` subclasses.

    The hook keeps one ``httpx.Client`` (keep-alive) until :meth:`close`; use it as a context
    manager, or call :meth:`close`, when done.

    :param dynamiq_conn_id: Airflow connection id, ``dynamiq_default`` by default.
    :param timeout: connect and read timeout in seconds; overrides the ``timeout`` extra (30 s
        when neither is set).
    :param max_retries: retries of transient failures; overrides the ``max_retries`` extra
        (5 when neither is set).
    :param retry_policy: the whole retry policy, for callers that need other waits; its
        ``max_retries`` wins over the two above.

    .. seealso:: The "Connection" and "Retries, timeouts and errors" sections of the README.
    """

    conn_name_attr = "dynamiq_conn_id"
    default_conn_name = "dynamiq_default"
    conn_type = "dynamiq"
    hook_name = "Dynamiq"

    def __init__(
        self,
        dynamiq_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.dynamiq_conn_id = dynamiq_conn_id
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_policy = retry_policy
        self._client: httpx.Client | None = None
        # Replaced in tests that must not wait.
        self._sleep = time.sleep

    # -- connection and client ------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The validated connection settings, read once per hook."""
        connection = self.get_connection(self.dynamiq_conn_id)
        return settings_from_connection(connection, timeout=self._timeout, max_retries=self._max_retries)

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy shared by every request of this hook."""
        if self._retry_policy is not None:
            return self._retry_policy
        return RetryPolicy(max_retries=self.settings.max_retries)

    @property
    def client(self) -> httpx.Client:
        """The hook's HTTP client, created on first use.

        It carries no credential: each request adds the one its host takes, so a signed
        download URL never receives one.
        """
        if self._client is None or self._client.is_closed:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.settings.timeout),
                verify=self.settings.verify_ssl,
                headers={"User-Agent": user_agent()},
                follow_redirects=False,
            )
        return self._client

    def close(self) -> None:
        """Close the HTTP client and its pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> DynamiqHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- API methods --------------------------------------------------------------------

    def get_requirements_status(self, user_id: str) -> RequirementsStatus:
        """Return the requirement status of end user ``user_id`` on the connection's App.

        Logs a warning when the response is ambiguous; see :meth:`RequirementsStatus.readiness`.
        """
        user_id = require_id(user_id, "user_id")
        context = self._context(f"get the requirement status of user {user_id!r}", "app")
        response = self._request("GET", "app", "/v1/requirements/status", context, params={"user_id": user_id})
        body = parse_json(response, context)
        if isinstance(body, dict):
            if body.get("unsatisfied") is None:
                body = {**body, "unsatisfied": []}
            body = {**body, "user_id": user_id}
        status = validate_model(RequirementsStatus, body, context, status_code=response.status_code)
        warning = status.readiness().warning
        if warning:
            self.log.warning(warning)
        return status

    def create_connect_token(self, user_id: str) -> ConnectToken:
        """Mint a connect token and hosted connect link for end user ``user_id``.

        The token and link are credentials for 24 hours: log neither. The request may be
        retried, because an extra token is harmless; it simply expires.
        """
        user_id = require_id(user_id, "user_id")
        context = self._context(f"create a connect token for user {user_id!r}", "app")
        response = self._request("POST", "app", "/v1/connect/tokens", context, json={"user_id": user_id})
        body = parse_json(response, context)
        if isinstance(body, dict):
            body = {**body, "user_id": user_id}
            if body.get("expires_at") is None and isinstance(body.get("token"), str):
                body["expires_at"] = token_expiry(body["token"], user_id=user_id)
        return validate_model(ConnectToken, body, context, status_code=response.status_code)

    def get_app(self, app_id: str | None = None) -> App:
        """Return the App ``app_id`` (default: the connection's App) from the management API."""
        app_id = self.settings.resolve_app_id(app_id)
        context = self._context(
            f"get App {app_id}", "management", not_found=f"Check app_id {app_id} and the management_url."
        )
        response = self._request("GET", "management", f"/v1/apps/{app_id}", context)
        body = parse_json(response, context)
        data = body.get("data") if isinstance(body, dict) else None
        return validate_model(App, data, context, status_code=response.status_code)

    def iter_run_artifacts(
        self, run_id: str, app_id: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[Artifact]:
        """Yield every artifact of run ``run_id``, reading one page at a time.

        :param run_id: UUID of the run.
        :param app_id: UUID of the App; defaults to the connection's App.
        :param page_size: artifacts per page, from 1 to 100.
        """
        run_id = require_uuid(run_id, "run_id")
        app_id = self.settings.resolve_app_id(app_id)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise DynamiqConfigError(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {page_size!r}.")
        context = self._context(
            f"list the artifacts of run {run_id} of App {app_id}",
            "management",
            not_found=(
                f"Check run_id {run_id} and app_id {app_id}: the run must belong to that App, and the "
                "credential's project must contain the App."
            ),
        )
        path = f"/v1/apps/{app_id}/runs/{run_id}/artifacts"
        for page in range(1, MAX_PAGES + 1):
            response = self._request("GET", "management", path, context, params={"page": page, "page_size": page_size})
            body = parse_json(response, context)
            listing = validate_model(ArtifactPage, body, context, status_code=response.status_code)
            yield from listing.data
            if not listing.data or listing.pagination is None or page >= listing.pagination.page_count:
                return
        raise DynamiqError(
            f"Failed to {context.description}: the listing did not end after {MAX_PAGES} pages."
        )

    def list_run_artifacts(self, run_id: str, app_id: str | None = None) -> list[Artifact]:
        """Return every artifact of run ``run_id``; see :meth:`iter_run_artifacts`."""
        return list(self.iter_run_artifacts(run_id, app_id=app_id))

    def download_artifact(self, artifact: Artifact, path: str | Path) -> Path:
        """Download ``artifact`` to the file ``path`` and return the path.

        The signed URL is fetched with no credential. The body is streamed to a temporary file
        beside ``path`` and moved into place only when its size equals ``artifact.size``, so a
        failed download leaves no file behind.
        """
        target = Path(path)
        url = artifact.download_url.get_secret_value()
        description = f"download artifact {artifact.id} ({artifact.name!r})"
        storage_host = _display_origin(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.client.stream("GET", url, follow_redirects=True) as response:
                    if response.status_code >= 400:
                        decision = self._after_failure(
                            attempt, "GET", storage_host, "/<signed URL>", idempotent=True, response=response
                        )
                        if decision.retry:
                            continue
                        # The storage body is never quoted: object stores echo the signature in it.
                        if response.status_code in (403, 410):
                            advice = "The signed URL has expired or was rejected; list the run's artifacts again."
                        else:
                            advice = f"Not retried: {decision.reason}."
                        raise DynamiqDownloadError(
                            f"Failed to {description}: storage host {storage_host} returned HTTP "
                            f"{response.status_code}. {advice}",
                            artifact_id=artifact.id,
                            status_code=response.status_code,
                        )
                    stream_to_file(
                        response, target, artifact_id=artifact.id, expected_size=artifact.size, description=description
                    )
                    return target
            except httpx.TransportError as error:
                decision = self._after_failure(attempt, "GET", storage_host, "/<signed URL>", idempotent=True, error=error)
                if not decision.retry:
                    raise DynamiqTransportError(
                        f"Failed to {description} from storage host {storage_host}: "
                        f"{type(error).__name__}; {decision.reason}."
                    ) from None

    def test_connection(self) -> tuple[bool, str]:
        """Check the App host and, when the App id is known, the management API.

        Used by the Airflow UI's "Test" button (enabled with ``[core] test_connection``).
        """
        try:
            self.get_requirements_status(TEST_CONNECTION_USER_ID)
            message = f"Connected to App host {self.settings.app_host}."
            try:
                app_id = self.settings.resolve_app_id()
            except DynamiqConfigError:
                return True, message + " The management API was not checked: no App id is configured."
            app = self.get_app(app_id)
            return True, message + f" Management API at {self.settings.management_host} knows App {app.name or app.id!r}."
        except DynamiqError as error:
            return False, str(error)
        finally:
            self.close()

    # -- HTTP plumbing ------------------------------------------------------------------

    def _context(self, description: str, target: Target, *, not_found: str = "") -> CallContext:
        settings = self.settings
        conn = f"connection {settings.conn_id!r}"
        if target == "app":
            auth_hint = f"Check the Access Key (password) of {conn}."
            forbidden_hint = (
                f"The credential is valid but not allowed on App host {settings.app_host}: use an Access Key "
                f"of the App's project (not a Personal Access Token) as the password of {conn}."
            )
            not_found_hint = not_found or f"Check the App hostname {settings.app_host!r} (host) of {conn}."
        else:
            auth_hint = (
                f"Check the 'management_token' extra of {conn}, or its Access Key (password) when that "
                "extra is empty."
            )
            forbidden_hint = f"The management credential of {conn} is not allowed to read this resource."
            not_found_hint = not_found or f"Check the 'management_url' extra of {conn}."
        return CallContext(
            description=description,
            auth_hint=auth_hint,
            forbidden_hint=forbidden_hint,
            not_found_hint=not_found_hint,
            secrets=tuple(s for s in (settings.access_key, settings.management_token) if s),
        )

    def _request(
        self,
        method: str,
        target: Target,
        path: str,
        context: CallContext,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send a request with the retry policy and return the success response, read in full.

        :raises DynamiqAPIError: for an error status, once retries are exhausted or not allowed.
        :raises DynamiqTransportError: for a network failure, once retries are exhausted.
        """
        settings = self.settings
        if target == "app":
            base_url, credential, host = settings.app_url, settings.access_key, settings.app_host
        else:
            base_url, credential, host = settings.management_url, settings.management_credential, settings.management_host
        headers = {"Accept": "application/json"}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"

        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.request(method, base_url + path, params=params, json=json, headers=headers)
            except httpx.TransportError as error:
                decision = self._after_failure(attempt, method, host, path, idempotent=idempotent, error=error)
                if decision.retry:
                    continue
                raise DynamiqTransportError(
                    f"Failed to {context.description}: {type(error).__name__} talking to {host} "
                    f"({decision.reason}). Check that the host is reachable and the timeout "
                    f"({settings.timeout:g} s) is long enough."
                ) from None
            if response.is_success:
                return response
            decision = self._after_failure(attempt, method, host, path, idempotent=idempotent, response=response)
            if not decision.retry:
                retryable_status = response.status_code in RETRYABLE_STATUS_CODES
                raise api_error(response, context, extra=f"Not retried: {decision.reason}." if retryable_status else "")

    def _after_failure(
        self,
        attempt: int,
        method: str,
        host: str,
        path: str,
        *,
        idempotent: bool,
        response: httpx.Response | None = None,
        error: Exception | None = None,
    ) -> RetryDecision:
        """Ask the retry policy about a failed attempt; when it says retry, log the retry and wait."""
        decision = self.retry_policy.decide(attempt, idempotent=idempotent, response=response, error=error)
        if decision.retry:
            outcome = f"HTTP {response.status_code}" if response is not None else type(error).__name__
            self.log.warning(
                "%s %s on %s failed with %s (attempt %d of %d); retrying in %.1f s.",
                method,
                path,
                host,
                outcome,
                attempt,
                self.retry_policy.max_retries + 1,
                decision.wait,
            )
            if response is not None:
                response.close()
            self._sleep(decision.wait)
        return decision


def user_agent() -> str:
    """Return the User-Agent header value, naming this package and its version."""
    return f"airflow-provider-dynamiq/{__version__} httpx/{httpx.__version__}"


def _display_origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
