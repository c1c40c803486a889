"""The onboarding example DAG end to end: real Airflow, fake Dynamiq server, real SMTP server.

Runs ``scripts/demo.py`` (what ``make demo`` runs) in a subprocess and checks its summary,
the email, the downloaded files and that no secret reached the logs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from airflow_provider_dynamiq.testing import EXAMPLE_ARTIFACT_ID, EXAMPLE_USER_ID, FakeDynamiqServer

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_onboarding_dag(tmp_path):
    summary_file = tmp_path / "summary.json"
    completed = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--workdir", str(tmp_path / "demo"), "--summary-json", str(summary_file)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    summary = json.loads(summary_file.read_text())

    assert summary["ok"], summary["problems"]
    assert summary["tasks"] == {
        "send_connect_link": "success",
        "wait_for_requirements": "success",
        "download_artifacts": "success",
        "report_artifacts": "success",
    }

    (email,) = summary["emails"]
    assert email["to"] == [f"{EXAMPLE_USER_ID}@example.com"]
    assert email["subject"] == "Action needed: connect your accounts"
    assert "Connect your Gmail account" in email["body_without_link"]
    assert 'href="<connect link>"' in email["body_without_link"]

    (artifact,) = summary["artifacts"]
    path = Path(artifact["path"])
    assert path.name == "triage-summary.pdf"
    assert artifact["size"] == 18231
    content = path.read_bytes()
    assert content.startswith(b"%PDF-")
    with FakeDynamiqServer() as reference:  # seeded content is the same in every server
        assert hashlib.sha256(content).hexdigest() == reference.artifact_sha256(EXAMPLE_ARTIFACT_ID)

    # One check by the email task, at least one "not ready" and one "ready" by the sensor.
    assert summary["status_checks"] >= 3

    assert summary["secret_scan"] == "clean"
    assert "token=***" in summary["link"]
    assert "Result     success" in completed.stdout
