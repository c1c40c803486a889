"""Write downloaded artifacts safely: untrusted names, complete files only, local or object storage.

File naming rule, applied to each artifact name the server sends:

1. Backslashes count as path separators, and only the last path component is kept, so
   ``../../etc/passwd`` becomes ``passwd`` and ``C:\\x\\report.pdf`` becomes ``report.pdf``.
2. NUL and other control characters are removed; leading and trailing spaces and dots are
   stripped, so the name cannot be ``.``, ``..`` or hidden.
3. An empty result becomes ``artifact-<artifact id>``.
4. When two artifacts of one run end up with the same name (compared without case, for
   case-insensitive file systems), the first in listing order keeps it and each later one gets
   its artifact id before the extension: ``report-<artifact id>.pdf``. A counter follows when
   even that name is taken.
5. Names are shortened to 200 bytes, suffixes included, keeping an extension of up to 16 bytes.
"""

from __future__ import annotations

import fnmatch
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqDownloadError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_dynamiq.models import Artifact

_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# Most file systems accept names of up to 255 bytes. A final name stays within 200, suffixes
# included, which leaves room for the temporary name's dot and ".<12 hex>.part" (19 bytes).
_MAX_NAME_BYTES = 200
# A longer "extension" is taken as part of the name, so shortening never eats the whole stem.
_MAX_EXTENSION_BYTES = 16


def safe_file_name(name: str, artifact_id: str) -> str:
    """Return a file name for ``name`` that cannot leave the destination folder (rules 1 to 3)."""
    last_component = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_CHARACTERS.sub("", last_component).strip(" .")
    if not cleaned:
        return f"artifact-{artifact_id}"
    return _with_suffix(cleaned, "")


def plan_file_names(artifacts: Iterable[Artifact]) -> dict[str, str]:
    """Return a unique file name for each artifact id, applying the module's naming rule."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for artifact in artifacts:
        base = safe_file_name(artifact.name, artifact.id)
        name = base
        attempt = 0
        # A server-chosen name can equal another artifact's disambiguated name, so every
        # candidate is checked, not only the first.
        while name.lower() in taken:
            name = _with_suffix(base, f"-{artifact.id}" + (f"-{attempt}" if attempt else ""))
            attempt += 1
        taken.add(name.lower())
        names[artifact.id] = name
    return names


def _with_suffix(name: str, suffix: str) -> str:
    """Insert ``suffix`` before the extension, shortening the stem to fit :data:`_MAX_NAME_BYTES`."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension.encode("utf-8")) > _MAX_EXTENSION_BYTES:
        stem, extension = name, ""
    tail = suffix + (f".{extension}" if extension else "")
    budget = _MAX_NAME_BYTES - len(tail.encode("utf-8"))
    shortened = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return (shortened or "artifact") + tail


