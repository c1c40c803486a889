"""Checking many end users at once against the fake server."""

from __future__ import annotations

import json

import pytest

from airflow_provider_dynamiq.exceptions import DynamiqConfigError, DynamiqError
from airflow_provider_dynamiq.operators.requirements import DynamiqRequirementsStatusOperator


def status_checks(fake_server) -> list:
    return [r for r in fake_server.requests if r.path == "/v1/requirements/status"]


def test_results_in_input_order(dynamiq_conn, fake_server):
    user_ids = [f"user-{n:03}" for n in range(60)]
    for user_id in user_ids[::3]:
        fake_server.complete_requirements(user_id)
    results = DynamiqRequirementsStatusOperator(task_id="check", user_ids=user_ids, max_concurrency=7).execute({})
    assert [item["user_id"] for item in results] == user_ids
    assert [item["ready"] for item in results] == [n % 3 == 0 for n in range(60)]
    not_ready = results[1]
    assert not_ready["status"] == "incomplete"
    assert not_ready["unsatisfied"] == [
        {
            "id": "9b8e2f4d-1c3a-4d5e-8f60-718293a4b5c6",
            "name": "gmail_account",
            "type": "pipedream_account",
            "title": "Connect your Gmail account",
            "description": "Used to send triage replies on your behalf.",
        }
    ]
    json.dumps(results)


def test_duplicates_are_checked_once(dynamiq_conn, fake_server):
    results = DynamiqRequirementsStatusOperator(task_id="check", user_ids=["a", "b", "a", "a", "c"]).execute({})
    assert [item["user_id"] for item in results] == ["a", "b", "a", "a", "c"]
    assert sorted(r.query["user_id"][0] for r in status_checks(fake_server)) == ["a", "b", "c"]


def test_failures_are_reported_per_user(dynamiq_conn, fake_server):
    fake_server.add_fault(path="/v1/requirements/status", status=404, count=2)
    operator = DynamiqRequirementsStatusOperator(
        task_id="check", user_ids=[f"u{n}" for n in range(10)], max_concurrency=1, max_failure_ratio=0.5
    )
    results = operator.execute({})
    failed = [item for item in results if "error" in item]
    assert len(failed) == 2
    assert all(item["ready"] is False and item["status"] is None for item in failed)
    assert "HTTP 404" in failed[0]["error"]


def test_failure_share_above_threshold_fails(dynamiq_conn, fake_server):
    fake_server.add_fault(path="/v1/requirements/status", status=404, count=3)
    operator = DynamiqRequirementsStatusOperator(task_id="check", user_ids=[f"u{n}" for n in range(10)], max_concurrency=1)
    with pytest.raises(DynamiqError, match="3 of 10 user checks failed") as raised:
        operator.execute({})
    assert raised.value.args[0].count("u") >= 3
    for user_id in ("u0", "u1", "u2"):
        assert user_id in str(raised.value)


def test_json_string_is_accepted(dynamiq_conn, fake_server):
    results = DynamiqRequirementsStatusOperator(task_id="check", user_ids='["x", "y"]').execute({})
    assert [item["user_id"] for item in results] == ["x", "y"]


@pytest.mark.parametrize("user_ids", ["not json", 5, ["ok", ""], ["ok", None], ["None"]])
def test_bad_ids_send_nothing(dynamiq_conn, fake_server, user_ids):
    with pytest.raises(DynamiqConfigError, match="user_ids"):
        DynamiqRequirementsStatusOperator(task_id="check", user_ids=user_ids).execute({})
    assert fake_server.requests == []


def test_bad_ratio_fails_at_parse():
    with pytest.raises(DynamiqConfigError, match="max_failure_ratio"):
        DynamiqRequirementsStatusOperator(task_id="check", user_ids=[], max_failure_ratio=2)


def test_progress_is_logged(hook, fake_server, capsys):
    fake_server.add_fault(path="/v1/requirements/status", delay=0.05, count=None)
    hook.max_concurrency = 2
    hook.check_requirements([f"p{n}" for n in range(20)], progress_interval=0.1)
    output = capsys.readouterr().out
    assert "remaining" in output
    assert "users/s" in output
    assert "Checked 20 users in" in output
