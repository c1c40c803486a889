"""Data model of the fake Dynamiq server: Apps, requirements, runs, artifacts and faults.

Nothing here locks. :class:`~airflow_provider_dynamiq.testing._state.FakeState` owns every
object and guards them with its lock.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

# Identifiers and values of the example App, end user, run and artifact in the Dynamiq
# API reference (docs.getdynamiq.ai/docs/api-reference).
EXAMPLE_APP_ID = "4f6e1c2a-7b8d-4e9f-a1b2-c3d4e5f60718"
EXAMPLE_APP_NAME = "support-triage-agent"
EXAMPLE_APP_DESCRIPTION = "Classifies and drafts replies for inbound support tickets."
EXAMPLE_PROJECT_ID = "91d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
EXAMPLE_WORKFLOW_ID = "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
EXAMPLE_WORKFLOW_VERSION_ID = "3c4d5e6f-7081-4293-a4b5-c6d7e8f90112"
EXAMPLE_RUNTIME_ID = "1a2b3c4d-5e6f-4071-8293-a4b5c6d7e8f9"
EXAMPLE_CREATOR_ID = "5d6e7f80-91a2-4b3c-8d4e-5f60718293a4"
EXAMPLE_USER_ID = "customer-7421"
EXAMPLE_SESSION_ID = "3d3e8a1f-09a6-4f64-9d68-1d2f3a4b5c6d"
EXAMPLE_RUN_ID = "8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001"
EXAMPLE_ARTIFACT_ID = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
EXAMPLE_ARTIFACT_SIZE = 18231
EXAMPLE_REQUIREMENT_ID = "9b8e2f4d-1c3a-4d5e-8f60-718293a4b5c6"
EXAMPLE_INPUT = {
    "ticket_subject": "Charged twice for June invoice",
    "ticket_body": "Hi, my card was charged twice this month. Order #4812.",
}
# The reference elides the reply text as "...", so this reply is invented.
EXAMPLE_OUTPUT = {
    "category": "billing",
    "priority": "high",
    "suggested_reply": "Sorry about the double charge on order #4812. We have refunded the duplicate payment.",
}

ROLES = ("app", "management", "storage")
RUN_OUTCOMES = ("completed", "failed", "awaiting_input")
# Stored statuses from the reference plus the synthetic "awaiting_input".
RUN_STATUSES = ("created", "started", "paused", "completed", "failed", "canceled", "awaiting_input")
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})

# Size of each write when a download is streamed.
STREAM_CHUNK_SIZE = 1024 * 1024
# Period of generated artifact content. It divides STREAM_CHUNK_SIZE, so every chunk of
# generated content starts at the start of the pattern and one buffer serves all chunks.
_PATTERN_PERIOD = 4096
# Largest artifact that artifact_bytes() builds in memory.
MAX_IN_MEMORY_ARTIFACT = 64 * 1024 * 1024

# Fraction of a run's duration that it spends in status "created" before "started".
_CREATED_FRACTION = 0.1


def format_timestamp(seconds: float) -> str:
    """Format a Unix time as RFC 3339 UTC with a ``Z`` suffix and whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_timestamp(text: str) -> float:
    """Parse a timestamp written by :func:`format_timestamp` back into Unix time."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def is_uuid(value: object) -> bool:
    """Return whether ``value`` is a string in canonical UUID form."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _is_finite_seconds(value: object) -> bool:
    """Return whether ``value`` is a real number of seconds from 0 to less than infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return 0 <= value < math.inf


def new_id() -> str:
    """Return a new random UUID string."""
    return str(uuid.uuid4())


@dataclasses.dataclass(frozen=True)
class ArtifactSpec:
    """Description of a file that a run produces.

    Give ``content`` for a small file. Give only ``size`` for generated content: a
    repeating pattern derived from the artifact id, streamed without holding the file
    in memory, so sizes of several GiB cost no memory.

    :param name: file name reported in the artifact listing, sent as given.
    :param content: the exact bytes of the file.
    :param size: file size in bytes. With ``content`` it must equal ``len(content)``.
    :param mime_type: value of ``mime_type`` in the listing and of ``Content-Type`` on download.
    :raises ValueError: when neither ``content`` nor ``size`` is given, or they disagree.
    """

    name: str
    content: bytes | None = None
    size: int | None = None
    mime_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        # Any string is accepted, the empty one and path-like ones included, so that tests
        # can check how a client handles hostile file names.
        if not isinstance(self.name, str):
            raise ValueError(f"ArtifactSpec.name must be a string, got {self.name!r}")
        if self.content is None and self.size is None:
            raise ValueError(f"ArtifactSpec {self.name!r} needs content or size")
        if self.content is not None and not isinstance(self.content, (bytes, bytearray)):
            raise ValueError(f"ArtifactSpec {self.name!r}: content must be bytes")
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0
        ):
            raise ValueError(f"ArtifactSpec {self.name!r}: size must be an integer >= 0, got {self.size!r}")
        if self.content is not None and self.size is not None and self.size != len(self.content):
            raise ValueError(
                f"ArtifactSpec {self.name!r}: size {self.size} does not match len(content) {len(self.content)}"
            )

    @property
    def byte_size(self) -> int:
        """Size of the file in bytes."""
        if self.content is not None:
            return len(self.content)
        assert self.size is not None
        return self.size


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request that reached the fake server, with the status it got.

    :param role: listener that received it: ``"app"``, ``"management"`` or ``"storage"``.
    :param app_id: id of the App whose host received it, or None for the other roles.
    :param method: HTTP method.
    :param path: URL path without the query string.
    :param query: query parameters, each name mapped to all its values.
    :param headers: request headers with lower-case names. Repeated headers are joined with ", ".
    :param body: raw request body.
    :param status: HTTP status sent, or None when a fault reset the connection.
    """

    role: str
    app_id: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int | None


