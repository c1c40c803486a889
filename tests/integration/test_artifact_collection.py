"""Collecting run artifacts: paging, refresh of expired URLs, re-runs, filters, object storage."""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow.sdk import Asset, ObjectStoragePath

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqDownloadError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook
from airflow_provider_dynamiq.operators.artifacts import DynamiqDownloadRunArtifactsOperator
from airflow_provider_dynamiq.testing import EXAMPLE_ARTIFACT_ID, EXAMPLE_RUN_ID, ArtifactSpec


def storage_requests(fake_server) -> list:
    return [r for r in fake_server.requests if r.role == "storage"]


def listing_requests(fake_server) -> list:
    return [r for r in fake_server.requests if r.path.endswith("/artifacts")]


def test_every_page_is_downloaded(hook, fake_server, tmp_path):
    run_id = fake_server.add_run(artifacts=[ArtifactSpec(f"part-{i:03}.txt", content=f"{i}".encode()) for i in range(250)])
    fake_server.clear_requests()
    results = hook.download_run_artifacts(run_id, tmp_path, max_concurrency=8)
    assert [item["name"] for item in results] == [f"part-{i:03}.txt" for i in range(250)]
    assert len(list(tmp_path.iterdir())) == 250
    assert (tmp_path / "part-249.txt").read_text() == "249"
    assert [r.query["page"] for r in listing_requests(fake_server)] == [["1"], ["2"], ["3"]]
    assert all("authorization" not in r.headers for r in storage_requests(fake_server))


def test_large_file_streams_in_bounded_memory(hook, fake_server, tmp_path):
    size = 200 * 1024 * 1024
    run_id = fake_server.add_run(artifacts=[ArtifactSpec("big.bin", size=size)])
    (artifact,) = hook.list_run_artifacts(run_id)
    tracemalloc.start()
    try:
        path = hook.download_artifact(artifact, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Path(path).stat().st_size == size
    assert peak < 16 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == fake_server.artifact_sha256(artifact.id)


@pytest.mark.parametrize("status", [403, 410])
def test_expired_url_is_refreshed_once(hook, fake_server, tmp_path, status):
    fake_server.clear_requests()
    fake_server.add_fault(role="storage", status=status, count=1)
    (item,) = hook.download_run_artifacts(EXAMPLE_RUN_ID, tmp_path)
    assert Path(item["path"]).stat().st_size == 18231
    assert len(listing_requests(fake_server)) == 2  # the first listing and one refresh
    assert len(storage_requests(fake_server)) == 2


def test_second_expiry_raises_naming_artifact(hook, fake_server, tmp_path):
    fake_server.clear_requests()
    fake_server.add_fault(role="storage", status=403, count=2)
    with pytest.raises(DynamiqDownloadError) as raised:
        hook.download_run_artifacts(EXAMPLE_RUN_ID, tmp_path)
    assert EXAMPLE_ARTIFACT_ID in str(raised.value)
    assert raised.value.artifact_id == EXAMPLE_ARTIFACT_ID
    assert len(listing_requests(fake_server)) == 2
    assert list(tmp_path.iterdir()) == []


def test_truncated_downloads_leave_no_file(hook, fake_server, tmp_path):
    fake_server.add_fault(role="storage", truncate=True, count=None)
    with pytest.raises(Exception, match=EXAMPLE_ARTIFACT_ID):
        hook.download_run_artifacts(EXAMPLE_RUN_ID, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rerun_skips_complete_files(dynamiq_conn, fake_server, tmp_path):
    operator = DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path))
    first = operator.execute({})
    modified = Path(first[0]["path"]).stat().st_mtime_ns
    fake_server.clear_requests()
    second = operator.execute({})
    assert second == first
    assert storage_requests(fake_server) == []
    assert Path(first[0]["path"]).stat().st_mtime_ns == modified


