"""A DAG that handles every kind of secret the provider sees, for the log-masking test.

``leak_attempt`` creates a connect link itself and prints it and the Access Key on purpose, as
careless user code would. The task runner's masking must turn both into ``***`` in its log.
"""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import BaseHook, dag, task

from airflow_provider_dynamiq.operators.artifacts import (
    DynamiqDownloadRunArtifactsOperator,
    DynamiqListRunArtifactsOperator,
)
from airflow_provider_dynamiq.operators.connect import (
    DynamiqCreateConnectTokenOperator,
    DynamiqSendConnectLinkOperator,
)


@dag(
    dag_id="dynamiq_secret_check",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    params={"user_id": "secret-check-user", "run_id": "8c2c8e2e-2f0a-4f4e-9f4f-6e1a52f0a001", "folder": "/tmp"},
)
def dynamiq_secret_check():
    create_link = DynamiqCreateConnectTokenOperator(task_id="create_link", user_id="{{ params.user_id }}")
    send_link = DynamiqSendConnectLinkOperator(
        task_id="send_link", user_id="{{ params.user_id }}", to="{{ params.user_id }}@example.com"
    )
    list_files = DynamiqListRunArtifactsOperator(task_id="list_files", run_id="{{ params.run_id }}")
    download_files = DynamiqDownloadRunArtifactsOperator(
        task_id="download_files", run_id="{{ params.run_id }}", destination="{{ params.folder }}"
    )

    @task
    def leak_attempt(params: dict) -> None:
        link = DynamiqCreateConnectTokenOperator(task_id="inner", user_id=params["user_id"]).execute({})
        password = BaseHook.get_connection("dynamiq_default").password
        print(f"LEAK-ACCESS-KEY {password}")
        print(f"LEAK-LINK {link['url']}")

    create_link >> send_link >> list_files >> download_files >> leak_attempt()


dynamiq_secret_check()