@dataclasses.dataclass(frozen=True)
class FakeApp:
    """Snapshot of a deployed App served by the fake.

    :param id: App UUID.
    :param name: App name.
    :param project_id: UUID of the project that owns the App.
    :param workflow_id: UUID of the deployed workflow. Requirements of the App carry it.
    :param access_type: ``"private"`` (Access Key needed) or ``"public"`` (no credential).
    :param url: base URL of the App host, ``http://127.0.0.1:PORT``.
    :param hostname: ``127.0.0.1:PORT``, as ``hostname`` in the management API.
    """

    id: str
    name: str
    project_id: str
    workflow_id: str
    access_type: str
    url: str
    hostname: str


@dataclasses.dataclass
class Requirement:
    """An end-user requirement of an App: a connection or a linked action-connector account."""

    id: str
    type: str
    name: str
    title: str
    description: str
    spec_data: dict[str, Any]
    workflow_id: str

    def to_status_item(self) -> dict[str, Any]:
        """Return the item shape of ``unsatisfied`` in ``GET /v1/requirements/status``."""
        return {
            "id": self.id,
            "type": self.type,
            "form": {"title": self.title, "description": self.description},
            "spec": {"type": self.type, "data": dict(self.spec_data)},
            "workflow_id": self.workflow_id,
            "name": self.name,
        }

    def to_connect_item(self) -> dict[str, Any]:
        """Return the item shape of ``GET /v1/connect/requirements``."""
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "spec": {"type": self.type, "data": dict(self.spec_data)},
        }

    @property
    def connection_type(self) -> str | None:
        """Dynamiq connection type of a ``connection`` requirement, else None."""
        value = self.spec_data.get("type") if self.type == "connection" else None
        return value if isinstance(value, str) else None

    @property
    def is_oauth2(self) -> bool:
        """Whether the requirement is a connection whose type is fulfilled through OAuth2 consent."""
        connection_type = self.connection_type
        return connection_type is not None and connection_type.endswith("OAuth2")


