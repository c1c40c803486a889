"""Retried tasks neither email twice nor start a second run, through Airflow's real task state store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_dynamiq.testing import FakeDynamiqServer
from airflow_provider_dynamiq.testing.smtp import SmtpSink

DAGS = Path(__file__).resolve().parents[1] / "dags"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_retries_do_not_repeat_actions(tmp_path):
    with FakeDynamiqServer() as server, SmtpSink() as smtp:
        server.set_run_behaviour(outcome="completed", duration=1)
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(tmp_path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_DYNAMIQ_DEFAULT": json.dumps(server.connection_json()),
                "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp.connection_json()),
            }
        )
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        completed = subprocess.run(
            [AIRFLOW, "dags", "test", "dynamiq_retry_check"], env=env, capture_output=True, text=True, timeout=600
        )
        messages = smtp.messages
        run_posts = [r for r in server.requests if r.method == "POST" and r.path == "/v1/runs"]
    assert len(run_posts) == 1
    assert "worker lost while waiting for the run" in completed.stdout
    assert "Resuming run" in completed.stdout
    assert "failure after the email was sent" in completed.stdout  # the first try failed after sending
    assert "already emailed user retry-user; not sending again" in completed.stdout
    assert [message.recipients for message in messages] == [("retry-user@example.com",)]
    assert completed.returncode == 0, completed.stdout[-3000:]
