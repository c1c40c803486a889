"""Hook for Dynamiq deployed Apps and the Dynamiq management API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import httpx

from airflow.sdk import BaseHook

from airflow_provider_dynamiq import __version__
from airflow_provider_dynamiq._calls import (
    MAX_PAGE_SIZE,
    Call,
    app_call,
    artifacts_page_call,
    cancel_run_call,
    connect_token_call,
    create_run_call,
    get_run_call,
    requirements_status_call,
    validate_page_size,
)
from airflow_provider_dynamiq._connection import ConnectionSettings, settings_from_connection
from airflow_provider_dynamiq._download import (
    Folder,
    plan_file_names,
    prepare_folder,
    safe_file_name,
    select_artifacts,
    write_complete,
)
from airflow_provider_dynamiq._logging import install_query_string_redaction
from airflow_provider_dynamiq._responses import api_error
from airflow_provider_dynamiq._retry import RETRYABLE_STATUS_CODES, RetryDecision, RetryPolicy, is_tls_error
from airflow_provider_dynamiq._validation import require_id, require_uuid
from airflow_provider_dynamiq.exceptions import (
    DynamiqAPIError,
    DynamiqConfigError,
    DynamiqDownloadError,
    DynamiqError,
    DynamiqTransportError,
)
from airflow_provider_dynamiq.models import App, Artifact, ConnectToken, RequirementsStatus, Run

install_query_string_redaction()

ResultT = TypeVar("ResultT")
#: Default maximum of async requests in flight at once through one hook.
DEFAULT_MAX_CONCURRENCY = 20
#: Connections of one async client's pool; see DynamiqHook._apools for the measurement.
MAX_POOL_CONNECTIONS = 10
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
    :param max_concurrency: async requests in flight at once through this hook (default 20);
        the rest wait their turn. They are spread over async clients of at most 10 connections.

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
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    ) -> None:
        super().__init__()
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise DynamiqConfigError(f"max_concurrency must be a whole number of at least 1, got {max_concurrency!r}.")
        self.max_concurrency = max_concurrency
        self.dynamiq_conn_id = dynamiq_conn_id
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_policy = retry_policy
        self._settings: ConnectionSettings | None = None
        self._client: httpx.Client | None = None
        self._async_pools: list[tuple[httpx.AsyncClient, asyncio.Semaphore]] = []
        self._next_pool = 0
        self._lock: asyncio.Lock | None = None
        # Replaced in tests that must not wait.
        self._sleep = time.sleep

    # -- connection and clients ---------------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The validated connection settings, read once per hook."""
        if self._settings is None:
            connection = self.get_connection(self.dynamiq_conn_id)
            self._settings = settings_from_connection(connection, timeout=self._timeout, max_retries=self._max_retries)
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """Return the connection settings, reading the connection without blocking the event loop.

        Coroutines sharing the hook wait for one read instead of each reading the connection.
        """
        if self._settings is None:
            async with self._async_lock():
                if self._settings is None:
                    connection = await self.aget_connection(self.dynamiq_conn_id)
                    self._settings = settings_from_connection(
                        connection, timeout=self._timeout, max_retries=self._max_retries
                    )
        return self._settings

    def _async_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy shared by every request of this hook, sync and async."""
        if self._retry_policy is None:
            self._retry_policy = RetryPolicy(max_retries=self.settings.max_retries)
        return self._retry_policy

    @property
    def client(self) -> httpx.Client:
        """The hook's HTTP client, created on first use.

        It carries no credential: each request adds the one its host takes, so a signed
        download URL never receives one.
        """
        if self._client is None or self._client.is_closed:
            self._client = httpx.Client(**self._client_options(self.settings))
        return self._client

    async def aclient(self) -> httpx.AsyncClient:
        """Return the hook's first async HTTP client, created on first use in the running event loop."""
        return (await self._apools())[0][0]

    async def _apools(self) -> list[tuple[httpx.AsyncClient, asyncio.Semaphore]]:
        """Return the async clients, each with the semaphore that bounds its requests in flight.

        httpcore checks every pooled connection on each request, so one pool of 50 connections
        was seven times as slow as five pools of 10 in bench/bulk.py (2,000 checks at 50 in
        flight: 11.8 s against 1.6 s). A pool that keeps fewer idle connections than it has in
        flight reconnects for most requests. Each client therefore has at most
        :data:`MAX_POOL_CONNECTIONS` connections, all kept alive, and enough clients are made to
        reach ``max_concurrency``.
        """
        if not self._async_pools or self._async_pools[0][0].is_closed:
            settings = await self.asettings()
            # No await between the check and the assignment, so concurrent callers share the pools.
            if not self._async_pools or self._async_pools[0][0].is_closed:
                count = -(-self.max_concurrency // MAX_POOL_CONNECTIONS)
                sizes = [self.max_concurrency // count + (1 if index < self.max_concurrency % count else 0) for index in range(count)]
                self._async_pools = [
                    (
                        httpx.AsyncClient(
                            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                            **self._client_options(settings),
                        ),
                        asyncio.Semaphore(size),
                    )
                    for size in sizes
                ]
        return self._async_pools

    def close(self) -> None:
        """Close the sync HTTP client and its pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        self.close()
        pools, self._async_pools = self._async_pools, []
        for client, _ in pools:
            await client.aclose()

    def __enter__(self) -> DynamiqHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- end users ----------------------------------------------------------------------

    def get_requirements_status(self, user_id: str) -> RequirementsStatus:
        """Return the requirement status of end user ``user_id`` on the connection's App.

        Logs a warning when the response is ambiguous; see :meth:`RequirementsStatus.readiness`.
        """
        status = self._send(requirements_status_call(self.settings, user_id))
        self._warn_if_ambiguous(status)
        return status

    async def aget_requirements_status(self, user_id: str) -> RequirementsStatus:
        """Async version of :meth:`get_requirements_status`."""
        status = await self._asend(requirements_status_call(await self.asettings(), user_id))
        self._warn_if_ambiguous(status)
        return status

    def check_requirements(self, user_ids: Sequence[str], *, progress_interval: float = 5.0) -> list[dict[str, Any]]:
        """Check the requirement status of many end users at once; see :meth:`acheck_requirements`.

        Runs its own event loop, so call it from a task, not from async code.
        """
        async def check_and_close() -> list[dict[str, Any]]:
            try:
                return await self.acheck_requirements(user_ids, progress_interval=progress_interval)
            finally:
                await self.aclose()

        return asyncio.run(check_and_close())

    async def acheck_requirements(
        self, user_ids: Sequence[str], *, progress_interval: float = 5.0
    ) -> list[dict[str, Any]]:
        """Check the requirement status of many end users concurrently, in input order.

        At most ``max_concurrency`` requests (set on the hook) are in flight, over the hook's one
        async client, with the usual retry policy. Each user id is checked once, however often it
        appears. A user whose check fails after retries is reported with ``"error"`` instead of
        failing the batch.

        :param user_ids: end user ids; every one is validated before any request is sent.
        :param progress_interval: seconds between progress log lines.
        :return: one ``{"user_id", "ready", "status", "unsatisfied"}`` per input id, where
            ``unsatisfied`` lists ``{"id", "name", "type", "title", "description"}``; a failed
            check has ``"ready": False``, ``"status": None`` and ``"error"`` with the message.
        """
        if isinstance(user_ids, (str, bytes)) or not isinstance(user_ids, Sequence):
            raise DynamiqConfigError(f"user_ids must be a list of user id strings, got {type(user_ids).__name__}.")
        validated = [require_id(user_id, f"user_ids[{index}]") for index, user_id in enumerate(user_ids)]
        unique = list(dict.fromkeys(validated))
        results: dict[str, dict[str, Any]] = {}
        errors = 0
        started = time.monotonic()

        async def check(user_id: str) -> None:
            nonlocal errors
            try:
                status = await self.aget_requirements_status(user_id)
            except DynamiqError as error:
                errors += 1
                results[user_id] = {"user_id": user_id, "ready": False, "status": None, "unsatisfied": [], "error": str(error)}
                return
            results[user_id] = {
                "user_id": user_id,
                "ready": status.is_complete,
                "status": status.status,
                "unsatisfied": [requirement.summary() for requirement in status.unsatisfied],
            }

        async def report_progress() -> None:
            while True:
                await asyncio.sleep(progress_interval)
                elapsed = time.monotonic() - started
                self.log.info(
                    "Checked %d of %d users (%d remaining, %d errors, %.0f users/s).",
                    len(results),
                    len(unique),
                    len(unique) - len(results),
                    errors,
                    len(results) / elapsed if elapsed else 0.0,
                )

        reporter = asyncio.create_task(report_progress())
        try:
            await asyncio.gather(*(check(user_id) for user_id in unique))
        finally:
            reporter.cancel()
        elapsed = time.monotonic() - started
        self.log.info(
            "Checked %d users in %.1f s (%d errors, %.0f users/s).",
            len(unique),
            elapsed,
            errors,
            len(unique) / elapsed if elapsed else 0.0,
        )
        return [results[user_id] for user_id in validated]

    def create_connect_token(self, user_id: str) -> ConnectToken:
        """Mint a connect token and hosted connect link for end user ``user_id``.

        The token and link are credentials for 24 hours: log neither. The request may be
        retried, because an extra token is harmless; it simply expires.
        """
        return self._send(connect_token_call(self.settings, user_id))

    # -- runs ---------------------------------------------------------------------------

    def create_run(
        self, input: dict[str, Any], *, user_id: str | None = None, session_id: str | None = None
    ) -> Run:
        """Start a background run of the App with ``input`` and return it at once.

        The request is never repeated once it may have reached the server, because a repeat
        would start a second run.

        :param input: the workflow's input fields, a JSON object.
        :param user_id: end user the run acts for; requirements are resolved for this user.
        :param session_id: UUID of a conversation session to continue.
        """
        return self._send(create_run_call(self.settings, input, user_id=user_id, session_id=session_id))

    def get_run(self, run_id: str) -> Run:
        """Return run ``run_id`` of the connection's App."""
        return self._send(get_run_call(self.settings, run_id))

    async def aget_run(self, run_id: str) -> Run:
        """Async version of :meth:`get_run`."""
        return await self._asend(get_run_call(await self.asettings(), run_id))

    def cancel_run(self, run_id: str) -> None:
        """Cancel run ``run_id``. Cancelling a finished run is harmless."""
        self._send(cancel_run_call(self.settings, run_id))

    async def acancel_run(self, run_id: str) -> None:
        """Async version of :meth:`cancel_run`."""
        await self._asend(cancel_run_call(await self.asettings(), run_id))

    def run_url(self, run_id: str) -> str:
        """Return the API URL of run ``run_id`` on the App host, for an operator extra link."""
        return f"{self.settings.app_url}/v1/runs/{require_uuid(run_id, 'run_id')}"

    # -- management API -----------------------------------------------------------------

    def get_app(self, app_id: str | None = None) -> App:
        """Return the App ``app_id`` (default: the connection's App) from the management API."""
        return self._send(app_call(self.settings, app_id))

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
        page_size = validate_page_size(page_size)
        for page in range(1, MAX_PAGES + 1):
            listing = self._send(artifacts_page_call(self.settings, run_id, app_id, page, page_size))
            yield from listing.data
            if not listing.data or listing.pagination is None or page >= listing.pagination.page_count:
                return
        raise DynamiqError(
            f"Failed to list the artifacts of run {run_id} of App {app_id}: the listing did not end after "
            f"{MAX_PAGES} pages."
        )

    def list_run_artifacts(self, run_id: str, app_id: str | None = None) -> list[Artifact]:
        """Return every artifact of run ``run_id``; see :meth:`iter_run_artifacts`."""
        return list(self.iter_run_artifacts(run_id, app_id=app_id))

    def download_artifact(
        self, artifact: Artifact, destination: Any, *, file_name: str | None = None, overwrite: bool = False
    ) -> str:
        """Download ``artifact`` into the folder ``destination`` and return where the file is.

        The signed URL is fetched with no credential and streamed, so memory does not grow with
        the file's size. The body goes to a temporary file that becomes the final file only when
        its size equals ``artifact.size``, so a failed download leaves no file behind.

        :param artifact: an artifact from :meth:`list_run_artifacts`.
        :param destination: a local folder, an ``ObjectStoragePath``, or an object storage URL
            (``s3://bucket/prefix``); created when missing.
        :param file_name: the file name; by default the artifact's name made safe (see the
            naming rule in the README).
        :param overwrite: download again even when a file of the right size is already there.
        :return: the local path, or the object storage URL, of the file.
        """
        folder = prepare_folder(destination)
        name = file_name if file_name is not None else safe_file_name(artifact.name, artifact.id)
        location, _ = self._download_into(artifact, folder, name, overwrite=overwrite)
        return location

    def download_run_artifacts(
        self,
        run_id: str,
        destination: Any,
        app_id: str | None = None,
        *,
        name_pattern: str | None = None,
        mime_types: list[str] | None = None,
        max_concurrency: int = 4,
        overwrite: bool = False,
    ) -> list[dict[str, Any]]:
        """Download the artifacts of run ``run_id`` into ``destination``, several at a time.

        A signed URL that has expired (HTTP 403 or 410 from storage) is refreshed by listing the
        run's artifacts again, once for that artifact; a second failure raises. Files already
        present with the listed size are skipped unless ``overwrite`` is set, so running again
        does not download twice.

        :param run_id: UUID of the run.
        :param destination: a local folder, an ``ObjectStoragePath`` or an object storage URL.
        :param app_id: UUID of the App; defaults to the connection's App.
        :param name_pattern: only artifacts whose name matches this shell-style pattern.
        :param mime_types: only artifacts of these MIME types (``image/*`` matches a family).
        :param max_concurrency: downloads at once, from 1 to 32.
        :param overwrite: download again even when a file of the right size is present.
        :return: ``[{"id", "name", "size", "mime_type", "path"}]`` in listing order.
        """
        run_id = require_uuid(run_id, "run_id")
        app_id = self.settings.resolve_app_id(app_id)
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= 32:
            raise DynamiqConfigError(f"max_concurrency must be a whole number from 1 to 32, got {max_concurrency!r}.")
        folder = prepare_folder(destination)

        listed = self.list_run_artifacts(run_id, app_id=app_id)
        # Names come from the whole listing, so a filter never changes which file gets which name.
        names = plan_file_names(listed)
        selected = select_artifacts(listed, name_pattern=name_pattern, mime_types=mime_types)
        self.log.info(
            "Downloading %d of the %d artifact(s) of run %s to %s.", len(selected), len(listed), run_id, folder
        )

        def download(artifact: Artifact) -> dict[str, Any]:
            name = names[artifact.id]
            try:
                location, _ = self._download_into(artifact, folder, name, overwrite=overwrite)
            except DynamiqDownloadError as error:
                if not error.url_expired:
                    raise
                self.log.info("The signed URL of artifact %s was rejected; listing the run again.", artifact.id)
                fresh = self._find_artifact(run_id, app_id, artifact.id)
                location, _ = self._download_into(fresh, folder, name, overwrite=overwrite)
            return {
                "id": artifact.id,
                "name": artifact.name,
                "size": artifact.size,
                "mime_type": artifact.mime_type,
                "path": location,
            }

        with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="dynamiq-download") as pool:
            futures = [pool.submit(download, artifact) for artifact in selected]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((future for future in futures if future in done and future.exception()), None)
            if failed is not None:
                for future in futures:
                    future.cancel()
                raise failed.exception()  # type: ignore[misc]
            return [future.result() for future in futures]

    def _find_artifact(self, run_id: str, app_id: str, artifact_id: str) -> Artifact:
        for artifact in self.iter_run_artifacts(run_id, app_id=app_id):
            if artifact.id == artifact_id:
                return artifact
        raise DynamiqDownloadError(
            f"Artifact {artifact_id} is no longer listed for run {run_id}, so its signed URL cannot be refreshed.",
            artifact_id=artifact_id,
        )

    def _download_into(self, artifact: Artifact, folder: Folder, name: str, *, overwrite: bool) -> tuple[str, bool]:
        """Download ``artifact`` to ``name`` in ``folder``; return the location and whether it was skipped."""
        if not overwrite and folder.existing_size(name) == artifact.size:
            self.log.info("Artifact %s is already at %s with %d bytes; not downloading it again.", artifact.id, folder.location(name), artifact.size)
            return folder.location(name), True
        url = artifact.download_url.get_secret_value()
        description = f"download artifact {artifact.id} ({artifact.name!r})"
        storage_host = _display_origin(url)
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.client.stream("GET", url, follow_redirects=True) as response:
                    if response.status_code >= 400:
                        decision = self._retry_decision(
                            attempt, "GET", storage_host, "/<signed URL>", idempotent=True, response=response
                        )
                        if decision.retry:
                            self._sleep(decision.wait)
                            continue
                        # The storage body is never quoted: object stores echo the signature in it.
                        if response.status_code in (403, 410):
                            advice = "The signed URL has expired or was rejected; list the run's artifacts again."
                        else:
                            advice = _sentence(decision.reason)
                        raise DynamiqDownloadError(
                            f"Failed to {description}: storage host {storage_host} returned HTTP "
                            f"{response.status_code}. {advice}",
                            artifact_id=artifact.id,
                            status_code=response.status_code,
                        )
                    # Without a Content-Encoding the raw chunks are the file, and iterating them as
                    # received runs about three times faster than re-chunking them with
                    # iter_bytes(chunk_size), which copies every byte again (docs/benchmarks.md).
                    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                    chunks = response.iter_raw() if encoding in ("", "identity") else response.iter_bytes()
                    location = write_complete(
                        folder,
                        name,
                        chunks,
                        artifact_id=artifact.id,
                        expected_size=artifact.size,
                        description=description,
                    )
                    return location, False
            except httpx.TransportError as error:
                decision = self._retry_decision(attempt, "GET", storage_host, "/<signed URL>", idempotent=True, error=error)
                if not decision.retry:
                    raise DynamiqDownloadError(
                        f"Failed to {description} from storage host {storage_host}: "
                        f"{type(error).__name__}; {decision.reason}. No file was written.",
                        artifact_id=artifact.id,
                    ) from None
                self._sleep(decision.wait)

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

    # -- sending ------------------------------------------------------------------------

    def _send(self, call: Call[ResultT]) -> ResultT:
        """Send ``call`` with the retry policy and return its parsed result."""
        settings = self.settings
        url, headers, host = self._target(settings, call)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.client.request(call.method, url, params=call.params, json=call.json, headers=headers)
            except httpx.TransportError as error:
                decision = self._retry_decision(attempt, call.method, host, call.path, idempotent=call.idempotent, error=error)
                if not decision.retry:
                    raise _transport_error(call, error, host, decision, settings) from None
                self._sleep(decision.wait)
                continue
            if response.is_success:
                return call.parse(response)
            decision = self._retry_decision(attempt, call.method, host, call.path, idempotent=call.idempotent, response=response)
            if not decision.retry:
                raise _status_error(call, response, decision)
            response.close()
            self._sleep(decision.wait)

    async def _asend(self, call: Call[ResultT]) -> ResultT:
        """Async version of :meth:`_send`: the same policy, with ``asyncio.sleep`` between attempts."""
        settings = await self.asettings()
        pools = await self._apools()
        # Round robin over the pools; each request then waits for a free slot in its own pool.
        client, slots = pools[self._next_pool % len(pools)]
        self._next_pool += 1
        url, headers, host = self._target(settings, call)
        attempt = 0
        while True:
            attempt += 1
            try:
                # Waiting on the semaphore is cheap. httpcore's pool rescans its whole queue on
                # every change, so a thousand requests queued inside it cost quadratic time.
                async with slots:
                    response = await client.request(
                        call.method, url, params=call.params, json=call.json, headers=headers
                    )
            except httpx.TransportError as error:
                decision = self._retry_decision(attempt, call.method, host, call.path, idempotent=call.idempotent, error=error)
                if not decision.retry:
                    raise _transport_error(call, error, host, decision, settings) from None
                await asyncio.sleep(decision.wait)
                continue
            if response.is_success:
                return call.parse(response)
            decision = self._retry_decision(attempt, call.method, host, call.path, idempotent=call.idempotent, response=response)
            if not decision.retry:
                raise _status_error(call, response, decision)
            await response.aclose()
            await asyncio.sleep(decision.wait)

    def _retry_decision(
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
        """Ask the retry policy about a failed attempt, and log the retry when there is one."""
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
        return decision

    @staticmethod
    def _target(settings: ConnectionSettings, call: Call[Any]) -> tuple[str, dict[str, str], str]:
        # Each credential goes only to its own host: the Access Key to the App, the management
        # credential to the management API.
        if call.target == "app":
            base_url, credential, host = settings.app_url, settings.access_key, settings.app_host
        else:
            base_url, credential, host = settings.management_url, settings.management_credential, settings.management_host
        headers = {"Accept": "application/json"}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        return base_url + call.path, headers, host

    def _client_options(self, settings: ConnectionSettings) -> dict[str, Any]:
        return {
            "timeout": httpx.Timeout(settings.timeout),
            "verify": settings.verify_ssl,
            "headers": {"User-Agent": user_agent()},
            "follow_redirects": False,
        }

    def _warn_if_ambiguous(self, status: RequirementsStatus) -> None:
        warning = status.readiness().warning
        if warning:
            self.log.warning(warning)


def _transport_error(
    call: Call[Any], error: Exception, host: str, decision: RetryDecision, settings: ConnectionSettings
) -> DynamiqTransportError:
    if is_tls_error(error):
        return DynamiqTransportError(
            f"Failed to {call.context.description}: the TLS handshake with {host} failed ({error}). Check "
            f"that the scheme of the host in connection {settings.conn_id!r} is right (https:// is assumed "
            "when none is given) and that the server's certificate is trusted. Set the 'verify_ssl' extra "
            "to false only for a test install you trust."
        )
    return DynamiqTransportError(
        f"Failed to {call.context.description}: {type(error).__name__} talking to {host} "
        f"({decision.reason}). Check that the host is reachable and the timeout "
        f"({settings.timeout:g} s) is long enough."
    )


def _status_error(call: Call[Any], response: httpx.Response, decision: RetryDecision) -> DynamiqAPIError:
    extra = _sentence(decision.reason) if response.status_code in RETRYABLE_STATUS_CODES else ""
    return api_error(response, call.context, extra=extra)


def _sentence(reason: str) -> str:
    return reason[:1].upper() + reason[1:] + "."


def user_agent() -> str:
    """Return the User-Agent header value, naming this package and its version."""
    return f"airflow-provider-dynamiq/{__version__} httpx/{httpx.__version__}"


def _display_origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
