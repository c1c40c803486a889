"""Run a Dynamiq App, wait for it in the triggerer, and hand the files it produced to the next task.

1. ``run_app`` starts a background run with the ``input`` param and waits for it, deferred.
   Set the ``run_id`` param instead to collect the files of an existing run:
   ``wait_for_existing_run`` then waits for that run, deferred, and fails if the run fails.
2. ``download_artifacts`` downloads every file of the run into a local folder.
3. ``read_artifacts`` reads each file and reports what it received.

It needs a ``dynamiq_default`` connection. Against the fake server
(``python -m airflow_provider_dynamiq.testing``) every run completes after a second with one
``result.json`` artifact. ``DYNAMIQ_EXAMPLE_POKE_INTERVAL`` sets the seconds between run
status checks (10 by default).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from airflow.sdk import Param, dag, task

from airflow_provider_dynamiq.operators.artifacts import DynamiqDownloadRunArtifactsOperator
from airflow_provider_dynamiq.operators.runs import DynamiqCreateRunOperator
from airflow_provider_dynamiq.sensors.runs import DynamiqRunSensor

POLL_INTERVAL = float(os.environ.get("DYNAMIQ_EXAMPLE_POKE_INTERVAL", "10"))


@dag(
    dag_id="dynamiq_artifact_collection",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["dynamiq", "example"],
    # Renders "{{ params.input }}" as the dict it is, not as its string form.
    render_template_as_native_obj=True,
    params={
        "input": Param(
            {"ticket_subject": "Charged twice for June invoice", "ticket_body": "Order #4812."},
            type="object",
            description="The workflow's input fields.",
        ),
        "user_id": Param("customer-7421", type="string", description="End user the run acts for."),
        "run_id": Param("", type="string", description="Collect this existing run instead of starting one."),
        "artifacts_dir": Param("/tmp/dynamiq_artifacts", type="string", description="Local folder for the files."),
    },
)
def dynamiq_artifact_collection():
    @task.branch
    def choose_run(params: dict) -> str:
        return "wait_for_existing_run" if params["run_id"] else "run_app"

    run_app = DynamiqCreateRunOperator(
        task_id="run_app",
        input="{{ params.input }}",
        user_id="{{ params.user_id }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        wait_timeout=6 * 3600,
    )

    wait_for_existing_run = DynamiqRunSensor(
        task_id="wait_for_existing_run",
        run_id="{{ params.run_id or 'no-run-id' }}",
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=6 * 3600,
    )

    @task(trigger_rule="none_failed_min_one_success")
    def pick_run_id(params: dict, ti=None) -> str:
        return ti.xcom_pull(task_ids="run_app", key="run_id") or params["run_id"]

    run_id = pick_run_id()
    download_artifacts = DynamiqDownloadRunArtifactsOperator(
        task_id="download_artifacts",
        run_id=run_id,
        destination="{{ params.artifacts_dir }}/{{ ti.xcom_pull(task_ids='pick_run_id') }}",
    )

    @task
    def read_artifacts(files: list[dict]) -> dict:
        """Read every downloaded file and report its size and SHA-256; print JSON files."""
        report = []
        for file in files:
            content = Path(file["path"]).read_bytes()
            report.append({"name": file["name"], "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})
            if file["mime_type"] == "application/json":
                print(f"{file['name']}: {json.loads(content)}")
        return {"count": len(report), "files": report}

    branch = choose_run()
    branch >> [run_app, wait_for_existing_run] >> run_id
    read_artifacts(download_artifacts.output)


dynamiq_artifact_collection()