def test_rerun_replaces_wrong_size(dynamiq_conn, fake_server, tmp_path):
    (tmp_path / "triage-summary.pdf").write_bytes(b"partial from elsewhere")
    DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path)).execute({})
    assert (tmp_path / "triage-summary.pdf").stat().st_size == 18231


def test_overwrite_downloads_again(dynamiq_conn, fake_server, tmp_path):
    DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path)).execute({})
    fake_server.clear_requests()
    DynamiqDownloadRunArtifactsOperator(
        task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path), overwrite=True
    ).execute({})
    assert len(storage_requests(fake_server)) == 1


def test_filters_by_name_and_type(hook, fake_server, tmp_path):
    specs = [
        ArtifactSpec("a.pdf", content=b"1", mime_type="application/pdf"),
        ArtifactSpec("b.png", content=b"2", mime_type="image/png"),
        ArtifactSpec("c.jpg", content=b"3", mime_type="image/jpeg"),
        ArtifactSpec("d.csv", content=b"4", mime_type="text/csv"),
    ]
    run_id = fake_server.add_run(artifacts=specs)
    by_name = hook.download_run_artifacts(run_id, tmp_path / "pdf", name_pattern="*.pdf")
    by_type = hook.download_run_artifacts(run_id, tmp_path / "images", mime_types=["image/*"])
    exact = hook.download_run_artifacts(run_id, tmp_path / "csv", mime_types=["TEXT/CSV"])
    assert [item["name"] for item in by_name] == ["a.pdf"]
    assert [item["name"] for item in by_type] == ["b.png", "c.jpg"]
    assert [item["name"] for item in exact] == ["d.csv"]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["b.png", "c.jpg"]


def test_concurrency_is_bounded(hook, fake_server, tmp_path, monkeypatch):
    run_id = fake_server.add_run(artifacts=[ArtifactSpec(f"f{i}.txt", content=b"x") for i in range(12)])
    active, peak, lock = [0], [0], threading.Lock()
    original = DynamiqHook._download_into

    def tracking(self, *args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)  # keep each download open long enough to overlap
            return original(self, *args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(DynamiqHook, "_download_into", tracking)
    results = hook.download_run_artifacts(run_id, tmp_path, max_concurrency=3)
    assert len(results) == 12
    assert peak[0] == 3


@pytest.mark.parametrize("value", [0, 33, "4", True])
def test_bad_concurrency_sends_nothing(hook, fake_server, tmp_path, value):
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="max_concurrency"):
        hook.download_run_artifacts(EXAMPLE_RUN_ID, tmp_path, max_concurrency=value)
    assert fake_server.requests == []


def test_file_url_destination(dynamiq_conn, fake_server, tmp_path):
    (item,) = DynamiqDownloadRunArtifactsOperator(
        task_id="dl", run_id=EXAMPLE_RUN_ID, destination=f"file://{tmp_path}/lake"
    ).execute({})
    assert item["path"] == f"file://{tmp_path}/lake/triage-summary.pdf"
    assert (tmp_path / "lake" / "triage-summary.pdf").stat().st_size == 18231
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["triage-summary.pdf"]


def test_in_memory_object_storage(dynamiq_conn, fake_server):
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow.sdk.io import attach

    memory = MemoryFileSystem()
    attach("memory", fs=memory)
    destination = ObjectStoragePath("memory://bucket/runs/")
    first = DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=destination).execute({})
    (item,) = first
    stored = ObjectStoragePath(item["path"])
    assert item["path"] == "memory://bucket/runs/triage-summary.pdf"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == fake_server.artifact_sha256(EXAMPLE_ARTIFACT_ID)
    assert sorted(p.name for p in destination.iterdir()) == ["triage-summary.pdf"]  # no temporary left
    fake_server.clear_requests()
    DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=destination).execute({})
    assert storage_requests(fake_server) == []  # present with the right size: skipped


