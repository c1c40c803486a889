"""The run operator, the run sensor, and deferral of both sensors, against the fake server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqError, DynamiqRunError
from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook
from airflow_provider_dynamiq.operators.runs import DynamiqCreateRunOperator
from airflow_provider_dynamiq.sensors.requirements import DynamiqRequirementsSensor
from airflow_provider_dynamiq.sensors.runs import DynamiqRunSensor
from airflow_provider_dynamiq.testing import EXAMPLE_APP_ID, EXAMPLE_RUN_ID, EXAMPLE_USER_ID
from airflow_provider_dynamiq.triggers.dynamiq import DynamiqRequirementsTrigger, DynamiqRunTrigger

from support import FAST_RETRIES, MemoryStateStore


class RecordingTaskInstance:
    """Stands in for the task instance in the context; records XCom pushes."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


@pytest.fixture
def context():
    return {"ti": RecordingTaskInstance()}


def run_posts(fake_server) -> list:
    return [r for r in fake_server.requests if r.method == "POST" and r.path == "/v1/runs"]


# -- requirements sensor, deferrable --------------------------------------------------


def test_deferrable_sensor_returns_at_once_when_ready(dynamiq_conn, fake_server, context):
    fake_server.complete_requirements(EXAMPLE_USER_ID)
    sensor = DynamiqRequirementsSensor(task_id="wait", user_id=EXAMPLE_USER_ID, deferrable=True)
    assert sensor.execute(context) == {"user_id": EXAMPLE_USER_ID, "ready": True, "status": "complete"}


def test_deferrable_sensor_defers_with_interval_and_timeout(dynamiq_conn, fake_server, context):
    sensor = DynamiqRequirementsSensor(
        task_id="wait", user_id=EXAMPLE_USER_ID, deferrable=True, poke_interval=42, timeout=3600
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, DynamiqRequirementsTrigger)
    assert trigger.poll_interval == 42
    assert trigger.user_id == EXAMPLE_USER_ID
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=3600)
    assert len([r for r in fake_server.requests if r.path == "/v1/requirements/status"]) == 1


def test_default_deferrable_follows_config(tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "from airflow_provider_dynamiq.sensors.requirements import DynamiqRequirementsSensor as S\n"
        "from airflow_provider_dynamiq.sensors.runs import DynamiqRunSensor as R\n"
        "from airflow_provider_dynamiq.operators.runs import DynamiqCreateRunOperator as O\n"
        "print(S(task_id='a', user_id='u').deferrable, R(task_id='b', run_id='r').deferrable,"
        " O(task_id='c', input={}).deferrable)"
    )
    results = {}
    for setting in ("True", "False"):
        env = dict(os.environ, AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE=setting, AIRFLOW_HOME=str(tmp_path))
        completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        results[setting] = completed.stdout.strip().splitlines()[-1]
    assert results == {"True": "True True True", "False": "False False False"}


def test_sensor_complete_accepts_success_only():
    sensor = DynamiqRequirementsSensor(task_id="wait", user_id="u")
    result = sensor.execute_complete({}, {"status": "success", "user_id": "u", "requirements_status": "complete"})
    assert result == {"user_id": "u", "ready": True, "status": "complete"}
    with pytest.raises(AirflowSensorTimeout, match="Timed out"):
        sensor.execute_complete({}, {"status": "timeout", "message": "Timed out waiting."})
    with pytest.raises(DynamiqError, match="bad key"):
        sensor.execute_complete({}, {"status": "error", "message": "bad key"})
    for event in (None, {}, {"status": "maybe"}, "success", {"status": 1}):
        with pytest.raises(DynamiqError):
            sensor.execute_complete({}, event)


def test_soft_fail_turns_timeout_into_skip():
    sensor = DynamiqRequirementsSensor(task_id="wait", user_id="u", soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete({}, {"status": "timeout", "message": "Timed out."})
    with pytest.raises(DynamiqError):
        sensor.execute_complete({}, {"status": "error", "message": "bad key"})


# -- run operator ---------------------------------------------------------------------


def test_run_operator_polls_to_completion(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=0.3, output={"category": "billing"})
    operator = DynamiqCreateRunOperator(task_id="run", input={"ticket": "x"}, user_id=EXAMPLE_USER_ID, poll_interval=0.05)
    result = operator.execute(context)
    assert result["status"] == "completed"
    assert result["output"] == {"category": "billing"}
    assert result["app_id"] == EXAMPLE_APP_ID
    assert context["ti"].xcom["run_id"] == result["run_id"]
    assert context["ti"].xcom["app_id"] == EXAMPLE_APP_ID
    assert context["ti"].xcom["run_url"].endswith(f"/v1/runs/{result['run_id']}")
    (post,) = run_posts(fake_server)
    assert b'"background": true' in post.body or b'"background":true' in post.body


@pytest.mark.parametrize(("outcome", "on_input"), [("failed", "wait"), ("awaiting_input", "fail")])
def test_run_operator_fails_with_run_id(dynamiq_conn, fake_server, context, outcome, on_input):
    fake_server.set_run_behaviour(outcome=outcome, duration=0.2)
    operator = DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=0.05, on_awaiting_input=on_input)
    with pytest.raises(DynamiqRunError) as raised:
        operator.execute(context)
    assert context["ti"].xcom["run_id"] in str(raised.value)


