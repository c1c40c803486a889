"""Run the onboarding example DAG end to end with real Airflow, the fake Dynamiq server and real SMTP.

What it does, in order:

1. starts the fake Dynamiq server and an SMTP server on 127.0.0.1;
2. migrates a throw-away Airflow home (SQLite) under the work folder;
3. runs ``airflow dags test dynamiq_onboarding``. While the sensor waits, the demo plays the
   end user: it reads the email from the SMTP server, follows the link to the fake connect
   page and completes the requirements;
4. prints a summary and scans the logs for secrets;
5. stops both servers, and exits 1 if any step or task failed.

Usage: ``python scripts/demo.py [--workdir .demo] [--summary-json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from airflow_provider_dynamiq.testing import EXAMPLE_RUN_ID, EXAMPLE_USER_ID, FakeDynamiqServer
from airflow_provider_dynamiq.testing.smtp import SmtpSink

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "dynamiq_onboarding"
RECIPIENT = f"{EXAMPLE_USER_ID}@example.com"
COMMAND_TIMEOUT = 600  # seconds for one Airflow command
EMAIL_TIMEOUT = 300  # seconds the end user waits for the email
_LINK_PATTERN = re.compile(r'href="([^"]+/connect\?token=[^"]+)"')


class EndUser(threading.Thread):
    """Wait for the connect email and for the sensor to see the user not ready, then follow the link."""

    def __init__(self, smtp: SmtpSink, server: FakeDynamiqServer) -> None:
        super().__init__(name="demo-end-user", daemon=True)
        self.smtp = smtp
        self.server = server
        self.link: str | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            message = self.smtp.wait_for_messages(1, timeout=EMAIL_TIMEOUT)[0]
            match = _LINK_PATTERN.search(message.html_body())
            if match is None:
                raise RuntimeError("the email has no connect link")
            self.link = match.group(1).replace("&amp;", "&")
            # The operator checked the status once before emailing; a later check is the sensor's.
            self._wait_for_status_checks(2)
            self.server.follow_connect_link(self.link)
        except Exception as error:  # reported in the summary; the demo then fails
            self.error = f"{type(error).__name__}: {error}"


    def _wait_for_status_checks(self, count: int) -> None:
        deadline = time.monotonic() + EMAIL_TIMEOUT
        while status_checks(self.server) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sensor did not check the requirement status within {EMAIL_TIMEOUT} s")
            time.sleep(0.2)


def status_checks(server: FakeDynamiqServer) -> int:
    """Return how many requirement status requests the fake server has served."""
    return sum(1 for request in server.requests if request.path == "/v1/requirements/status")


def airflow_env(home: Path, server: FakeDynamiqServer, smtp: SmtpSink) -> dict[str, str]:
    """Return the environment of every Airflow command: a private home and both connections."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_DYNAMIQ_DEFAULT": json.dumps(server.connection_json()),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp.connection_json()),
            "DYNAMIQ_EXAMPLE_POKE_INTERVAL": "2",
            "PYTHONWARNINGS": "ignore::UserWarning",
        }
    )
    return env