@dataclasses.dataclass
class App:
    """A deployed App with its requirements. ``hostname`` is set once its listener is bound."""

    id: str
    name: str
    description: str
    project_id: str
    workflow_id: str
    workflow_version_id: str
    runtime_id: str
    access_type: str
    created_at: str
    updated_at: str
    created_by: str
    requirements: list[Requirement] = dataclasses.field(default_factory=list)
    hostname: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the object of ``GET /v1/apps/{app_id}``."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "project_id": self.project_id,
            "hostname": self.hostname,
            "runtime_id": self.runtime_id,
            "workflow_id": self.workflow_id,
            "workflow_version_id": self.workflow_version_id,
            "access_control": {"access_type": self.access_type},
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "updated_by": self.created_by,
        }


def _pattern_block(artifact_id: str) -> bytes:
    """Return one period of the generated content of an artifact."""
    digests = [hashlib.sha256(f"{artifact_id}:{index}".encode()).digest() for index in range(_PATTERN_PERIOD // 32)]
    return b"".join(digests)


@dataclasses.dataclass
class Artifact:
    """A file produced by a run. ``content`` is None for generated content of ``size`` bytes."""

    id: str
    run_id: str
    name: str
    size: int
    mime_type: str
    saved_at: str
    content: bytes | None
    deleted: bool = False
    _sha256: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: ArtifactSpec, *, run_id: str, saved_at: str, artifact_id: str | None = None) -> Artifact:
        """Create an artifact of a run from its spec."""
        content = bytes(spec.content) if spec.content is not None else None
        return cls(
            id=artifact_id or new_id(),
            run_id=run_id,
            name=spec.name,
            size=spec.byte_size,
            mime_type=spec.mime_type,
            saved_at=saved_at,
            content=content,
        )

    def iter_chunks(self) -> Iterator[memoryview]:
        """Yield the content in slices of at most :data:`STREAM_CHUNK_SIZE` bytes.

        Generated content comes from one precomputed buffer of at most one chunk, so a
        slice costs no copy and no hashing.
        """
        if self.content is not None:
            view = memoryview(self.content)
            for offset in range(0, self.size, STREAM_CHUNK_SIZE):
                yield view[offset : offset + STREAM_CHUNK_SIZE]
            return

        buffer_size = min(self.size, STREAM_CHUNK_SIZE)
        repeats = -(-buffer_size // _PATTERN_PERIOD)
        buffer = memoryview((_pattern_block(self.id) * repeats)[:buffer_size])
        for offset in range(0, self.size, STREAM_CHUNK_SIZE):
            yield buffer[: min(STREAM_CHUNK_SIZE, self.size - offset)]

    def read_all(self) -> bytes:
        """Return the whole content.

        :raises ValueError: when generated content exceeds :data:`MAX_IN_MEMORY_ARTIFACT`.
        """
        if self.content is not None:
            return self.content
        if self.size > MAX_IN_MEMORY_ARTIFACT:
            raise ValueError(
                f"artifact {self.id} has {self.size} bytes, more than the {MAX_IN_MEMORY_ARTIFACT} "
                "that artifact_bytes() builds in memory; compare artifact_sha256() instead"
            )
        return b"".join(bytes(chunk) for chunk in self.iter_chunks())

    def sha256(self) -> str:
        """Return the hex SHA-256 of the content, computed once and cached."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            for chunk in self.iter_chunks():
                digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256


@dataclasses.dataclass(frozen=True)
class RunBehaviour:
    """Behaviour of the runs created from now on.

    :param outcome: final status: ``"completed"``, ``"failed"``, or ``"awaiting_input"``
        (the run then waits for one approval before it completes).
    :param duration: seconds from creation until the outcome is reached.
    :param output: output of completed runs. None means ``{"echo": <run input>}``.
    :param artifacts: files of completed runs. None means one ``result.json`` holding the output.
    """

    outcome: str = "completed"
    duration: float = 1.0
    output: Any = None
    artifacts: tuple[ArtifactSpec, ...] | None = None

    def __post_init__(self) -> None:
        if self.outcome not in RUN_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(RUN_OUTCOMES)}, got {self.outcome!r}")
        if not _is_finite_seconds(self.duration):
            raise ValueError(f"duration must be a finite number of seconds >= 0, got {self.duration!r}")
        if self.artifacts is not None and not all(isinstance(spec, ArtifactSpec) for spec in self.artifacts):
            raise ValueError("artifacts must be ArtifactSpec instances")


def default_result_artifact(output: Any) -> ArtifactSpec:
    """Return the ``result.json`` artifact that contains a run's output as JSON."""
    content = json.dumps(output, indent=2, sort_keys=True).encode() + b"\n"
    return ArtifactSpec(name="result.json", content=content, mime_type="application/json")


def example_input_request(request_id: str) -> dict[str, Any]:
    """Return the ``approval_request`` of the reference's get-run example under a new id."""
    return {
        "id": request_id,
        "type": "approval_request",
        "prompt": "Approve issuing a $620 refund to customer-7421?",
        "params": {"amount": 620, "currency": "USD"},
        "editable_params": ["amount"],
    }


@dataclasses.dataclass
class Run:
    """A run of an App. Its status follows from its timestamps when it is read.

    A run with ``fixed_status`` (made by ``add_run``) keeps that status until it is
    canceled or, when awaiting input, receives its input. Any other run is ``created`` for the
    first tenth of ``duration``, then ``started``, and reaches ``outcome`` when
    ``duration`` seconds have passed since ``created_at``.
    """

    id: str
    app_id: str
    user_id: str | None
    session_id: str | None
    input: dict[str, Any]
    file_ids: list[str]
    created_at: float
    outcome: str
    duration: float
    output: Any
    artifact_specs: tuple[ArtifactSpec, ...] | None
    fixed_status: str | None = None
    ended_at: float | None = None
    input_request: dict[str, Any] | None = None
    input_received_at: float | None = None
    input_messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    canceled_at: float | None = None
    artifact_ids: list[str] = dataclasses.field(default_factory=list)
    artifacts_created: bool = False
    # Creation order in the server. It breaks ties between runs created in the same instant.
    sequence: int = 0

    def status_at(self, now: float) -> tuple[str, float | None]:
        """Return the reported status at Unix time ``now`` and the end time, if ended."""
        if self.canceled_at is not None:
            return "canceled", self.canceled_at
        if self.input_received_at is not None:
            return "completed", self.input_received_at
        if self.fixed_status is not None:
            ended_at = self.ended_at if self.fixed_status in TERMINAL_STATUSES else None
            return self.fixed_status, ended_at

        elapsed = now - self.created_at
        if elapsed >= self.duration:
            if self.outcome == "awaiting_input":
                return "awaiting_input", None
            return self.outcome, self.created_at + self.duration
        if elapsed >= self.duration * _CREATED_FRACTION:
            return "started", None
        return "created", None

    def to_json(self, now: float) -> dict[str, Any]:
        """Return the run object as the Runs API sends it at Unix time ``now``."""
        status, ended_at = self.status_at(now)
        data: dict[str, Any] = {
            "id": self.id,
            "app_id": self.app_id,
            "status": status,
            "started_at": format_timestamp(self.created_at),
        }
        if ended_at is not None:
            data["ended_at"] = format_timestamp(ended_at)
        data["input"] = self.input
        if status in TERMINAL_STATUSES:
            data["output"] = self.output if status == "completed" else None
        data["user_id"] = self.user_id
        data["session_id"] = self.session_id
        if status == "awaiting_input" and self.input_request is not None:
            data["input_requests"] = [self.input_request]
        return data


@dataclasses.dataclass
class Fault:
    """A scripted failure for the next ``remaining`` matching requests (None: until cleared)."""

    method: str | None
    path: re.Pattern[str] | None
    role: str | None
    status: int | None
    remaining: int | None
    retry_after: str | None
    delay: float
    reset: bool
    truncate: bool
    body: str | None
    content_type: str | None

    def matches(self, role: str, method: str, path: str) -> bool:
        """Return whether the fault applies to a request."""
        if self.role is not None and self.role != role:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


def make_fault(
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
) -> Fault:
    """Validate the arguments of ``add_fault`` and build the fault.

    :raises ValueError: naming the invalid argument.
    """
    if method is not None and (not isinstance(method, str) or not method):
        raise ValueError(f"method must be an HTTP method name, got {method!r}")
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if path is not None and not isinstance(path, str):
        raise ValueError(f"path must be a regular expression string, got {path!r}")
    try:
        path_pattern = re.compile(path) if path is not None else None
    except re.error as error:
        raise ValueError(f"path is not a valid regular expression: {error}") from None
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError(f"status must be an HTTP status code from 100 to 599, got {status!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be an integer >= 1 or None for no limit, got {count!r}")
    if retry_after is not None and not isinstance(retry_after, str):
        raise ValueError(f"retry_after must be a string sent verbatim, got {retry_after!r}")
    if not _is_finite_seconds(delay):
        raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay!r}")
    if body is not None and not isinstance(body, str):
        raise ValueError(f"body must be a string, got {type(body).__name__}")
    if content_type is not None and not isinstance(content_type, str):
        raise ValueError(f"content_type must be a string, got {content_type!r}")

    if reset and (status is not None or truncate):
        raise ValueError("reset closes the connection without a response, so it excludes status and truncate")
    if status is None and (retry_after is not None or body is not None or content_type is not None):
        raise ValueError("retry_after, body and content_type need a status")
    if status is None and not (reset or truncate or delay > 0):
        raise ValueError("a fault needs at least one of status, delay, reset or truncate")

    return Fault(
        method=method.upper() if method is not None else None,
        path=path_pattern,
        role=role,
        status=status,
        remaining=count,
        retry_after=retry_after,
        delay=float(delay),
        reset=bool(reset),
        truncate=bool(truncate),
        body=body,
        content_type=content_type,
    )


def build_example_pdf(size: int) -> bytes:
    """Return a one-page PDF padded with comment lines to exactly ``size`` bytes.

    The padding sits before the cross-reference table, so the offsets in the table
    stay correct and PDF readers open the file.
    """
    text_stream = b"BT /F1 18 Tf 72 720 Td (Ticket 4812: billing, priority high) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text_stream), text_stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]

    def assemble(padding_length: int) -> bytes:
        document = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, start=1):
            offsets.append(len(document))
            document += b"%d 0 obj\n%s\nendobj\n" % (number, body)

        # Comment lines of 64 bytes. The last one is cut short and closed with a newline,
        # so the padding never runs into the "xref" keyword.
        padding = bytearray()
        line_number = 0
        while len(padding) < padding_length - 1:
            line = b"%% padding line %06d " % line_number
            padding += line + b"." * (63 - len(line)) + b"\n"
            line_number += 1
        if padding_length:
            del padding[padding_length - 1 :]
            padding += b"\n"
        document += padding

        xref_offset = len(document)
        document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        for offset in offsets:
            document += b"%010d 00000 n \n" % offset
        document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_offset)
        return bytes(document)

    unpadded_length = len(assemble(0))
    if unpadded_length > size:
        raise ValueError(f"the example PDF needs at least {unpadded_length} bytes, got {size}")
    padding_length = size - unpadded_length
    document = assemble(padding_length)
    # The startxref number grows by a digit when padding moves it past a power of ten.
    for _attempt in range(3):
        if len(document) == size:
            return document
        padding_length -= len(document) - size
        document = assemble(padding_length)
    raise ValueError(f"cannot pad the example PDF to exactly {size} bytes")