def test_run_operator_wait_timeout(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="awaiting_input", duration=0.1)
    operator = DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=0.05, wait_timeout=0.4)
    with pytest.raises(DynamiqRunError, match="Timed out"):
        operator.execute(context)


def test_run_operator_without_waiting(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=10)
    result = DynamiqCreateRunOperator(task_id="run", input={}, wait_for_completion=False).execute(context)
    assert result["status"] == "created"
    assert len([r for r in fake_server.requests if r.method == "GET" and r.path.startswith("/v1/runs/")]) == 0


@pytest.mark.parametrize("fault", [{"status": 503}, {"reset": True}, {"status": 429, "retry_after": "0"}])
def test_run_creation_is_never_repeated(dynamiq_conn, fake_server, context, fault):
    fake_server.add_fault(method="POST", path="^/v1/runs$", count=1, **fault)
    with pytest.raises(DynamiqError):
        DynamiqCreateRunOperator(task_id="run", input={}).execute(context)
    assert len(run_posts(fake_server)) == 1


def test_run_creation_retried_when_never_sent(monkeypatch, fake_server, context):
    from support import set_connection

    connection = fake_server.connection_json()
    connection["host"] = "http://127.0.0.1:1"  # nothing listens: the request never leaves
    connection["extra"]["max_retries"] = 1
    set_connection(monkeypatch, "dynamiq_default", connection)
    with pytest.raises(DynamiqError, match="ConnectError .*gave up after 2 attempts"):
        DynamiqCreateRunOperator(task_id="run", input={}).execute(context)


def test_run_operator_rejects_bad_input(dynamiq_conn, fake_server, context):
    bad_inputs = (
        {"input": "text"},
        {"input": {"x": float("nan")}},
        {"input": {"when": object()}},
        {"input": {}, "session_id": "not-a-uuid"},
        {"input": {}, "user_id": "None"},
    )
    for kwargs in bad_inputs:
        with pytest.raises(DynamiqConfigError):
            DynamiqCreateRunOperator(task_id="run", **kwargs).execute(context)
    with pytest.raises(DynamiqConfigError, match="on_awaiting_input"):
        DynamiqCreateRunOperator(task_id="run", input={}, on_awaiting_input="maybe")
    assert run_posts(fake_server) == []


def test_run_operator_defers(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=5)
    operator = DynamiqCreateRunOperator(task_id="run", input={}, deferrable=True, poll_interval=7, wait_timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, DynamiqRunTrigger)
    assert trigger.run_id == context["ti"].xcom["run_id"]
    assert trigger.poll_interval == 7
    assert deferred.value.timeout == timedelta(seconds=60)


def test_run_operator_complete(dynamiq_conn, fake_server):
    operator = DynamiqCreateRunOperator(task_id="run", input={})
    result = operator.execute_complete({}, {"status": "success", "run_id": EXAMPLE_RUN_ID, "run_status": "completed"})
    assert result["run_id"] == EXAMPLE_RUN_ID
    assert result["status"] == "completed"
    with pytest.raises(DynamiqError, match="ended with status 'failed'"):
        operator.execute_complete({}, {"status": "error", "run_id": EXAMPLE_RUN_ID, "message": "Run x ended with status 'failed'."})
    with pytest.raises(DynamiqRunError, match="keeps going"):
        operator.execute_complete({}, {"status": "timeout", "run_id": EXAMPLE_RUN_ID, "message": "Timed out."})
    with pytest.raises(DynamiqError):
        operator.execute_complete({}, None)


def test_run_operator_on_kill_cancels(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=30)
    operator = DynamiqCreateRunOperator(task_id="run", input={}, wait_for_completion=False)
    run_id = operator.execute(context)["run_id"]
    operator.on_kill()
    with DynamiqHook() as hook:
        assert hook.get_run(run_id).status == "canceled"


# -- run sensor -----------------------------------------------------------------------


def test_run_sensor_pokes(dynamiq_conn, fake_server, context):
    sensor = DynamiqRunSensor(task_id="wait_run", run_id=EXAMPLE_RUN_ID)
    result = sensor.poke(context)
    assert result.is_done
    assert result.xcom_value["status"] == "completed"


