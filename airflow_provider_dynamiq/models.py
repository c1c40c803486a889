"""Typed results of the Dynamiq API.

The models accept fields the API adds later (``extra="allow"``) so that a new field never
breaks a running DAG. Secrets returned by the API (connect tokens and links, signed download
URLs) are :class:`pydantic.SecretStr`, so ``repr()`` and logs of a model show ``**********``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

#: The only aggregate status the API documents for a user with unmet requirements.
STATUS_INCOMPLETE = "incomplete"
#: The aggregate status the fake server sends once every requirement is met. The public docs
#: do not show this value, so the readiness rule does not depend on it.
STATUS_COMPLETE = "complete"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RequirementForm(_Model):
    """Display text the App builder set for a requirement."""

    title: str = ""
    description: str = ""


class RequirementSpec(_Model):
    """Fulfilment spec of a requirement: a connection type or an action-connector app."""

    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class Requirement(_Model):
    """One end-user requirement that is not met yet."""

    id: str
    type: str
    name: str = ""
    form: RequirementForm = Field(default_factory=RequirementForm)
    spec: RequirementSpec | None = None
    workflow_id: str | None = None

    def summary(self) -> dict[str, str]:
        """Return the JSON-serialisable fields a DAG needs to describe the requirement."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "title": self.form.title,
            "description": self.form.description,
        }


class Readiness(BaseModel):
    """Outcome of the readiness rule, with the warning to log when the response looked odd."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    warning: str | None = None


class RequirementsStatus(_Model):
    """An end user's requirement status on one App.

    ``user_id`` is not part of the API's body; the hook fills it in from the request.
    """

    user_id: str
    status: str
    unsatisfied: list[Requirement] = Field(default_factory=list)

    def readiness(self) -> Readiness:
        """Apply the readiness rule: ready when nothing is unsatisfied and the status is not incomplete.

        Two cases are not documented and get a warning: the two fields disagree (the user is
        then not ready), and an unknown status with nothing unsatisfied (the user is then ready).
        """
        if self.unsatisfied and self.status != STATUS_INCOMPLETE:
            return Readiness(
                ready=False,
                warning=(
                    f"Requirement status of user {self.user_id!r} is {self.status!r} but "
                    f"{len(self.unsatisfied)} requirement(s) are unsatisfied; treating the user as not ready."
                ),
            )
        if self.unsatisfied:
            return Readiness(ready=False)
        if self.status == STATUS_INCOMPLETE:
            return Readiness(
                ready=False,
                warning=(
                    f"Requirement status of user {self.user_id!r} is 'incomplete' but no requirement "
                    "is listed as unsatisfied; treating the user as not ready."
                ),
            )
        if self.status != STATUS_COMPLETE:
            return Readiness(
                ready=True,
                warning=(
                    f"Requirement status of user {self.user_id!r} has the unknown value "
                    f"{self.status!r} and nothing unsatisfied; treating the user as ready."
                ),
            )
        return Readiness(ready=True)

    @property
    def is_complete(self) -> bool:
        """Whether the user has met every requirement of the App."""
        return self.readiness().ready

    def unsatisfied_names(self) -> list[str]:
        """Return each unsatisfied requirement's name, or its id when the name is empty."""
        return [requirement.name or requirement.id for requirement in self.unsatisfied]


class ConnectToken(_Model):
    """A connect token and the hosted connect link that embeds it, both valid until ``expires_at``."""

    user_id: str
    token: SecretStr
    url: SecretStr
    expires_at: AwareDatetime


class App(_Model):
    """A deployed App as the management API describes it."""

    id: str
    name: str = ""
    hostname: str = ""
    project_id: str | None = None


#: Run statuses after which a run never changes again.
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "canceled"})
#: Reported for a started or paused run that waits for human input.
STATUS_AWAITING_INPUT = "awaiting_input"


class RunOutcome(BaseModel):
    """Whether waiting for a run is over, whether it succeeded, and a sentence saying so."""

    model_config = ConfigDict(frozen=True)

    done: bool
    succeeded: bool
    message: str


class InputRequest(_Model):
    """A pending request for human input on a run."""

    id: str
    type: str = ""
    prompt: str = ""


class Run(_Model):
    """An App run. Statuses not listed in :data:`TERMINAL_RUN_STATUSES` count as still running."""

    id: str
    status: str
    app_id: str | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    input: Any = None
    output: Any = None
    user_id: str | None = None
    session_id: str | None = None
    input_requests: list[InputRequest] | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished and will not change again."""
        return self.status in TERMINAL_RUN_STATUSES

    def evaluate(self, *, fail_on_awaiting_input: bool = False) -> RunOutcome:
        """Decide whether waiting for this run is over, and whether it succeeded.

        Only ``completed`` succeeds. ``failed`` and ``canceled`` end the wait as failures, and so
        does ``awaiting_input`` when ``fail_on_awaiting_input`` is set. Every other status,
        unknown ones included, means the run is still going.
        """
        if self.status == "completed":
            return RunOutcome(done=True, succeeded=True, message=f"Run {self.id} completed.")
        if self.is_terminal:
            return RunOutcome(done=True, succeeded=False, message=f"Run {self.id} ended with status {self.status!r}.")
        if self.status == STATUS_AWAITING_INPUT and fail_on_awaiting_input:
            prompts = "; ".join(request.prompt for request in self.input_requests or [] if request.prompt)
            return RunOutcome(
                done=True,
                succeeded=False,
                message=(
                    f"Run {self.id} is waiting for human input"
                    + (f" ({prompts})" if prompts else "")
                    + "; respond to it in Dynamiq, or set on_awaiting_input='wait' to keep waiting for the response."
                ),
            )
        return RunOutcome(done=False, succeeded=False, message=f"Run {self.id} is {self.status!r}.")

    def summary(self) -> dict[str, Any]:
        """Return the run's id, App id, status and output, as JSON for XCom."""
        return {"run_id": self.id, "app_id": self.app_id, "status": self.status, "output": self.output}


class Pagination(_Model):
    """Page information of a list response."""

    page: int
    page_size: int
    page_count: int
    total_count: int


class Artifact(_Model):
    """A file produced by an App run, downloadable from a short-lived signed URL."""

    id: str
    name: str
    size: int = Field(ge=0, description="Size in bytes.")
    mime_type: str = "application/octet-stream"
    type: str = "file"
    saved_at: AwareDatetime | None = None
    download_url: SecretStr

    def metadata(self) -> dict[str, Any]:
        """Return the artifact's JSON-serialisable metadata, without the signed URL."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "mime_type": self.mime_type,
            "saved_at": _isoformat(self.saved_at),
        }


class ArtifactPage(_Model):
    """One page of a run's artifacts."""

    data: list[Artifact]
    pagination: Pagination | None = None


def _isoformat(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
