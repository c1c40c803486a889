"""Onboard an end user of a Dynamiq App, then collect the files one of the App's runs produced.

1. ``send_connect_link`` emails the user the hosted connect link, unless they are ready.
2. ``wait_for_requirements`` waits until they have connected every account the App needs.
3. ``download_artifacts`` downloads the run's files into a local folder.
4. ``report_artifacts`` reads the files and reports what it received.

It needs a ``dynamiq_default`` connection (the App) and an ``smtp_default`` connection. The
param defaults match the fake server's seed data (``python -m airflow_provider_dynamiq.testing``),
so ``make demo`` runs it as it is. For a real App, trigger it with your own ``user_id``,
``email`` and ``run_id``.

The sensor is deferrable: after one check it waits in the triggerer, which polls every
``DYNAMIQ_EXAMPLE_POKE_INTERVAL`` seconds (60 by default; the demo sets 2), and it holds no
worker slot while the user takes hours or days.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import Param, dag, task

from airflow_provider_dynamiq.operators.artifacts import DynamiqDownloadRunArtifactsOperator
from airflow_provider_dynamiq.operators.connect import DynamiqSendConnectLinkOperator
from airflow_provider_dynamiq.sensors.requirements import DynamiqRequirementsSensor

POKE_INTERVAL = float(os.environ.get("DYNAMIQ_EXAMPLE_POKE_INTERVAL", "60"))


@dag(
    dag_id="dynamiq_onboarding",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["dynamiq", "example"],
    params={
        "user_id": Param("customer-7421", type="string", minLength=1, description="End user id in the App."),
        "email": Param("customer-7421@example.com", type="string", description="Where to send the connect link."),
        "run_id": Param(
            "8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001", type="string", description="Run whose artifacts to collect."
        ),
        "artifacts_dir": Param("/tmp/dynamiq_onboarding", type="string", description="Local folder for the files."),
    },
)
def dynamiq_onboarding():
    send_connect_link = DynamiqSendConnectLinkOperator(
        task_id="send_connect_link",
        user_id="{{ params.user_id }}",
        to="{{ params.email }}",
    )

    wait_for_requirements = DynamiqRequirementsSensor(
        task_id="wait_for_requirements",
        user_id="{{ params.user_id }}",
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=timedelta(days=7).total_seconds(),
    )

    download_artifacts = DynamiqDownloadRunArtifactsOperator(
        task_id="download_artifacts",
        run_id="{{ params.run_id }}",
        destination="{{ params.artifacts_dir }}/{{ params.run_id }}",
    )

    @task
    def report_artifacts(files: list[dict]) -> dict:
        """Read every downloaded file and report its size and SHA-256."""
        report = []
        for file in files:
            content = Path(file["path"]).read_bytes()
            if len(content) != file["size"]:
                raise ValueError(f"{file['path']} has {len(content)} bytes, expected {file['size']}.")
            report.append(
                {"name": file["name"], "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
            )
            print(f"Received {file['name']} ({file['mime_type']}, {len(content)} bytes) at {file['path']}")
        return {"count": len(report), "total_bytes": sum(item["size"] for item in report), "files": report}

    send_connect_link >> wait_for_requirements >> download_artifacts
    report_artifacts(download_artifacts.output)


dynamiq_onboarding()
