"""Tasks that fail on their first try after acting, to check what their retry does.

``send`` fails after emailing, so its retry must send nothing. ``run_app`` fails while waiting
for the run it started, so its retry must resume that run instead of starting another.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag

from airflow_provider_dynamiq.operators.connect import DynamiqSendConnectLinkOperator
from airflow_provider_dynamiq.operators.runs import DynamiqCreateRunOperator


class FailAfterFirstSend(DynamiqSendConnectLinkOperator):
    """Sends, then fails on the first try, as a crash after the email would."""

    def execute(self, context):
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("failure after the email was sent")
        return result


class FailWhileWaiting(DynamiqCreateRunOperator):
    """Starts a run, then fails on the first try while waiting, as a lost worker would."""

    def execute(self, context):
        self.first_try = context["ti"].try_number == 1
        return super().execute(context)

    def _poll(self, run, app_id):
        if self.first_try:
            raise RuntimeError("worker lost while waiting for the run")
        return super()._poll(run, app_id)


@dag(dag_id="dynamiq_retry_check", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=False)
def dynamiq_retry_check():
    FailAfterFirstSend.partial(task_id="send", retries=1, retry_delay=timedelta(seconds=0)).expand_kwargs(
        [{"user_id": "retry-user", "to": "retry-user@example.com"}]
    )
    FailWhileWaiting(task_id="run_app", input={"x": 1}, poll_interval=0.5, retries=1, retry_delay=timedelta(seconds=0))


dynamiq_retry_check()
