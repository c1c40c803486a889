"""State of the fake Dynamiq server: credentials, Apps, requirements, runs, artifacts, faults.

Every method takes the one lock of :class:`FakeState`, so listener threads and the test
thread can call them concurrently. Methods that serve HTTP routes raise
:class:`~airflow_provider_dynamiq.testing._http.HttpError`; the others raise ValueError
or KeyError for a wrong argument.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import math
import secrets
import threading
import time
from typing import Any

import jwt

from airflow_provider_dynamiq.testing._http import HttpError, Request
from airflow_provider_dynamiq.testing._model import (
    App,
    Artifact,
    ArtifactSpec,
    Fault,
    RecordedRequest,
    Requirement,
    Run,
    RunBehaviour,
    default_result_artifact,
    example_input_request,
    format_timestamp,
    new_id,
)

PAT_PREFIXES = ("dyn_pat_", "uak_")
ACCESS_KEY_PREFIX = "dynamiq_acc_"
_JWT_ALGORITHM = "HS256"


@dataclasses.dataclass(frozen=True)
class ConnectClaims:
    """The App and end user that a valid connect token is bound to, and its expiry (Unix time)."""

    app_id: str
    user_id: str
    expires_at: float


@dataclasses.dataclass(frozen=True)
class PendingAuthorization:
    """An account-linking or OAuth2 consent link that completes one requirement when opened."""

    app_id: str
    user_id: str
    requirement_id: str
    expires_at: float


class FakeState:
    """All data of one fake server, guarded by one lock.

    :param access_key: org-wide Access Key accepted from the start.
    :param management_token: Personal Access Token accepted from the start.
    :param connect_token_ttl: lifetime of connect tokens in seconds.
    :param download_url_ttl: lifetime of signed download URLs in seconds.
    """

    def __init__(
        self, *, access_key: str, management_token: str, connect_token_ttl: float, download_url_ttl: float
    ) -> None:
        self.lock = threading.RLock()
        # Set on close() so that fault delays and synchronous runs stop waiting.
        self.stopping = threading.Event()
        # Access Key -> project id it is scoped to, or None for an org-wide key.
        self.access_keys: dict[str, str | None] = {access_key: None}
        self.personal_access_tokens: set[str] = {management_token}
        self.connect_token_ttl = connect_token_ttl
        self.download_url_ttl = download_url_ttl
        self._jwt_secret = secrets.token_bytes(32)
        self._url_secret = secrets.token_bytes(32)

        self.apps: dict[str, App] = {}
        self.default_app_id: str | None = None
        # (app id, user id, requirement id) of each fulfilled requirement.
        self.completed: set[tuple[str, str, str]] = set()
        self.authorizations: dict[str, PendingAuthorization] = {}
        self.runs: dict[str, Run] = {}
        self._run_sequence = itertools.count(1)
        self.artifacts: dict[str, Artifact] = {}
        self.behaviour = RunBehaviour()
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []

        # Base URLs, set by the server once the listeners are bound.
        self.console_url = ""
        self.storage_url = ""

    # Credentials

    def add_access_key(self, project_id: str | None) -> str:
        """Create an Access Key, org-wide when ``project_id`` is None, and return it."""
        key = ACCESS_KEY_PREFIX + random_alphanumeric(64)
        with self.lock:
            self.access_keys[key] = project_id
        return key

    def authorize_app_request(self, app: App, request: Request) -> None:
        """Check the credential of a request to an App host.

        Public Apps ignore the ``Authorization`` header.

        :raises HttpError: 401 for a missing or unknown credential, 403 for a Personal
            Access Token or an Access Key scoped to another project.
        """
        if app.access_type == "public":
            return
        credential = request.bearer_token()
        if credential is None:
            raise HttpError(401, "missing Authorization header with a Bearer Access Key")
        with self.lock:
            if credential in self.personal_access_tokens:
                raise HttpError(403, "Personal Access Tokens are not accepted by deployed Apps")
            if credential not in self.access_keys:
                raise HttpError(401, "invalid Access Key")
            scope = self.access_keys[credential]
        if scope is not None and scope != app.project_id:
            raise HttpError(403, "the Access Key is scoped to another project")

    def authorize_management_request(self, request: Request) -> str | None:
        """Check the credential of a management API request and return its project scope.

        :return: the project id a scoped Access Key is limited to, or None when the
            credential reaches every project (a Personal Access Token or an org-wide key).
        :raises HttpError: 401 for a missing or unknown credential, a connect token included.
        """
        credential = request.bearer_token()
        if credential is None:
            raise HttpError(401, "missing Authorization header with a Bearer Personal Access Token or Access Key")
        with self.lock:
            if credential in self.personal_access_tokens:
                return None
            if credential in self.access_keys:
                return self.access_keys[credential]
        raise HttpError(401, "invalid Personal Access Token or Access Key")

    def authorize_connect_request(self, request: Request) -> ConnectClaims:
        """Check that a request carries a valid, unexpired connect token.

        :raises HttpError: 401 for anything else, Access Keys and Personal Access Tokens included.
        """
        credential = request.bearer_token()
        if credential is None:
            raise HttpError(401, "missing Authorization header with a Bearer connect token")
        claims = self.decode_connect_token(credential)
        if claims is None:
            raise HttpError(401, "invalid or expired connect token")
        return claims

    # Connect tokens

    def mint_connect_token(self, app_id: str, user_id: str) -> tuple[str, int]:
        """Create a connect token for an App and end user and return it with its ``exp``.

        ``exp`` is rounded up to a whole second, so the token lives at least
        ``connect_token_ttl`` seconds and ``expires_at`` needs no fraction.
        """
        now = time.time()
        expires_at = math.ceil(now + self.connect_token_ttl)
        claims = {
            "user_id": user_id,
            "app_id": app_id,
            "iat": int(now),
            "exp": expires_at,
            "jti": secrets.token_hex(16),
        }
        token = jwt.encode(claims, self._jwt_secret, algorithm=_JWT_ALGORITHM, headers={"typ": "JWT"})
        return token, expires_at

    def decode_connect_token(self, token: str) -> ConnectClaims | None:
        """Return the claims of a valid, unexpired connect token of a known App, else None."""
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=[_JWT_ALGORITHM],
                options={"require": ["exp", "iat", "jti", "user_id", "app_id"]},
            )
        except jwt.PyJWTError:
            return None
        app_id = claims["app_id"]
        user_id = claims["user_id"]
        if not isinstance(app_id, str) or not isinstance(user_id, str):
            return None
        with self.lock:
            if app_id not in self.apps:
                return None
        return ConnectClaims(app_id=app_id, user_id=user_id, expires_at=float(claims["exp"]))

    # Apps and requirements

    def get_app(self, app_id: str | None) -> App:
        """Return an App, the default one when ``app_id`` is None.

        :raises KeyError: for an unknown App, or when no App exists yet.
        """
        with self.lock:
            resolved = app_id if app_id is not None else self.default_app_id
            if resolved is None:
                raise KeyError("the fake server has no App yet; call add_app() first")
            if resolved not in self.apps:
                raise KeyError(f"unknown App {resolved!r}")
            return self.apps[resolved]

    def add_app(self, app: App) -> None:
        """Register an App. The first App becomes the default."""
        with self.lock:
            if app.id in self.apps:
                raise ValueError(f"an App with id {app.id!r} already exists")
            self.apps[app.id] = app
            if self.default_app_id is None:
                self.default_app_id = app.id

    def add_requirement(self, app_id: str | None, requirement: Requirement) -> None:
        """Add a requirement to an App."""
        with self.lock:
            app = self.get_app(app_id)
            if any(existing.id == requirement.id for existing in app.requirements):
                raise ValueError(f"App {app.id} already has requirement {requirement.id}")
            app.requirements.append(requirement)

    def find_requirement(self, app_id: str, requirement_id: str) -> Requirement:
        """Return a requirement of an App.

        :raises HttpError: 404 when the App has no such requirement.
        """
        with self.lock:
            for requirement in self.get_app(app_id).requirements:
                if requirement.id == requirement_id:
                    return requirement
        raise HttpError(404, f"requirement {requirement_id} not found")

    def requirement_statuses(self, app_id: str, user_id: str) -> list[tuple[Requirement, bool]]:
        """Return each requirement of an App with whether the end user has fulfilled it."""
        with self.lock:
            return [
                (requirement, (app_id, user_id, requirement.id) in self.completed)
                for requirement in self.get_app(app_id).requirements
            ]

    def complete_requirements(self, app_id: str | None, user_id: str, requirement_ids: list[str] | None) -> None:
        """Mark requirements of an App fulfilled for an end user, all of them when ids is None.

        :raises KeyError: for an unknown App. :raises ValueError: for an unknown requirement id.
        """
        with self.lock:
            app = self.get_app(app_id)
            known = {requirement.id for requirement in app.requirements}
            wanted = known if requirement_ids is None else set(requirement_ids)
            unknown = wanted - known
            if unknown:
                raise ValueError(f"App {app.id} has no requirement {', '.join(sorted(unknown))}")
            for requirement_id in wanted:
                self.completed.add((app.id, user_id, requirement_id))

    def reset_requirements(self, app_id: str | None, user_id: str) -> None:
        """Mark every requirement of an App unfulfilled for an end user."""
        with self.lock:
            app = self.get_app(app_id)
            self.completed = {entry for entry in self.completed if entry[:2] != (app.id, user_id)}

    def create_authorization(self, claims: ConnectClaims, requirement_id: str, prefix: str) -> str:
        """Create a link token that fulfils a requirement when its link is opened.

        The link expires with the connect token that asked for it.
        """
        token = prefix + secrets.token_hex(8)
        with self.lock:
            self.authorizations[token] = PendingAuthorization(
                app_id=claims.app_id,
                user_id=claims.user_id,
                requirement_id=requirement_id,
                expires_at=claims.expires_at,
            )
        return token

    def complete_authorization(self, token: str) -> Requirement | None:
        """Fulfil the requirement of an open link and return it, or None when the link is invalid."""
        with self.lock:
            authorization = self.authorizations.get(token)
            if authorization is None or time.time() >= authorization.expires_at:
                return None
            requirement = self.find_requirement(authorization.app_id, authorization.requirement_id)
            self.completed.add((authorization.app_id, authorization.user_id, requirement.id))
            return requirement

    # Runs

    def set_behaviour(self, behaviour: RunBehaviour) -> None:
        """Set how runs created from now on behave."""
        with self.lock:
            self.behaviour = behaviour

    def create_run(
        self,
        app_id: str,
        *,
        run_input: dict[str, Any],
        user_id: str | None,
        session_id: str | None,
        file_ids: list[str],
    ) -> Run:
        """Create a run that follows the current run behaviour."""
        with self.lock:
            behaviour = self.behaviour
            output = behaviour.output if behaviour.output is not None else {"echo": run_input}
            run = Run(
                id=new_id(),
                app_id=app_id,
                user_id=user_id,
                session_id=session_id,
                input=run_input,
                file_ids=file_ids,
                created_at=time.time(),
                outcome=behaviour.outcome,
                duration=float(behaviour.duration),
                output=output,
                artifact_specs=behaviour.artifacts,
            )
            if behaviour.outcome == "awaiting_input":
                run.input_request = example_input_request(new_id())
            run.sequence = next(self._run_sequence)
            self.runs[run.id] = run
            return run

    def add_fixed_run(self, run: Run) -> None:
        """Store a run built by the caller, such as a seeded or ``add_run`` run."""
        with self.lock:
            if run.id in self.runs:
                raise ValueError(f"a run with id {run.id!r} already exists")
            self.get_app(run.app_id)
            if run.fixed_status == "awaiting_input" and run.input_request is None:
                run.input_request = example_input_request(new_id())
            run.sequence = next(self._run_sequence)
            self.runs[run.id] = run

    def find_run(self, app_id: str, run_id: str) -> Run:
        """Return a run of an App.

        :raises HttpError: 404 for an unknown run or a run of another App.
        """
        with self.lock:
            run = self.runs.get(run_id)
            if run is None or run.app_id != app_id:
                raise HttpError(404, f"run {run_id} not found")
            return run

    def run_json(self, run: Run, now: float | None = None) -> dict[str, Any]:
        """Return the run object as sent at ``now``, creating its artifacts once it has completed."""
        now = time.time() if now is None else now
        with self.lock:
            self._create_artifacts_if_completed(run, now)
            return run.to_json(now)

    def _create_artifacts_if_completed(self, run: Run, now: float) -> None:
        status, ended_at = run.status_at(now)
        if status != "completed" or run.artifacts_created:
            return
        run.artifacts_created = True
        specs = run.artifact_specs
        if specs is None:
            specs = (default_result_artifact(run.output),)
        saved_at = format_timestamp(ended_at if ended_at is not None else now)
        for spec in specs:
            artifact = Artifact.from_spec(spec, run_id=run.id, saved_at=saved_at)
            self.artifacts[artifact.id] = artifact
            run.artifact_ids.append(artifact.id)

    def list_runs(self, app_id: str) -> list[tuple[Run, dict[str, Any]]]:
        """Return every run of an App with its run object as sent now."""
        now = time.time()
        with self.lock:
            runs = [run for run in self.runs.values() if run.app_id == app_id]
            return [(run, self.run_json(run, now)) for run in runs]

    def cancel_run(self, app_id: str, run_id: str) -> None:
        """Cancel a run unless it has ended. Canceling an ended run does nothing."""
        now = time.time()
        with self.lock:
            run = self.find_run(app_id, run_id)
            status, _ended_at = run.status_at(now)
            if status in ("completed", "failed", "canceled"):
                return
            run.canceled_at = now

    def send_run_input(self, app_id: str, run_id: str, request_id: str, message: dict[str, Any]) -> None:
        """Resolve the pending input request of a run with ``message``. The run then completes.

        :raises HttpError: 404 for an unknown run, 400 when the run is not awaiting
            input or ``request_id`` is not its pending request.
        """
        now = time.time()
        with self.lock:
            run = self.find_run(app_id, run_id)
            status, _ended_at = run.status_at(now)
            if status != "awaiting_input" or run.input_request is None:
                raise HttpError(400, f"run {run_id} is not awaiting input (status {status})")
            if request_id != run.input_request["id"]:
                raise HttpError(400, details={"data.request_id": "does not match a pending input request"})
            run.input_messages.append(message)
            run.input_received_at = now

    # Artifacts and signed download URLs

    def add_artifact(self, run_id: str, spec: ArtifactSpec, artifact_id: str | None = None) -> str:
        """Add an artifact to a run, saved now, and return its id."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                raise KeyError(f"unknown run {run_id!r}")
            if artifact_id is not None and artifact_id in self.artifacts:
                raise ValueError(f"an artifact with id {artifact_id!r} already exists")
            # The run's own artifacts come first, as they were saved before this one.
            self._create_artifacts_if_completed(run, time.time())
            artifact = Artifact.from_spec(
                spec, run_id=run_id, saved_at=format_timestamp(time.time()), artifact_id=artifact_id
            )
            self.artifacts[artifact.id] = artifact
            run.artifact_ids.append(artifact.id)
            return artifact.id

    def run_artifacts(self, run: Run) -> list[Artifact]:
        """Return the artifacts of a run in the order they were saved."""
        with self.lock:
            self._create_artifacts_if_completed(run, time.time())
            return [self.artifacts[artifact_id] for artifact_id in run.artifact_ids]

    def get_artifact(self, artifact_id: str) -> Artifact:
        """Return an artifact. :raises KeyError: for an unknown id."""
        with self.lock:
            artifact = self.artifacts.get(artifact_id)
        if artifact is None:
            raise KeyError(f"unknown artifact {artifact_id!r}")
        return artifact

    def delete_artifact(self, artifact_id: str) -> None:
        """Delete an artifact's content. Storage then sends 410 for it."""
        with self.lock:
            self.get_artifact(artifact_id).deleted = True

    def sign_download_url(self, artifact_id: str) -> str:
        """Return a signed URL on the storage listener that is valid for ``download_url_ttl`` seconds."""
        expires = math.ceil(time.time() + self.download_url_ttl)
        with self.lock:
            signature = self._url_signature(artifact_id, str(expires))
        return f"{self.storage_url}/artifacts/{artifact_id}?expires={expires}&sig={signature}"

    def _url_signature(self, artifact_id: str, expires: str) -> str:
        message = f"{artifact_id}:{expires}".encode()
        return hmac.new(self._url_secret, message, hashlib.sha256).hexdigest()

    def check_download(self, artifact_id: str, expires: str | None, signature: str | None) -> Artifact:
        """Return the artifact a signed URL points to.

        :raises HttpError: 403 for a missing or wrong signature or an expired URL, 404
            for an unknown artifact, 410 for a deleted one.
        """
        if not expires or not signature:
            raise HttpError(403, "the URL has no expires or sig parameter", code="AccessDenied")
        with self.lock:
            expected = self._url_signature(artifact_id, expires)
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise HttpError(403, "the URL signature does not match", code="SignatureDoesNotMatch")
        if not expires.isdigit() or int(expires) <= time.time():
            raise HttpError(403, "the URL has expired", code="AccessDenied")
        with self.lock:
            artifact = self.artifacts.get(artifact_id)
        if artifact is None:
            raise HttpError(404, "the artifact does not exist", code="NoSuchKey")
        if artifact.deleted:
            raise HttpError(410, "the artifact has been deleted", code="Gone")
        return artifact

    def expire_download_urls(self) -> None:
        """Invalidate every URL signed so far by replacing the signing key."""
        with self.lock:
            self._url_secret = secrets.token_bytes(32)

    # Faults and recorded requests

    def add_fault(self, fault: Fault) -> None:
        """Add a fault after the existing ones."""
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, role: str, method: str, path: str) -> Fault | None:
        """Return the first fault that matches a request and count the request against it."""
        with self.lock:
            for fault in self.faults:
                if not fault.matches(role, method, path):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                return fault
        return None

    def record(self, request: RecordedRequest) -> None:
        """Append a request to the recorded requests."""
        with self.lock:
            self.requests.append(request)


def random_alphanumeric(length: int) -> str:
    """Return ``length`` random characters from [A-Za-z0-9], drawn with :mod:`secrets`."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
