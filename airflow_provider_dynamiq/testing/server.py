"""A fake Dynamiq service on 127.0.0.1 for tests, demos and benchmarks.

:class:`FakeDynamiqServer` runs one HTTP listener per role, each on its own free port
of 127.0.0.1:

- one **App host** per deployed App: ``/v1/requirements/status``, ``/v1/connect/tokens``
  and the Runs API (``/v1/runs...``), as the real App hostname serves them;
- the **management API**: ``/v1/apps...`` and the ``/v1/connect/*`` fulfilment API. The
  same listener serves the hosted **console** (``/connect``) and the test-control
  routes under ``/_fake/``;
- the **storage** host that serves artifacts through signed, short-lived URLs.

It follows the Dynamiq HTTP API (docs.getdynamiq.ai/docs/api-reference): paths, field
names, JSON shapes, status codes and the error envelope
``{"error": {"code", "message", "details"?}}``. Where the reference is silent, the fake
makes these choices:

- The aggregate requirement status of a user who has met everything is ``"complete"``
  with ``"unsatisfied": []``. An App without requirements reports the same.
- Error codes beyond the documented ``bad_request``, ``unauthorized`` and ``not_found``
  are ``forbidden`` (403), ``method_not_allowed`` (405), ``gone`` (410),
  ``unsupported_media_type`` (415), ``too_many_requests`` (429), ``internal_error``
  (500), ``bad_gateway`` (502), ``service_unavailable`` (503) and ``gateway_timeout`` (504).
- Routes resolve before credentials are checked, so an unknown path is 404 and a wrong
  method is 405 (with ``Allow``) even without a credential.
- On a public App the ``Authorization`` header is ignored, whatever it contains.
- The management API accepts a Personal Access Token or an Access Key. A project-scoped
  key gets 404 for another project's Apps, and for ``GET /v1/apps`` of another project.
  A project with no Apps lists as empty.
- Connect tokens are HS256 JWTs with the claims ``user_id``, ``app_id``, ``iat``, ``exp``
  and ``jti``. ``exp`` is rounded up to a whole second, so a token lives between
  ``connect_token_ttl`` and ``connect_token_ttl`` + 1 seconds. The status code of
  ``POST /v1/connect/tokens`` is 200.
- ``GET /v1/connect/requirements/status`` returns
  ``{"data": [{id, type, title, description, spec, status}]}``, status ``pending`` or
  ``completed``. ``POST .../credentials`` returns 200 ``{"message": "created"}`` and
  rejects OAuth2 connection types (a type name ending in ``OAuth2``). Links from
  ``.../pipedream/authorize`` and ``.../oauth2/authorize`` point at the console and expire
  with the connect token that requested them. Submitting the hosted connect page
  fulfils every requirement of the App for the token's user at once.
- Lists: ``page`` is 1-based (default 1). ``page_size`` defaults to 25, and larger values
  are clamped to 100 and reported as 100. A page past the end has empty ``data``.
  ``page_count`` is 0 for an empty list. A ``page`` or ``page_size`` that is not an
  integer >= 1 gives 400 with ``details``. Each artifact listing signs new download
  URLs, valid for at least ``download_url_ttl`` seconds (``expires`` is rounded up).
- Runs: ``POST /v1/runs`` takes JSON only (multipart gives 400, other content types 415).
  ``stream: true`` gives 400 because the fake does not stream. A background request
  returns 202 with status ``created``. A synchronous request returns 200 after the
  behaviour's ``duration``, with the run terminal (or ``awaiting_input``). A run is ``created`` for
  the first tenth of its duration, then ``started``, then reaches its outcome. A failed
  run has ``"output": null`` and no error field, because the reference shows none.
  Completed runs without a behaviour output get ``{"echo": <input>}``. ``user_id`` and
  ``session_id`` are always present (null when not given). ``output`` is present only
  once the run has ended. The ``status`` filter of ``GET /v1/runs`` compares the
  reported status, so ``status=started`` does not match a run awaiting input.
- ``POST /v1/runs/{id}/input`` accepts any ``type`` with ``data.request_id``. It returns
  400 when the run is not awaiting input or the request id is not the pending one. A
  run completes as soon as it receives input.
- Storage: a request with an ``Authorization`` header gets 400. A missing or wrong
  signature or an expired URL gets 403, an unknown artifact 404 and a deleted one 410,
  each with an XML error body. A deleted artifact stays in the run's artifact list.
  Range requests are not supported: the whole file is sent.
- Faults: ``path`` is a regular expression searched in the path (use ``^`` and ``$``
  for an exact match). ``count=None`` applies a fault until :meth:`clear_faults`. An
  error fault on the storage role sends an XML body instead of the JSON envelope.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

from airflow_provider_dynamiq.testing._app_routes import AppRoutes
from airflow_provider_dynamiq.testing._console import CONNECT_COMPLETE_ID, CONNECT_PAGE_ID, ConsoleRoutes
from airflow_provider_dynamiq.testing._control import ControlRoutes
from airflow_provider_dynamiq.testing._http import Listener, Router, make_dispatcher
from airflow_provider_dynamiq.testing._management_routes import ManagementRoutes
from airflow_provider_dynamiq.testing._model import (
    EXAMPLE_APP_DESCRIPTION,
    EXAMPLE_APP_ID,
    EXAMPLE_APP_NAME,
    EXAMPLE_ARTIFACT_ID,
    EXAMPLE_ARTIFACT_SIZE,
    EXAMPLE_CREATOR_ID,
    EXAMPLE_INPUT,
    EXAMPLE_OUTPUT,
    EXAMPLE_PROJECT_ID,
    EXAMPLE_REQUIREMENT_ID,
    EXAMPLE_RUN_ID,
    EXAMPLE_RUNTIME_ID,
    EXAMPLE_SESSION_ID,
    EXAMPLE_USER_ID,
    EXAMPLE_WORKFLOW_ID,
    EXAMPLE_WORKFLOW_VERSION_ID,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    App,
    Artifact,
    ArtifactSpec,
    FakeApp,
    RecordedRequest,
    Requirement,
    Run,
    RunBehaviour,
    build_example_pdf,
    format_timestamp,
    is_uuid,
    make_fault,
    new_id,
    parse_timestamp,
)
from airflow_provider_dynamiq.testing._state import (
    ACCESS_KEY_PREFIX,
    PAT_PREFIXES,
    FakeState,
    random_alphanumeric,
)
from airflow_provider_dynamiq.testing._storage_routes import StorageRoutes

logger = logging.getLogger("airflow_provider_dynamiq.testing")

# How long close() waits for the connection threads of each listener to end, in seconds.
_CLOSE_TIMEOUT = 2.0


class ConnectLinkError(RuntimeError):
    """Raised by :meth:`FakeDynamiqServer.follow_connect_link` when the link does not work."""


class FakeDynamiqServer:
    """A fake Dynamiq service with App hosts, management API, console and storage on 127.0.0.1.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. The credentials
    it generates are random test values that no real service accepts.

    :param access_key: org-wide Access Key. Default: ``dynamiq_acc_`` + 64 random characters.
    :param management_token: Personal Access Token (``dyn_pat_`` or the older ``uak_``
        prefix). Default: ``dyn_pat_`` + 40 random characters.
    :param connect_token_ttl: lifetime of connect tokens, in seconds.
    :param download_url_ttl: lifetime of signed artifact download URLs, in seconds.
    :param seed: add the example App, its Gmail requirement, end user and completed run
        with one PDF artifact, as in the Dynamiq API reference.
    :raises ValueError: for a credential with the wrong prefix or a lifetime <= 0.
    """

    def __init__(
        self,
        access_key: str | None = None,
        management_token: str | None = None,
        connect_token_ttl: float = 86400.0,
        download_url_ttl: float = 300.0,
        seed: bool = True,
    ) -> None:
        if access_key is None:
            access_key = ACCESS_KEY_PREFIX + random_alphanumeric(64)
        if management_token is None:
            management_token = PAT_PREFIXES[0] + random_alphanumeric(40)
        if not access_key.startswith(ACCESS_KEY_PREFIX) or len(access_key) == len(ACCESS_KEY_PREFIX):
            raise ValueError(f"access_key must start with {ACCESS_KEY_PREFIX!r} followed by the key")
        if not management_token.startswith(PAT_PREFIXES) or management_token in PAT_PREFIXES:
            raise ValueError(f"management_token must start with {' or '.join(map(repr, PAT_PREFIXES))}")
        for name, value in (("connect_token_ttl", connect_token_ttl), ("download_url_ttl", download_url_ttl)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")

        self._access_key = access_key
        self._management_token = management_token
        self._state = FakeState(
            access_key=access_key,
            management_token=management_token,
            connect_token_ttl=float(connect_token_ttl),
            download_url_ttl=float(download_url_ttl),
        )
        self._lifecycle_lock = threading.Lock()
        self._management_listener: Listener | None = None
        self._storage_listener: Listener | None = None
        self._app_listeners: dict[str, Listener] = {}
        self._started = False
        self._closed = False
        if seed:
            self._seed()

    # Lifecycle

    def start(self) -> FakeDynamiqServer:
        """Bind every listener to a free port of 127.0.0.1 and serve in daemon threads.

        :return: the server itself.
        :raises RuntimeError: when the server was already started or closed.
        """
        with self._lifecycle_lock:
            if self._started or self._closed:
                raise RuntimeError("the fake Dynamiq server can be started only once")
            self._started = True
            try:
                app_ids = self._open_listeners()
            except BaseException:
                # A listener that failed to bind leaves the others bound, so release them.
                self._closed = True
                for listener in self._all_listeners():
                    listener.stop_serving()
                raise

        logger.debug(
            "fake Dynamiq server started: management %s, storage %s, %d App(s)",
            self.management_url,
            self.storage_url,
            len(app_ids),
        )
        return self

    def _open_listeners(self) -> list[str]:
        router = Router()
        ManagementRoutes(self._state).register(router)
        ConsoleRoutes(self._state).register(router)
        ControlRoutes(self._state).register(router)
        self._management_listener = Listener(
            role="management", app_id=None, state=self._state, dispatch=make_dispatcher(router)
        )
        self._storage_listener = Listener(
            role="storage",
            app_id=None,
            state=self._state,
            dispatch=make_dispatcher(StorageRoutes(self._state).router()),
        )
        with self._state.lock:
            self._state.console_url = self._management_listener.url
            self._state.storage_url = self._storage_listener.url
            app_ids = list(self._state.apps)
        self._management_listener.start()
        self._storage_listener.start()
        for app_id in app_ids:
            self._open_app_listener(app_id)
        return app_ids

    def _all_listeners(self) -> list[Listener]:
        listeners = list(self._app_listeners.values())
        for listener in (self._management_listener, self._storage_listener):
            if listener is not None:
                listeners.append(listener)
        return listeners

    def close(self) -> None:
        """Stop every listener, end open connections and join their threads. Safe to call twice."""
        with self._lifecycle_lock:
            if self._closed:
                return
            self._closed = True
            listeners = self._all_listeners()

        self._state.stopping.set()
        for listener in listeners:
            listener.stop_serving()

        still_running = 0
        for listener in listeners:
            still_running += len(listener.close_connections(_CLOSE_TIMEOUT))
        if still_running:
            logger.warning("fake Dynamiq server: %d connection thread(s) still running after close", still_running)
        logger.debug("fake Dynamiq server stopped")

    def __enter__(self) -> FakeDynamiqServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # URLs and credentials

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the fake Dynamiq server is not started; call start() or use it as a context manager")

    @property
    def management_url(self) -> str:
        """Base URL of the management API, ``http://127.0.0.1:PORT``."""
        self._require_started()
        assert self._management_listener is not None
        return self._management_listener.url

    @property
    def console_url(self) -> str:
        """Base URL of the hosted console, served by the management listener."""
        return self.management_url

    @property
    def storage_url(self) -> str:
        """Base URL of the storage host of signed download URLs."""
        self._require_started()
        assert self._storage_listener is not None
        return self._storage_listener.url

    def app_url(self, app_id: str | None = None) -> str:
        """Return the base URL of an App host, the default App's when ``app_id`` is None.

        :raises KeyError: for an unknown App.
        """
        self._require_started()
        app = self._state.get_app(app_id)
        return self._app_listeners[app.id].url

    @property
    def default_app_id(self) -> str | None:
        """Id of the default App: the example App when seeded, else the first App added."""
        return self._state.default_app_id

    @property
    def access_key(self) -> str:
        """The org-wide Access Key given or generated at construction."""
        return self._access_key

    @property
    def management_token(self) -> str:
        """The Personal Access Token given or generated at construction."""
        return self._management_token

    def add_access_key(self, project_id: str | None = None) -> str:
        """Create another Access Key, org-wide when ``project_id`` is None, else scoped to that project.

        :raises ValueError: when ``project_id`` is not a UUID.
        """
        if project_id is not None and not is_uuid(project_id):
            raise ValueError(f"project_id must be a UUID, got {project_id!r}")
        return self._state.add_access_key(project_id)

    def connection_json(self, management_token: bool = False) -> dict[str, Any]:
        """Return the Airflow connection for ``AIRFLOW_CONN_DYNAMIQ_DEFAULT`` as a dict.

        :param management_token: also put the Personal Access Token in ``extra``.
        """
        extra: dict[str, Any] = {"management_url": self.management_url, "app_id": self.default_app_id}
        if management_token:
            extra["management_token"] = self.management_token
        return {"conn_type": "dynamiq", "host": self.app_url(), "password": self.access_key, "extra": extra}

    def airflow_conn_env(self) -> str:
        """Return :meth:`connection_json` as the JSON string for ``AIRFLOW_CONN_DYNAMIQ_DEFAULT``."""
        return json.dumps(self.connection_json())

    # Apps and requirements

    def add_app(
        self,
        app_id: str | None = None,
        name: str | None = None,
        project_id: str | None = None,
        access_type: str = "private",
        requirements: Iterable[dict[str, Any]] | None = None,
    ) -> FakeApp:
        """Add a deployed App and start its App host listener.

        :param app_id: App UUID. Default: a new random UUID.
        :param name: App name. Default: ``fake-app-`` + the first 8 characters of the id.
        :param project_id: project UUID. Default: the example project.
        :param access_type: ``"private"`` (Access Key needed) or ``"public"``.
        :param requirements: keyword arguments of :meth:`add_requirement`, one dict each.
        :raises RuntimeError: when the server is not started.
        :raises ValueError: for an invalid argument or an id already in use.
        """
        self._require_started()
        app_id = app_id or new_id()
        project_id = project_id or EXAMPLE_PROJECT_ID
        for label, value in (("app_id", app_id), ("project_id", project_id)):
            if not is_uuid(value):
                raise ValueError(f"{label} must be a UUID, got {value!r}")
        if access_type not in ("private", "public"):
            raise ValueError(f"access_type must be 'private' or 'public', got {access_type!r}")

        now = format_timestamp(time.time())
        app = App(
            id=app_id,
            name=name or f"fake-app-{app_id[:8]}",
            description="",
            project_id=project_id,
            workflow_id=new_id(),
            workflow_version_id=new_id(),
            runtime_id=EXAMPLE_RUNTIME_ID,
            access_type=access_type,
            created_at=now,
            updated_at=now,
            created_by=EXAMPLE_CREATOR_ID,
        )
        with self._lifecycle_lock:
            if self._closed:
                raise RuntimeError("the fake Dynamiq server is closed")
            self._state.add_app(app)
            listener = self._open_app_listener(app_id)
        for requirement in requirements or ():
            self.add_requirement(app_id, **requirement)
        return FakeApp(
            id=app.id,
            name=app.name,
            project_id=app.project_id,
            workflow_id=app.workflow_id,
            access_type=app.access_type,
            url=listener.url,
            hostname=f"127.0.0.1:{listener.port}",
        )

    def _open_app_listener(self, app_id: str) -> Listener:
        routes = AppRoutes(self._state, app_id)
        listener = Listener(role="app", app_id=app_id, state=self._state, dispatch=make_dispatcher(routes.router()))
        with self._state.lock:
            self._state.apps[app_id].hostname = f"127.0.0.1:{listener.port}"
        self._app_listeners[app_id] = listener
        listener.start()
        return listener

    def add_requirement(
        self,
        app_id: str | None = None,
        type: str = "connection",  # noqa: A002 - the API field is named "type"
        name: str = "helpdesk_api_key",
        title: str = "Helpdesk API key",
        description: str = "Read-only access to your helpdesk tickets.",
        spec_data: dict[str, Any] | None = None,
    ) -> str:
        """Add an end-user requirement to an App and return its id.

        :param type: ``"connection"`` or ``"pipedream_account"``.
        :param spec_data: ``spec.data``. Default: ``{"type": "dynamiq.connections.HttpApiKey"}``
            for a connection, ``{"app_slug": "slack"}`` for a ``pipedream_account``.
        :raises ValueError: for an unknown type or a ``spec_data`` without its key.
        :raises KeyError: for an unknown App.
        """
        if type == "connection":
            spec_data = spec_data if spec_data is not None else {"type": "dynamiq.connections.HttpApiKey"}
            required_key = "type"
        elif type == "pipedream_account":
            spec_data = spec_data if spec_data is not None else {"app_slug": "slack"}
            required_key = "app_slug"
        else:
            raise ValueError(f"type must be 'connection' or 'pipedream_account', got {type!r}")
        if not isinstance(spec_data.get(required_key), str):
            raise ValueError(f"spec_data of a {type} requirement needs a string {required_key!r}")

        app = self._state.get_app(app_id)
        requirement = Requirement(
            id=new_id(),
            type=type,
            name=name,
            title=title,
            description=description,
            spec_data=dict(spec_data),
            workflow_id=app.workflow_id,
        )
        self._state.add_requirement(app.id, requirement)
        return requirement.id

    def complete_requirements(
        self, user_id: str, app_id: str | None = None, requirement_ids: Sequence[str] | None = None
    ) -> None:
        """Mark requirements of an App fulfilled for an end user, all of them when ``requirement_ids`` is None.

        :raises KeyError: for an unknown App. :raises ValueError: for an unknown requirement.
        """
        ids = list(requirement_ids) if requirement_ids is not None else None
        self._state.complete_requirements(app_id, user_id, ids)

    def reset_requirements(self, user_id: str, app_id: str | None = None) -> None:
        """Mark every requirement of an App unfulfilled again for an end user."""
        self._state.reset_requirements(app_id, user_id)

    def follow_connect_link(self, url: str) -> None:
        """Act as the end user on a connect link: open the hosted page and submit its form.

        Only links to this server's console are followed.

        :raises ValueError: when ``url`` is not a connect link of this server.
        :raises ConnectLinkError: when the page cannot be reached, is not the connect page,
            or the submission does not complete.
        """
        import httpx  # Imported here so that importing the fake needs only the standard library and PyJWT.

        parts = urlsplit(url)
        console = urlsplit(self.console_url)
        if (parts.scheme, parts.netloc, parts.path) != (console.scheme, console.netloc, "/connect"):
            # The query string contains the connect token, so the message leaves it out.
            raise ValueError(
                f"not a connect link of this fake server: expected {self.console_url}/connect?token=..., "
                f"got a link to {parts.scheme}://{parts.netloc}{parts.path}"
            )

        with httpx.Client(trust_env=False, timeout=10.0) as client:
            try:
                page = client.get(url)
            except httpx.HTTPError as error:
                raise ConnectLinkError(f"opening the connect page failed: {error!r}") from error
            if page.status_code != 200:
                raise ConnectLinkError(f"the connect page returned HTTP {page.status_code}; is the link expired?")
            form = _ConnectPageParser.parse(page.text)
            if form.main_id != CONNECT_PAGE_ID or form.action is None or form.token is None:
                raise ConnectLinkError("the response is not the connect page: no connect form with a token found")

            try:
                result = client.post(urljoin(url, form.action), data={"token": form.token})
            except httpx.HTTPError as error:
                raise ConnectLinkError(f"submitting the connect form failed: {error!r}") from error
            if result.status_code != 200:
                raise ConnectLinkError(f"submitting the connect form returned HTTP {result.status_code}")
            if _ConnectPageParser.parse(result.text).main_id != CONNECT_COMPLETE_ID:
                raise ConnectLinkError("submitting the connect form did not return the completion page")

    # Runs and artifacts

    def set_run_behaviour(
        self,
        outcome: str = "completed",
        duration: float = 1.0,
        output: Any = None,
        artifacts: Sequence[ArtifactSpec] | None = None,
    ) -> None:
        """Set how runs created from now on behave.

        :param outcome: ``"completed"``, ``"failed"`` or ``"awaiting_input"``. A run
            awaiting input reports one ``approval_request`` and completes when it receives input.
        :param duration: seconds from creation until the outcome is reached.
        :param output: output of completed runs. None means ``{"echo": <run input>}``.
        :param artifacts: files of completed runs. None means one ``result.json`` with the output.
        :raises ValueError: for an invalid argument.
        """
        specs = tuple(artifacts) if artifacts is not None else None
        self._state.set_behaviour(RunBehaviour(outcome=outcome, duration=duration, output=output, artifacts=specs))

    def add_run(
        self,
        app_id: str | None = None,
        user_id: str | None = None,
        status: str = "completed",
        input: dict[str, Any] | None = None,  # noqa: A002 - the API field is named "input"
        output: Any = None,
        artifacts: Sequence[ArtifactSpec] | None = None,
    ) -> str:
        """Add a run that keeps ``status`` until canceled or, when awaiting input, until it receives input.

        :param status: any run status, ``awaiting_input`` included.
        :param output: output of a completed run. None means ``{"echo": <input>}``.
        :param artifacts: files of a completed run. None means one ``result.json`` with the output.
        :return: the run id.
        :raises ValueError: for an unknown status. :raises KeyError: for an unknown App.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        app = self._state.get_app(app_id)
        run_input = dict(input) if input is not None else {}
        now = time.time()
        run = Run(
            id=new_id(),
            app_id=app.id,
            user_id=user_id,
            session_id=None,
            input=run_input,
            file_ids=[],
            created_at=now,
            outcome="completed",
            duration=0.0,
            output=output if output is not None else {"echo": run_input},
            artifact_specs=tuple(artifacts) if artifacts is not None else None,
            fixed_status=status,
            ended_at=now if status in TERMINAL_STATUSES else None,
        )
        self._state.add_fixed_run(run)
        return run.id

    def add_artifact(self, run_id: str, spec: ArtifactSpec) -> str:
        """Add an artifact, saved now, to a run and return the artifact id.

        :raises KeyError: for an unknown run.
        """
        return self._state.add_artifact(run_id, spec)

    def artifact_bytes(self, artifact_id: str) -> bytes:
        """Return the content of an artifact of at most 64 MiB.

        :raises KeyError: for an unknown artifact. :raises ValueError: for a larger one.
        """
        return self._state.get_artifact(artifact_id).read_all()

    def artifact_sha256(self, artifact_id: str) -> str:
        """Return the hex SHA-256 of an artifact's content.

        :raises KeyError: for an unknown artifact.
        """
        artifact = self._state.get_artifact(artifact_id)
        # Hashing a large generated artifact takes a while, so it runs outside the lock.
        return artifact.sha256()

    def expire_download_urls(self) -> None:
        """Make every download URL signed so far fail with 403. New listings sign valid URLs."""
        self._state.expire_download_urls()

    def delete_artifact(self, artifact_id: str) -> None:
        """Delete an artifact's content, so that storage responds with 410 for it.

        :raises KeyError: for an unknown artifact.
        """
        self._state.delete_artifact(artifact_id)

    # Faults and recorded requests

    def add_fault(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        role: str | None = None,
        status: int | None = None,
        count: int | None = 1,
        retry_after: str | None = None,
        delay: float = 0.0,
        reset: bool = False,
        truncate: bool = False,
        body: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail, before normal handling.

        A request matches when ``method``, ``role`` and ``path`` (a regular expression
        searched in the path without the query string) all match; None matches
        anything. The first matching fault, in the order added, applies.

        :param status: send this status. Without ``body``, the body is the error
            envelope (XML for the storage role).
        :param count: number of requests to fail, or None for every request until
            :meth:`clear_faults`.
        :param retry_after: value of a ``Retry-After`` header, sent verbatim.
        :param delay: seconds to wait before responding. Alone, it delays a normal response.
        :param reset: close the connection with a TCP reset and send nothing.
        :param truncate: announce the full ``Content-Length`` but send half the body,
            then close. Alone, it truncates the normal response.
        :param body: response body text, for example an HTML proxy page or malformed JSON.
        :param content_type: ``Content-Type`` of the fault response.
        :raises ValueError: for an invalid or contradictory combination.
        """
        fault = make_fault(
            method=method,
            path=path,
            role=role,
            status=status,
            count=count,
            retry_after=retry_after,
            delay=delay,
            reset=reset,
            truncate=truncate,
            body=body,
            content_type=content_type,
        )
        self._state.add_fault(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._state.clear_faults()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copy of the requests received so far, oldest first, without ``/_fake/`` ones."""
        with self._state.lock:
            return list(self._state.requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._state.lock:
            self._state.requests.clear()

    # Seed data

    def _seed(self) -> None:
        app = App(
            id=EXAMPLE_APP_ID,
            name=EXAMPLE_APP_NAME,
            description=EXAMPLE_APP_DESCRIPTION,
            project_id=EXAMPLE_PROJECT_ID,
            workflow_id=EXAMPLE_WORKFLOW_ID,
            workflow_version_id=EXAMPLE_WORKFLOW_VERSION_ID,
            runtime_id=EXAMPLE_RUNTIME_ID,
            access_type="private",
            created_at="2026-05-02T11:00:00Z",
            updated_at="2026-06-01T08:30:00Z",
            created_by=EXAMPLE_CREATOR_ID,
        )
        self._state.add_app(app)
        self._state.add_requirement(
            app.id,
            Requirement(
                id=EXAMPLE_REQUIREMENT_ID,
                type="pipedream_account",
                name="gmail_account",
                title="Connect your Gmail account",
                description="Used to send triage replies on your behalf.",
                spec_data={"app_slug": "gmail"},
                workflow_id=EXAMPLE_WORKFLOW_ID,
            ),
        )

        run = Run(
            id=EXAMPLE_RUN_ID,
            app_id=app.id,
            user_id=EXAMPLE_USER_ID,
            session_id=EXAMPLE_SESSION_ID,
            input=dict(EXAMPLE_INPUT),
            file_ids=[],
            created_at=parse_timestamp("2026-06-10T09:15:21Z"),
            outcome="completed",
            duration=0.0,
            output=dict(EXAMPLE_OUTPUT),
            artifact_specs=(),
            fixed_status="completed",
            ended_at=parse_timestamp("2026-06-10T09:15:34Z"),
            artifacts_created=True,
        )
        self._state.add_fixed_run(run)
        artifact = Artifact(
            id=EXAMPLE_ARTIFACT_ID,
            run_id=run.id,
            name="triage-summary.pdf",
            size=EXAMPLE_ARTIFACT_SIZE,
            mime_type="application/pdf",
            saved_at="2026-06-10T09:15:33Z",
            content=build_example_pdf(EXAMPLE_ARTIFACT_SIZE),
        )
        with self._state.lock:
            self._state.artifacts[artifact.id] = artifact
            run.artifact_ids.append(artifact.id)


class _ConnectPageParser(HTMLParser):
    """Extract the page id, the connect form's action and its hidden token from a console page."""

    def __init__(self) -> None:
        super().__init__()
        self.main_id: str | None = None
        self.action: str | None = None
        self.token: str | None = None
        self._in_form = False

    @classmethod
    def parse(cls, text: str) -> _ConnectPageParser:
        parser = cls()
        parser.feed(text)
        parser.close()
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "main" and self.main_id is None:
            self.main_id = attributes.get("id")
        elif tag == "form" and attributes.get("method", "").lower() == "post":
            self._in_form = True
            self.action = attributes.get("action")
        elif tag == "input" and self._in_form and attributes.get("name") == "token":
            self.token = attributes.get("value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
