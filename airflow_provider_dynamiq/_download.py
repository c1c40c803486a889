"""Write downloaded artifacts safely: untrusted names, complete files only.

File naming rule, applied to each artifact name the server sends:

1. Backslashes count as path separators, and only the last path component is kept, so
   ``../../etc/passwd`` becomes ``passwd`` and ``C:\\x\\report.pdf`` becomes ``report.pdf``.
2. NUL and other control characters are removed; leading and trailing spaces and dots are
   stripped, so the name cannot be ``.``, ``..`` or hidden.
3. An empty result becomes ``artifact-<artifact id>``.
4. When two artifacts of one run end up with the same name (compared without case, for
   case-insensitive file systems), the first in listing order keeps it and each later one gets
   its artifact id before the extension: ``report-<artifact id>.pdf``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqDownloadError

if TYPE_CHECKING:
    import httpx

    from airflow_provider_dynamiq.models import Artifact

CHUNK_SIZE = 1024 * 1024  # bytes per read from the response stream
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Most file systems accept names of up to 255 bytes; the rest is left for the temporary name's
# prefix and suffix.
_MAX_NAME_BYTES = 200


def safe_file_name(name: str, artifact_id: str) -> str:
    """Return a file name for ``name`` that cannot leave the destination folder (rules 1 to 3)."""
    last_component = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_CHARACTERS.sub("", last_component).strip(" .")
    if not cleaned:
        return f"artifact-{artifact_id}"
    while len(cleaned.encode("utf-8")) > _MAX_NAME_BYTES:
        stem, dot, suffix = cleaned.rpartition(".")
        cleaned = (stem[:-1] + dot + suffix) if dot and stem else cleaned[:-1]
    return cleaned


def plan_file_names(artifacts: Iterable[Artifact]) -> dict[str, str]:
    """Return a unique file name for each artifact id, applying the module's naming rule."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for artifact in artifacts:
        name = safe_file_name(artifact.name, artifact.id)
        if name.lower() in taken:
            stem, dot, suffix = name.rpartition(".")
            name = f"{stem}-{artifact.id}.{suffix}" if dot and stem else f"{name}-{artifact.id}"
        taken.add(name.lower())
        names[artifact.id] = name
    return names


def prepare_folder(destination: object) -> Path:
    """Return ``destination`` as an absolute folder path, creating it, before any request is sent.

    :raises DynamiqConfigError: when it is blank, not a path, or cannot be a folder.
    """
    if destination is None or (isinstance(destination, str) and destination.strip() in ("", "None", "null")):
        raise DynamiqConfigError(
            f"destination is missing or blank ({destination!r}). Pass the local folder to download into."
        )
    if not isinstance(destination, (str, os.PathLike)):
        raise DynamiqConfigError(f"destination must be a path, got {type(destination).__name__} {destination!r}.")
    folder = Path(destination).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DynamiqConfigError(f"destination {str(folder)!r} exists and is not a folder. Pass a folder path.") from None
    except OSError as error:
        raise DynamiqConfigError(
            f"destination {str(folder)!r} cannot be created ({error.strerror or error}). Pass a folder this "
            "worker can write to."
        ) from None
    return folder


def contained_path(folder: Path, file_name: str) -> Path:
    """Return ``folder / file_name``, raising when the result would not sit directly in ``folder``."""
    root = folder.resolve()
    candidate = root / file_name
    if candidate.parent != root or file_name in ("", ".", ".."):
        raise DynamiqDownloadError(
            f"Refusing to write {file_name!r}: it is not a plain file name inside {str(root)!r}.",
            artifact_id="",
        )
    return candidate


def stream_to_file(
    response: httpx.Response, target: Path, *, artifact_id: str, expected_size: int, description: str
) -> None:
    """Stream ``response`` into ``target`` through a temporary file in the same folder.

    The temporary file is renamed onto ``target`` only when the byte count equals
    ``expected_size``; on any failure it is removed, so no partial file remains.
    """
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        # 0o666 filtered by the umask gives the permissions that a plain open() gives. mkstemp
        # would make every file 0o600, which a downstream job running as another user cannot read.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        raise DynamiqDownloadError(
            f"Failed to {description}: could not create a file in {str(target.parent)!r} "
            f"({error.strerror or error}).",
            artifact_id=artifact_id,
        ) from None
    try:
        written = 0
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                handle.write(chunk)
                written += len(chunk)
                if written > expected_size:
                    break
        if written != expected_size:
            received = f"more than {expected_size}" if written > expected_size else str(written)
            raise DynamiqDownloadError(
                f"Failed to {description}: received {received} bytes, but the listing gives a size of "
                f"{expected_size} bytes. The download was discarded.",
                artifact_id=artifact_id,
            )
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise DynamiqDownloadError(
            f"Failed to {description}: could not write {str(target)!r} ({error.strerror or error}).",
            artifact_id=artifact_id,
        ) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