class LocalFolder:
    """A folder on this machine. Files are renamed into place with ``os.replace``, which is atomic."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def location(self, name: str) -> str:
        """Return where the file ``name`` is, as returned to callers."""
        return str(contained_path(self.path, name))

    def existing_size(self, name: str) -> int | None:
        """Return the size of the file ``name`` in bytes, or ``None`` when there is none."""
        candidate = contained_path(self.path, name)
        # A symbolic link is never taken as the download: it is replaced, not followed.
        if candidate.is_symlink() or not candidate.is_file():
            return None
        return candidate.stat().st_size

    def open_temporary(self, name: str) -> tuple[BinaryIO, Path]:
        """Create a hidden temporary file beside ``name``; return it open for writing, and its path."""
        temporary = contained_path(self.path, name).with_name(f".{name}.{secrets.token_hex(6)}.part")
        # 0o666 filtered by the umask gives the permissions that a plain open() gives. mkstemp
        # would make every file 0o600, which a downstream job running as another user cannot read.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        # Unbuffered: each network chunk (64 KiB from httpcore) goes to one write() call. A 1 MiB
        # write buffer made a 1 GiB download 40 % slower, because it copies every byte once more.
        return os.fdopen(descriptor, "wb", buffering=0), temporary

    def commit(self, temporary: Path, name: str) -> str:
        """Move a complete temporary file onto ``name`` and return its location."""
        target = contained_path(self.path, name)
        os.replace(temporary, target)
        return str(target)

    def discard(self, temporary: Path) -> None:
        """Remove a temporary file, if it exists."""
        temporary.unlink(missing_ok=True)


class ObjectStorageFolder:
    """A folder in Airflow object storage (``s3://``, ``gs://``, ``file://``, ...).

    The temporary object is renamed onto the final name when complete. On object stores a rename
    is a copy and a delete, so the final object appears only once it is whole.
    """

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def location(self, name: str) -> str:
        return str(self._child(name))

    def existing_size(self, name: str) -> int | None:
        child = self._child(name)
        try:
            if not child.is_file():
                return None
            return int(child.stat()["size"])
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            return None

    def open_temporary(self, name: str) -> tuple[BinaryIO, ObjectStoragePath]:
        temporary = self._child(f".{name}.{secrets.token_hex(6)}.part")
        return temporary.open("wb"), temporary

    def commit(self, temporary: ObjectStoragePath, name: str) -> str:
        target = self._child(name)
        temporary.rename(target)
        return str(target)

    def discard(self, temporary: ObjectStoragePath) -> None:
        try:
            temporary.unlink(missing_ok=True)
        except FileNotFoundError:
            pass

    def _child(self, name: str) -> ObjectStoragePath:
        if "/" in name or name in ("", ".", ".."):
            raise DynamiqDownloadError(f"Refusing to write {name!r}: it is not a plain file name.", artifact_id="")
        return self.path / name


Folder = LocalFolder | ObjectStorageFolder


def prepare_folder(destination: object) -> Folder:
    """Return the folder to download into, creating it, before any request is sent.

    :param destination: a local path, an ``ObjectStoragePath``, or an object storage URL such as
        ``s3://bucket/prefix`` (any string with ``://``).
    :raises DynamiqConfigError: when it is blank, not a path, or cannot be a folder.
    """
    if destination is None or (isinstance(destination, str) and destination.strip() in ("", "None", "null")):
        raise DynamiqConfigError(
            f"destination is missing or blank ({destination!r}). Pass the folder to download into."
        )
    from airflow.sdk import ObjectStoragePath

    if isinstance(destination, ObjectStoragePath) or (isinstance(destination, str) and "://" in destination):
        try:
            path = destination if isinstance(destination, ObjectStoragePath) else ObjectStoragePath(destination)
            path.mkdir(parents=True, exist_ok=True)
        except (ValueError, OSError) as error:
            raise DynamiqConfigError(f"destination {str(destination)!r} cannot be used: {error}") from None
        return ObjectStorageFolder(path)
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
    return LocalFolder(folder)


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


def write_complete(
    folder: Folder,
    name: str,
    chunks: Iterator[bytes],
    *,
    artifact_id: str,
    expected_size: int,
    description: str,
) -> str:
    """Write ``chunks`` to ``name`` in ``folder`` through a temporary file and return the location.

    The temporary file becomes ``name`` only when the byte count equals ``expected_size``; on any
    failure it is removed, so no partial file remains.
    """
    try:
        handle, temporary = folder.open_temporary(name)
    except OSError as error:
        raise DynamiqDownloadError(
            f"Failed to {description}: could not create a file in {str(folder)!r} ({_reason(error)}).",
            artifact_id=artifact_id,
        ) from None
    try:
        written = 0
        with handle:
            for chunk in chunks:
                _write_all(handle, chunk)
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
        return folder.commit(temporary, name)
    except OSError as error:
        folder.discard(temporary)
        raise DynamiqDownloadError(
            f"Failed to {description}: could not write {folder.location(name)!r} ({_reason(error)}).",
            artifact_id=artifact_id,
        ) from None
    except BaseException:
        folder.discard(temporary)
        raise


def select_artifacts(
    artifacts: Iterable[Artifact], *, name_pattern: str | None = None, mime_types: Iterable[str] | None = None
) -> list[Artifact]:
    """Return the artifacts whose name matches ``name_pattern`` and whose MIME type is in ``mime_types``.

    :param name_pattern: a shell-style pattern (``*.pdf``, ``report-??.csv``), matched with case
        against the name as the server sends it; empty or ``None`` selects every name.
    :param mime_types: exact types (``application/pdf``) or whole families (``image/*``).
    """
    wanted_types = [mime_type.lower() for mime_type in mime_types or []]

    def type_matches(mime_type: str) -> bool:
        mime_type = mime_type.lower()
        return any(
            mime_type == wanted or (wanted.endswith("/*") and mime_type.startswith(wanted[:-1])) for wanted in wanted_types
        )

    return [
        artifact
        for artifact in artifacts
        if (not name_pattern or fnmatch.fnmatchcase(artifact.name, name_pattern))
        and (not wanted_types or type_matches(artifact.mime_type))
    ]


def _write_all(handle: BinaryIO, chunk: bytes) -> None:
    # An unbuffered file may write fewer bytes than given; write the rest rather than lose them.
    view = memoryview(chunk)
    while view:
        count = handle.write(view)
        if count is None or count >= len(view):
            return
        view = view[count:]


def _reason(error: OSError) -> Any:
    return error.strerror or error