def test_run_sensor_fails_on_failed_run(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="failed", duration=0.05)
    with DynamiqHook() as hook:
        run_id = hook.create_run({}).id
    import time

    time.sleep(0.2)
    with pytest.raises(DynamiqRunError, match=run_id):
        DynamiqRunSensor(task_id="wait_run", run_id=run_id).poke(context)


def test_run_sensor_defers(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=10)
    with DynamiqHook() as hook:
        run_id = hook.create_run({}).id
    sensor = DynamiqRunSensor(task_id="wait_run", run_id=run_id, deferrable=True, poke_interval=3, timeout=100)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert isinstance(deferred.value.trigger, DynamiqRunTrigger)
    assert deferred.value.trigger.cancel_on_kill is False
    assert context["ti"].xcom["run_url"].endswith(run_id)


def test_run_sensor_rejects_bad_run_id(dynamiq_conn, fake_server, context):
    with pytest.raises(DynamiqConfigError, match="run_id"):
        DynamiqRunSensor(task_id="wait_run", run_id="None").execute(context)
    assert fake_server.requests == []


# -- fixes after a new-user trial -------------------------------------------------------



def test_retry_resumes_the_run(dynamiq_conn, fake_server):
    fake_server.set_run_behaviour(outcome="completed", duration=0.3)
    store = MemoryStateStore()
    operator = DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=0.05)
    fake_server.add_fault(method="GET", path="^/v1/runs/", status=404, count=1)
    with pytest.raises(DynamiqError):
        operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})
    first_run = store.values["dynamiq_run_id"]
    result = operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})
    assert result["run_id"] == first_run
    assert len(run_posts(fake_server)) == 1


def test_retry_after_failed_run_starts_new(dynamiq_conn, fake_server):
    fake_server.set_run_behaviour(outcome="failed", duration=0.1)
    store = MemoryStateStore()
    operator = DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=0.05)
    with pytest.raises(DynamiqRunError):
        operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})
    fake_server.set_run_behaviour(outcome="completed", duration=0.1)
    result = operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})
    assert result["status"] == "completed"
    assert len(run_posts(fake_server)) == 2
    assert store.values["dynamiq_run_id"] == result["run_id"]


def test_polling_survives_an_outage(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=0.5)
    fake_server.add_fault(method="GET", path="^/v1/runs/", status=503, count=12)
    operator = DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=0.05)
    operator.hook._retry_policy = FAST_RETRIES  # four attempts per check, so the outage spans three checks
    result = operator.execute(context)
    assert result["status"] == "completed"
    assert len(run_posts(fake_server)) == 1


def test_run_finishing_before_deadline_succeeds(dynamiq_conn, fake_server, context):
    fake_server.set_run_behaviour(outcome="completed", duration=0.3)
    result = DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=5, wait_timeout=1).execute(context)
    assert result["status"] == "completed"


def test_soft_fail_skips_only_timeouts(dynamiq_conn, fake_server):
    from airflow_provider_dynamiq.exceptions import DynamiqAuthenticationError

    sensor = DynamiqRunSensor(task_id="wait_run", run_id=EXAMPLE_RUN_ID, soft_fail=True)
    failed = {"status": "error", "message": "Run x ended with status 'failed'.", "error_class": "DynamiqRunError"}
    with pytest.raises(DynamiqRunError, match="failed"):
        sensor.resume_execution("execute_complete", {"event": failed}, {})
    rejected = {"status": "error", "message": "HTTP 401", "error_class": "DynamiqAuthenticationError", "status_code": 401}
    with pytest.raises(DynamiqAuthenticationError) as raised:
        sensor.resume_execution("execute_complete", {"event": rejected}, {})
    assert raised.value.status_code == 401
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": {"status": "timeout", "message": "Timed out."}}, {})


def test_transient_poke_error_means_not_yet(dynamiq_conn, fake_server, context):
    fake_server.add_fault(path="^/v1/runs/", status=503, count=None)
    sensor = DynamiqRunSensor(task_id="wait_run", run_id=EXAMPLE_RUN_ID)
    sensor.hook._retry_policy = FAST_RETRIES
    assert not sensor.poke(context)


@pytest.mark.parametrize(
    ("interval", "error"), [(0, DynamiqConfigError), (-1, ValueError), (float("inf"), OverflowError)]
)
def test_bad_poke_interval_fails_at_parse(interval, error):
    # Airflow's sensor rejects negative and infinite intervals itself; the provider adds zero.
    with pytest.raises(error, match="poke_interval|infinity"):
        DynamiqRequirementsSensor(task_id="wait", user_id="u", deferrable=True, poke_interval=interval)


@pytest.mark.parametrize("value", ["10", float("inf"), 0, True])
def test_bad_poll_interval_fails_at_parse(value):
    with pytest.raises(DynamiqConfigError, match="poll_interval"):
        DynamiqCreateRunOperator(task_id="run", input={}, poll_interval=value)
