"""Deferred tasks wait in the real triggerer and resume when the fake server changes state."""

from __future__ import annotations

import json
import time

DAG_ID = "dynamiq_deferral_check"
RUN_ID = "deferral-check-1"
USER_ID = "deferral-user"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_sensor_and_run_wait_in_triggerer(airflow_stack, stack_servers):
    server, _ = stack_servers
    server.set_run_behaviour(outcome="completed", duration=20, output={"category": "billing"})
    airflow_stack.trigger(DAG_ID, RUN_ID, {"user_id": USER_ID})

    def both_deferred():
        states = airflow_stack.task_states(DAG_ID, RUN_ID)
        return states if states == {"wait_for_user": "deferred", "run_app": "deferred"} else None

    wait_for(both_deferred, 120, "both tasks to be deferred")
    triggers = airflow_stack.query("SELECT classpath, kwargs FROM trigger")
    classpaths = sorted(row[0] for row in triggers)
    assert classpaths == [
        "airflow_provider_dynamiq.triggers.dynamiq.DynamiqRequirementsTrigger",
        "airflow_provider_dynamiq.triggers.dynamiq.DynamiqRunTrigger",
    ]
    for _, kwargs in triggers:
        assert server.access_key not in kwargs
        assert server.management_token not in kwargs

    # The user connects while the sensor is deferred; the triggerer notices on its next poll.
    checks_before = len([r for r in server.requests if r.query.get("user_id") == [USER_ID]])
    server.complete_requirements(USER_ID)
    wait_for(lambda: airflow_stack.task_states(DAG_ID, RUN_ID).get("wait_for_user") == "success", 60, "the sensor")
    checks_after = len([r for r in server.requests if r.query.get("user_id") == [USER_ID]])
    assert checks_after > checks_before  # polled by the triggerer and the resumed task

    state = airflow_stack.wait_for_run(DAG_ID, RUN_ID, timeout=180)
    assert state == "success", airflow_stack.task_states(DAG_ID, RUN_ID)
    (value,) = airflow_stack.query(
        "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'run_app' AND key = 'return_value'",
        (DAG_ID, RUN_ID),
    )[0]
    result = json.loads(value)
    assert result["status"] == "completed"
    assert result["output"] == {"category": "billing"}
    assert [r for r in server.requests if r.method == "GET" and r.path == f"/v1/runs/{result['run_id']}"]
    xcom = dict(
        airflow_stack.query(
            "SELECT key, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'run_app'", (DAG_ID, RUN_ID)
        )
    )
    assert json.loads(xcom["run_url"]) == f"{server.app_url()}/v1/runs/{result['run_id']}"
    assert json.loads(xcom["_link_DynamiqRunLink"]) == json.loads(xcom["run_url"])  # the extra link Airflow stored