def test_truncated_object_storage_leaves_nothing(dynamiq_conn, fake_server):
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow.sdk.io import attach

    attach("memory", fs=MemoryFileSystem())
    destination = ObjectStoragePath("memory://bucket/cut/")
    fake_server.add_fault(role="storage", truncate=True, count=None)
    with pytest.raises(Exception, match=EXAMPLE_ARTIFACT_ID):
        DynamiqDownloadRunArtifactsOperator(task_id="dl", run_id=EXAMPLE_RUN_ID, destination=destination).execute({})
    assert list(destination.iterdir()) == []


def test_outlets_get_the_paths(dynamiq_conn, fake_server, tmp_path):
    asset = Asset("dynamiq://support-triage/artifacts")
    events = defaultdict(lambda: SimpleNamespace(extra={}))
    operator = DynamiqDownloadRunArtifactsOperator(
        task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path), outlets=[asset]
    )
    (item,) = operator.execute({"outlet_events": events})
    assert events[asset].extra == {"run_id": EXAMPLE_RUN_ID, "paths": [item["path"]]}


def test_mime_types_must_be_a_list(dynamiq_conn, fake_server, tmp_path):
    fake_server.clear_requests()
    with pytest.raises(DynamiqConfigError, match="mime_types"):
        DynamiqDownloadRunArtifactsOperator(
            task_id="dl", run_id=EXAMPLE_RUN_ID, destination=str(tmp_path), mime_types="image/png"
        ).execute({})
    assert fake_server.requests == []


def test_disambiguated_name_never_collides(hook, fake_server, tmp_path):
    run_id = fake_server.add_run(artifacts=[])
    first = fake_server.add_artifact(run_id, ArtifactSpec("r.pdf", content=b"AAAA"))
    second = fake_server.add_artifact(run_id, ArtifactSpec("r.pdf", content=b"BBBBBBBBBB"))
    # A third artifact named like the second one's disambiguated name, listed after both.
    third = fake_server.add_artifact(run_id, ArtifactSpec(f"r-{second}.pdf", content=b"C" * 18))
    results = hook.download_run_artifacts(run_id, tmp_path)
    contents = {item["id"]: Path(item["path"]).read_bytes() for item in results}
    assert contents == {first: b"AAAA", second: b"BBBBBBBBBB", third: b"C" * 18}
    assert len({item["path"] for item in results}) == 3


def test_long_duplicate_names_fit(hook, fake_server, tmp_path):
    run_id = fake_server.add_run(artifacts=[ArtifactSpec("L" * 300 + ".pdf", content=b"1"), ArtifactSpec("L" * 301 + ".pdf", content=b"2")])
    results = hook.download_run_artifacts(run_id, tmp_path)
    names = [Path(item["path"]).name for item in results]
    assert len(set(names)) == 2
    assert all(len(name.encode()) <= 200 for name in names)
    assert all(name.endswith(".pdf") for name in names)


def test_long_extension_does_not_hide_file(hook, fake_server, tmp_path):
    run_id = fake_server.add_run(artifacts=[ArtifactSpec("ab." + "b" * 300, content=b"1")])
    (item,) = hook.download_run_artifacts(run_id, tmp_path)
    assert not Path(item["path"]).name.startswith(".")


def test_symlink_in_destination_is_replaced(hook, fake_server, tmp_path):
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"x" * 18231)
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "triage-summary.pdf").symlink_to(outside)
    (item,) = hook.download_run_artifacts(EXAMPLE_RUN_ID, destination)
    assert not Path(item["path"]).is_symlink()
    assert outside.read_bytes() == b"x" * 18231
    assert hashlib.sha256(Path(item["path"]).read_bytes()).hexdigest() == fake_server.artifact_sha256(EXAMPLE_ARTIFACT_ID)


def test_reset_download_raises_download_error(hook, fake_server, tmp_path):
    fake_server.add_fault(role="storage", reset=True, count=None)
    with pytest.raises(DynamiqDownloadError) as raised:
        hook.download_run_artifacts(EXAMPLE_RUN_ID, tmp_path)
    assert raised.value.artifact_id == EXAMPLE_ARTIFACT_ID
    assert raised.value.status_code is None