def run_airflow(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    """Run ``airflow ARGS`` with output appended to ``log``; kill its process group on timeout."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    with log.open("a") as output:
        output.write(f"\n$ airflow {' '.join(args)}\n")
        output.flush()
        process = subprocess.Popen(
            [airflow, *args], env=env, stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        try:
            process.wait(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            output.write(f"\n[demo] killed after {COMMAND_TIMEOUT} s\n")
    return subprocess.CompletedProcess(args, process.returncode)


def airflow_json(args: list[str], env: dict[str, str]) -> Any:
    """Run an Airflow CLI query with ``-o json`` and return the parsed output."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    completed = subprocess.run(
        [airflow, *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    # Log lines may come before the JSON list, and some of them start with "[" too.
    start = completed.stdout.find("[{")
    return json.loads(completed.stdout[start:]) if start >= 0 else []


def task_states(env: dict[str, str]) -> dict[str, str]:
    """Return each task's state in the DAG's most recent run."""
    runs = airflow_json(["dags", "list-runs", DAG_ID], env)
    if not runs:
        return {}
    run_id = runs[0]["run_id"]
    rows = airflow_json(["tasks", "states-for-dag-run", DAG_ID, run_id], env)
    return {row["task_id"]: row["state"] for row in rows}


def find_secrets(folder: Path, secrets: dict[str, str]) -> list[str]:
    """Return ``"<file>: <secret name>"`` for every secret found in a file under ``folder``."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix in (".db", ".pdf") or "artifacts" in path.parts:
            continue
        text = path.read_text(errors="replace")
        for name, value in secrets.items():
            if value and value in text:
                found.append(f"{path.relative_to(folder)}: {name}")
        if re.search(r"[?&]sig=[0-9a-f]{16,}", text):
            found.append(f"{path.relative_to(folder)}: signed download URL")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workdir", default=str(REPO / ".demo"), help="Folder for the Airflow home, logs and files.")
    parser.add_argument("--summary-json", help="Also write the summary to this JSON file.")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir).resolve()
    home = workdir / "airflow_home"
    artifacts_dir = workdir / "artifacts"
    log = workdir / "airflow.log"
    for stale in (home, artifacts_dir):
        if stale.exists():
            subprocess.run(["rm", "-rf", str(stale)], check=True)
    workdir.mkdir(parents=True, exist_ok=True)
    log.write_text("")

    started = time.monotonic()
    problems: list[str] = []
    end_user: EndUser | None = None
    with FakeDynamiqServer() as server, SmtpSink() as smtp:
        env = airflow_env(home, server, smtp)
        print(f"Fake Dynamiq App at {server.app_url()}, SMTP at 127.0.0.1:{smtp.port}, Airflow home {home}")

        if run_airflow(["db", "migrate"], env, log).returncode != 0:
            problems.append(f"airflow db migrate failed; see {log}")
        else:
            end_user = EndUser(smtp, server)
            end_user.start()
            conf = {"user_id": EXAMPLE_USER_ID, "email": RECIPIENT, "run_id": EXAMPLE_RUN_ID, "artifacts_dir": str(artifacts_dir)}
            print(f"Running: airflow dags test {DAG_ID} (log: {log})")
            if run_airflow(["dags", "test", DAG_ID, "-c", json.dumps(conf)], env, log).returncode != 0:
                problems.append(f"airflow dags test exited non-zero; see {log}")
            end_user.join(timeout=5)
            if end_user.error:
                problems.append(f"the end user could not connect: {end_user.error}")

        checks = status_checks(server)
        states = task_states(env)
        emails = smtp.messages
        link = end_user.link if end_user else None
        secrets = {"Access Key": server.access_key, "connect link": link or "", "connect token": _token_of(link)}
        leaks = find_secrets(workdir, secrets)

    files = sorted(path for path in artifacts_dir.rglob("*") if path.is_file()) if artifacts_dir.exists() else []
    expected_tasks = {"send_connect_link", "wait_for_requirements", "download_artifacts", "report_artifacts"}
    if set(states) != expected_tasks or any(state != "success" for state in states.values()):
        problems.append(f"not every task succeeded: {states or 'no task states found'}")
    if len(emails) != 1:
        problems.append(f"expected exactly 1 email, received {len(emails)}")
    if not files:
        problems.append("no artifact was downloaded")
    problems.extend(f"secret found in {leak}" for leak in leaks)

    summary = {
        "ok": not problems,
        "problems": problems,
        "seconds": round(time.monotonic() - started, 1),
        "emails": [
            {
                "to": list(message.recipients),
                "subject": message.subject,
                "body_without_link": _LINK_PATTERN.sub('href="<connect link>"', message.html_body()),
            }
            for message in emails
        ],
        "link": _masked(link),
        "status_checks": checks,
        "artifacts": [{"path": str(path), "size": path.stat().st_size} for path in files],
        "tasks": states,
        "secret_scan": "clean" if not leaks else leaks,
    }
    print_summary(summary)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


def print_summary(summary: dict[str, Any]) -> None:
    print("\nDynamiq onboarding demo")
    for email in summary["emails"]:
        print(f"  Email      to {', '.join(email['to'])}: {email['subject']!r}")
    print(f"  Link       {summary['link'] or 'none'}")
    print(f"  Status     checked {summary['status_checks']} times (1 by the email task, the rest by the sensor)")
    for artifact in summary["artifacts"]:
        print(f"  Artifact   {artifact['size']:>9} bytes  {artifact['path']}")
    for task_id, state in summary["tasks"].items():
        print(f"  Task       {task_id}: {state}")
    print(f"  Secrets    {'none found in the logs' if summary['secret_scan'] == 'clean' else summary['secret_scan']}")
    for problem in summary["problems"]:
        print(f"  PROBLEM    {problem}")
    print(f"  Result     {'success' if summary['ok'] else 'FAILED'} in {summary['seconds']} s")


def _token_of(link: str | None) -> str:
    match = re.search(r"token=([^&]+)", link or "")
    return match.group(1) if match else ""


def _masked(link: str | None) -> str | None:
    if not link:
        return None
    return re.sub(r"token=[^&]+", "token=***", link) + " (followed as the end user)"


if __name__ == "__main__":
    sys.exit(main())
