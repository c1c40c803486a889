"""The artifact collection example DAG under ``airflow dags test`` against the fake server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_dynamiq.testing import EXAMPLE_ARTIFACT_ID, EXAMPLE_RUN_ID, FakeDynamiqServer

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "dynamiq_artifact_collection"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    subprocess.run([AIRFLOW, "db", "migrate"], env=airflow_env(home, {}), check=True, capture_output=True, timeout=300)
    return home


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "DYNAMIQ_EXAMPLE_POKE_INTERVAL": "0.5",
            **extra,
        }
    )
    return env


def dags_test(home: Path, server: FakeDynamiqServer, conf: dict) -> subprocess.CompletedProcess[str]:
    env = airflow_env(home, {"AIRFLOW_CONN_DYNAMIQ_DEFAULT": json.dumps(server.connection_json())})
    return subprocess.run(
        [AIRFLOW, "dags", "test", DAG_ID, "-c", json.dumps(conf)], env=env, capture_output=True, text=True, timeout=600
    )


def test_runs_app_and_collects_result(airflow_home, tmp_path):
    with FakeDynamiqServer() as server:
        server.set_run_behaviour(outcome="completed", duration=1.5, output={"category": "billing"})
        completed = dags_test(airflow_home, server, {"artifacts_dir": str(tmp_path), "input": {"ticket_subject": "x"}})
        posts = [r for r in server.requests if r.method == "POST" and r.path == "/v1/runs"]
        polls = [r for r in server.requests if r.method == "GET" and r.path.startswith("/v1/runs/")]
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "running trigger in line" in completed.stdout  # the run operator deferred
    assert len(posts) == 1
    assert json.loads(posts[0].body)["input"] == {"ticket_subject": "x"}
    assert len(polls) >= 2
    (result,) = tmp_path.glob("*/result.json")
    assert json.loads(result.read_text()) == {"category": "billing"}


def test_collects_existing_run(airflow_home, tmp_path):
    with FakeDynamiqServer() as server:
        completed = dags_test(airflow_home, server, {"artifacts_dir": str(tmp_path), "run_id": EXAMPLE_RUN_ID})
        posts = [r for r in server.requests if r.method == "POST" and r.path == "/v1/runs"]
        digest = server.artifact_sha256(EXAMPLE_ARTIFACT_ID)
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert posts == []
    pdf = tmp_path / EXAMPLE_RUN_ID / "triage-summary.pdf"
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == digest


def test_waits_for_running_existing_run(airflow_home, tmp_path):
    with FakeDynamiqServer() as server:
        server.set_run_behaviour(outcome="completed", duration=3, output={"late": True})
        from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

        os.environ["AIRFLOW_CONN_DYNAMIQ_DEFAULT"] = json.dumps(server.connection_json())
        try:
            with DynamiqHook() as hook:
                run_id = hook.create_run({"x": 1}).id
        finally:
            del os.environ["AIRFLOW_CONN_DYNAMIQ_DEFAULT"]
        completed = dags_test(airflow_home, server, {"artifacts_dir": str(tmp_path), "run_id": run_id})
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert json.loads((tmp_path / run_id / "result.json").read_text()) == {"late": True}


def test_failed_existing_run_fails_the_dag(airflow_home, tmp_path):
    with FakeDynamiqServer() as server:
        server.set_run_behaviour(outcome="failed", duration=0.5)
        run_id = server.add_run(status="failed")
        completed = dags_test(airflow_home, server, {"artifacts_dir": str(tmp_path), "run_id": run_id})
    assert "ended with status 'failed'" in completed.stdout
    assert not (tmp_path / run_id).exists()
