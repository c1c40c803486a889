"""A DAG whose two tasks wait deferred: one for an end user, one for an App run."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import dag

from airflow_provider_dynamiq.operators.runs import DynamiqCreateRunOperator
from airflow_provider_dynamiq.sensors.requirements import DynamiqRequirementsSensor


@dag(
    dag_id="dynamiq_deferral_check",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    params={"user_id": "deferral-user"},
)
def dynamiq_deferral_check():
    DynamiqRequirementsSensor(
        task_id="wait_for_user", user_id="{{ params.user_id }}", deferrable=True, poke_interval=1, timeout=600
    )
    DynamiqCreateRunOperator(
        task_id="run_app", input={"ticket_subject": "Deferred"}, deferrable=True, poll_interval=1, wait_timeout=600
    )


dynamiq_deferral_check()
