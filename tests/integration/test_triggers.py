"""Triggers against the fake server, run in the test's event loop as the triggerer would."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow.sdk.module_loading import import_string
from airflow.triggers.base import TriggerEvent

from airflow_provider_dynamiq.testing import EXAMPLE_USER_ID
from airflow_provider_dynamiq.triggers.dynamiq import (
    SHARED_HOOKS,
    DynamiqRequirementsTrigger,
    DynamiqRunTrigger,
)

from support import set_connection

async def first_event(trigger, timeout: float = 10) -> TriggerEvent:
    async def collect():
        async for event in trigger.run():
            return event

    return await asyncio.wait_for(collect(), timeout)


def test_requirements_trigger_serialization_round_trip(fake_server):
    trigger = DynamiqRequirementsTrigger(user_id="u-1", dynamiq_conn_id="c", poll_interval=5, timeout_at=123.0)
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs == {"user_id": "u-1", "dynamiq_conn_id": "c", "poll_interval": 5.0, "timeout_at": 123.0}
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_run_trigger_serialization_round_trip():
    trigger = DynamiqRunTrigger(run_id="r", poll_interval=2, fail_on_awaiting_input=True, cancel_on_kill=False)
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)


def test_trigger_kwargs_hold_no_credential(dynamiq_conn, fake_server):
    _, kwargs = DynamiqRequirementsTrigger(user_id="u").serialize()
    assert fake_server.access_key not in json.dumps(kwargs)
    assert set(kwargs) == {"user_id", "dynamiq_conn_id", "poll_interval", "timeout_at"}


async def test_ready_user_gives_success(dynamiq_conn, fake_server):
    fake_server.complete_requirements(EXAMPLE_USER_ID)
    event = await first_event(DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05))
    assert event.payload == {"status": "success", "requirements_status": "complete", "user_id": EXAMPLE_USER_ID}


async def test_waits_until_user_is_ready(dynamiq_conn, fake_server):
    def status_checks() -> int:
        return len([r for r in fake_server.requests if r.path == "/v1/requirements/status"])

    trigger = DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05)
    task = asyncio.create_task(first_event(trigger))
    deadline = time.monotonic() + 10
    while status_checks() < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert status_checks() >= 2
    assert not task.done()  # polled twice and still waiting
    fake_server.complete_requirements(EXAMPLE_USER_ID)
    event = await task
    assert event.payload["status"] == "success"
    assert status_checks() >= 3


async def test_transient_errors_keep_waiting(dynamiq_conn, fake_server, capsys):
    connection = dict(dynamiq_conn, extra={**dynamiq_conn["extra"], "max_retries": 0})
    with pytest.MonkeyPatch.context() as monkeypatch:
        set_connection(monkeypatch, "dynamiq_default", connection)
        fake_server.complete_requirements(EXAMPLE_USER_ID)
        fake_server.add_fault(path="/v1/requirements/status", status=503, count=3)
        event = await first_event(DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05))
    assert event.payload["status"] == "success"
    assert "polling again" in capsys.readouterr().out


async def test_bad_credential_gives_error_event(monkeypatch, fake_server):
    connection = fake_server.connection_json()
    connection["password"] = "dynamiq_acc_wrong"
    set_connection(monkeypatch, "dynamiq_default", connection)
    event = await first_event(DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05))
    assert event.payload["status"] == "error"
    assert "Access Key" in event.payload["message"]
    assert "dynamiq_acc_wrong" not in event.payload["message"]


async def test_deadline_gives_timeout_event(dynamiq_conn, fake_server):
    trigger = DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05, timeout_at=time.time() + 0.3)
    started = time.monotonic()
    event = await first_event(trigger)
    assert event.payload["status"] == "timeout"
    assert EXAMPLE_USER_ID in event.payload["message"]
    assert 0.25 < time.monotonic() - started < 2


async def test_cancellation_closes_shared_client(dynamiq_conn, fake_server):
    triggers = [DynamiqRequirementsTrigger(user_id=f"user-{n}", poll_interval=0.05) for n in range(3)]
    tasks = [asyncio.create_task(first_event(trigger)) for trigger in triggers]
    await asyncio.sleep(0.3)
    assert len(SHARED_HOOKS) == 1
    (hook, _), = SHARED_HOOKS._entries.values()
    client = await hook.aclient()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(SHARED_HOOKS) == 0
    assert client.is_closed


async def test_triggers_share_one_connection_read(dynamiq_conn, fake_server, monkeypatch):
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    reads = []
    original = DynamiqHook.aget_connection.__func__

    async def counting(cls, conn_id):
        reads.append(conn_id)
        return await original(cls, conn_id)

    monkeypatch.setattr(DynamiqHook, "aget_connection", classmethod(counting))
    fake_server.complete_requirements(EXAMPLE_USER_ID)
    events = await asyncio.gather(
        *(first_event(DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05)) for _ in range(20))
    )
    assert all(event.payload["status"] == "success" for event in events)
    assert reads == ["dynamiq_default"]


async def test_run_trigger_success(dynamiq_conn, fake_server):
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    fake_server.set_run_behaviour(outcome="completed", duration=0.3)
    with DynamiqHook() as hook:
        run_id = hook.create_run({"ticket": "x"}).id
    event = await first_event(DynamiqRunTrigger(run_id=run_id, poll_interval=0.05))
    assert event.payload == {
        "status": "success",
        "run_status": "completed",
        "message": f"Run {run_id} completed.",
        "run_id": run_id,
    }


@pytest.mark.parametrize(("outcome", "fail_on_input", "run_status"), [("failed", False, "failed"), ("awaiting_input", True, "awaiting_input")])
async def test_run_trigger_error(dynamiq_conn, fake_server, outcome, fail_on_input, run_status):
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    fake_server.set_run_behaviour(outcome=outcome, duration=0.2)
    with DynamiqHook() as hook:
        run_id = hook.create_run({"ticket": "x"}).id
    event = await first_event(DynamiqRunTrigger(run_id=run_id, poll_interval=0.05, fail_on_awaiting_input=fail_on_input))
    assert event.payload["status"] == "error"
    assert event.payload["run_status"] == run_status
    assert run_id in event.payload["message"]


async def test_run_trigger_on_kill_cancels(dynamiq_conn, fake_server):
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    fake_server.set_run_behaviour(outcome="completed", duration=30)
    with DynamiqHook() as hook:
        run_id = hook.create_run({"ticket": "x"}).id
    trigger = DynamiqRunTrigger(run_id=run_id, poll_interval=0.05)
    task = asyncio.create_task(first_event(trigger))
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await trigger.on_kill()
    with DynamiqHook() as hook:
        assert hook.get_run(run_id).status == "canceled"


async def test_run_done_before_deadline_is_seen(dynamiq_conn, fake_server):
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    fake_server.set_run_behaviour(outcome="completed", duration=0.3)
    with DynamiqHook() as hook:
        run_id = hook.create_run({}).id
    # The next poll would come after the deadline; the trigger polls once more at the deadline.
    trigger = DynamiqRunTrigger(run_id=run_id, poll_interval=30, timeout_at=time.time() + 1)
    event = await first_event(trigger)
    assert event.payload["status"] == "success"


async def test_timeout_names_last_status(dynamiq_conn, fake_server):
    trigger = DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05, timeout_at=time.time() + 0.3)
    event = await first_event(trigger)
    assert event.payload["status"] == "timeout"
    assert "last status 'incomplete', 1 unsatisfied" in event.payload["message"]


async def test_slow_polls_do_not_extend_deadline(dynamiq_conn, fake_server):
    fake_server.add_fault(path="/v1/requirements/status", delay=0.4, count=None)
    trigger = DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05, timeout_at=time.time() + 0.5)
    event = await first_event(trigger, timeout=5)
    assert event.payload["status"] == "timeout"


async def test_error_event_names_error_class(monkeypatch, fake_server):
    connection = fake_server.connection_json()
    connection["password"] = "dynamiq_acc_wrong"
    set_connection(monkeypatch, "dynamiq_default", connection)
    event = await first_event(DynamiqRequirementsTrigger(user_id=EXAMPLE_USER_ID, poll_interval=0.05))
    assert event.payload["error_class"] == "DynamiqAuthenticationError"
    assert event.payload["status_code"] == 401
