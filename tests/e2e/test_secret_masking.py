"""Secrets stay out of task logs, XCom and rendered fields when tasks run in the real task runner."""

from __future__ import annotations

import json
import re

DAG_ID = "dynamiq_secret_check"
RUN_ID = "secret-check-1"


def test_no_secret_in_logs_xcom_or_rendered_fields(airflow_stack, stack_servers, tmp_path):
    server, smtp = stack_servers
    airflow_stack.trigger(DAG_ID, RUN_ID, {"user_id": "secret-check-user", "folder": str(tmp_path / "files")})
    state = airflow_stack.wait_for_run(DAG_ID, RUN_ID)
    assert state == "success", airflow_stack.task_states(DAG_ID, RUN_ID)

    (email,) = [m for m in smtp.messages if m.recipients == ("secret-check-user@example.com",)]
    emailed_link = re.search(r'href="([^"]+)"', email.html_body()).group(1)
    xcom = dict(airflow_stack.query("SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ?", (DAG_ID, RUN_ID)))
    returned_link = json.loads(xcom["create_link"])["url"]
    secrets = {
        "Access Key": server.access_key,
        "management token": server.management_token,
        "emailed link": emailed_link,
        "emailed token": emailed_link.split("token=", 1)[1],
        "returned link": returned_link,
        "returned token": returned_link.split("token=", 1)[1],
    }

    logs = airflow_stack.task_logs(DAG_ID, RUN_ID)
    assert {"task_id=create_link", "task_id=send_link", "task_id=download_files", "task_id=leak_attempt"} <= {
        name.split("/", 1)[0] for name in logs
    }
    for name, text in logs.items():
        for secret_name, secret in secrets.items():
            assert secret not in text, f"{secret_name} in {name}"
        assert not re.search(r"[?&]sig=[0-9a-f]{16,}", text), f"signed URL in {name}"

    # The deliberate leaks were printed and masked, which shows that the search above would
    # find them. Masking covers the link only in the task that received it.
    leak_log = next(text for name, text in logs.items() if name.startswith("task_id=leak_attempt"))
    assert "LEAK-ACCESS-KEY ***" in leak_log
    # The token part is masked; whether the "eyJ" prefix shows depends on the masker's patterns.
    assert re.search(r"LEAK-LINK (http://127\.0\.0\.1:\d+/connect\?token=(eyJ)?)?\*\*\*", leak_log)

    # XCom: only the token operator returns the link, by design.
    for task_id, value in xcom.items():
        if task_id != "create_link":
            for secret_name, secret in secrets.items():
                assert secret not in value, f"{secret_name} in XCom of {task_id}"
    send_result = json.loads(xcom["send_link"])
    assert send_result["sent"] is True

    rendered = airflow_stack.query(
        "SELECT task_id, rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ? AND run_id = ?",
        (DAG_ID, RUN_ID),
    )
    assert rendered
    for task_id, fields in rendered:
        for secret_name, secret in secrets.items():
            assert secret not in fields, f"{secret_name} in rendered fields of {task_id}"
