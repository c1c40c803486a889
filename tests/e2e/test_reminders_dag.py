"""The reminder example DAG under ``airflow dags test`` with the fake server and real SMTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_dynamiq.testing import FakeDynamiqServer
from airflow_provider_dynamiq.testing.smtp import SmtpSink

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_reminds_each_waiting_user_once(tmp_path):
    users = [
        {"user_id": "customer-7421", "email": "customer-7421@example.com"},
        {"user_id": "ready-user", "email": "ready@example.com"},
        {"user_id": "new-user", "email": "new@example.com"},
    ]
    with FakeDynamiqServer() as server, SmtpSink() as smtp:
        server.complete_requirements("ready-user")
        env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(tmp_path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_DYNAMIQ_DEFAULT": json.dumps(server.connection_json()),
                "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp.connection_json()),
            }
        )
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
        completed = subprocess.run(
            [AIRFLOW, "dags", "test", "dynamiq_onboarding_reminders", "-c", json.dumps({"users": users})],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        messages = smtp.messages
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert sorted(message.recipients[0] for message in messages) == ["customer-7421@example.com", "new@example.com"]
    assert "Onboarding reminders: {'checked': 3, 'ready': 1, 'reminded': 2, 'failed': 0}" in completed.stdout
