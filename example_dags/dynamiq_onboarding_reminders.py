"""Remind every end user who has not connected their accounts yet, once a day.

1. ``load_users`` reads the users (``user_id`` and ``email``) from the ``users`` param, or from
   the Airflow Variable ``dynamiq_reminder_users`` (a JSON list) when the param is empty.
2. ``check_requirements`` checks all of them concurrently in one task.
3. ``send_reminder`` is mapped over the users who are not ready: one email each, with a fresh
   connect link. A retry of one mapped index never emails that user a second time in the same
   DAG run.
4. ``summarize`` reports how many users were checked, ready, reminded and failed.

It needs a ``dynamiq_default`` and an ``smtp_default`` connection. The defaults match the fake
server's seed data (``python -m airflow_provider_dynamiq.testing``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import Param, Variable, dag, task

from airflow_provider_dynamiq.operators.connect import DynamiqSendConnectLinkOperator
from airflow_provider_dynamiq.operators.requirements import DynamiqRequirementsStatusOperator


@dag(
    dag_id="dynamiq_onboarding_reminders",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["dynamiq", "example"],
    params={
        "users": Param(
            [{"user_id": "customer-7421", "email": "customer-7421@example.com"}],
            type="array",
            description="Users to remind: a list of {user_id, email}. Empty: read the Variable.",
        ),
    },
)
def dynamiq_onboarding_reminders():
    @task
    def load_users(params: dict) -> list[dict]:
        users = params["users"] or Variable.get("dynamiq_reminder_users", default=[], deserialize_json=True)
        for user in users:
            if not isinstance(user, dict) or not user.get("user_id") or not user.get("email"):
                raise ValueError(f"Each user needs a user_id and an email, got {user!r}.")
        return users

    @task
    def user_ids(users: list[dict]) -> list[str]:
        return [user["user_id"] for user in users]

    users = load_users()
    check_requirements = DynamiqRequirementsStatusOperator(
        task_id="check_requirements", user_ids=user_ids(users), max_concurrency=50
    )

    @task
    def not_ready(users: list[dict], statuses: list[dict]) -> list[dict]:
        """Return the keyword arguments of one reminder per user who is not ready."""
        waiting = {item["user_id"] for item in statuses if not item["ready"] and "error" not in item}
        emails = {user["user_id"]: user["email"] for user in users}
        return [{"user_id": user_id, "to": emails[user_id]} for user_id in sorted(waiting)]

    send_reminder = DynamiqSendConnectLinkOperator.partial(
        task_id="send_reminder", retries=2, retry_delay=timedelta(minutes=1)
    ).expand_kwargs(not_ready(users, check_requirements.output))

    @task(trigger_rule="all_done")
    def summarize(statuses: list[dict], sent: list[dict] | None) -> dict:
        results = list(sent or [])
        summary = {
            "checked": len({item["user_id"] for item in statuses}),
            "ready": len({item["user_id"] for item in statuses if item["ready"]}),
            "reminded": sum(1 for item in results if item and item.get("sent")),
            "failed": len({item["user_id"] for item in statuses if "error" in item}),
        }
        print(f"Onboarding reminders: {summary}")
        return summary

    summarize(check_requirements.output, send_reminder.output)


dynamiq_onboarding_reminders()
