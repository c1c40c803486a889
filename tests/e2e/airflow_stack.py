"""A real Airflow (``airflow standalone``: API server, scheduler, DAG processor, triggerer) on loopback.

Tasks run through the real executor and task runner, so task logs are masked and deferred
tasks wait in the real triggerer, unlike ``airflow dags test``. The stack uses SQLite in a
temporary Airflow home and free ports on 127.0.0.1, and :meth:`AirflowStack.stop` ends its
whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
START_TIMEOUT = 180  # seconds until every component reports healthy
FINISHED_STATES = {"success", "failed"}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _signal_group(group: int, signal_number: int) -> None:
    try:
        os.killpg(group, signal_number)
    except ProcessLookupError:
        pass


def _group_alive(group: int) -> bool:
    """Return whether a process of the group is still running (zombies count as gone)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the command name: state, ppid, pgrp, ...
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


class AirflowStack:
    """Start, drive and stop ``airflow standalone``.

    :param home: an empty folder for ``AIRFLOW_HOME``.
    :param dags_folder: the folder the DAG processor reads.
    :param environment: extra variables, e.g. ``AIRFLOW_CONN_*`` connections.
    """

    def __init__(self, home: Path, dags_folder: Path, environment: dict[str, str]) -> None:
        self.home = home
        self.api_port = free_port()
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "PYTHONWARNINGS": "ignore::UserWarning",
                # standalone starts each component as a new `airflow` process found on PATH.
                "PATH": f"{Path(AIRFLOW).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                **environment,
            }
        )
        self.output = home / "standalone.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Migrate the database, start the stack and wait until every component is healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=300)
        with self.output.open("wb") as log:
            self._process = subprocess.Popen(
                [AIRFLOW, "standalone"], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited with {self._process.returncode}; see {self.output}")
            if self._healthy():
                return
            time.sleep(1)
        self.stop()
        raise TimeoutError(f"airflow standalone was not healthy within {START_TIMEOUT} s; see {self.output}")

    def stop(self) -> None:
        """Stop every process of the stack: SIGTERM to its process group, SIGKILL to what is left after 30 s.

        The scheduler can outlive ``airflow standalone`` while it shuts its executor down, so the
        whole group is waited for, not only the first process.
        """
        if self._process is None:
            return
        group = self._process.pid
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_alive(group):
            self._process.poll()
            time.sleep(0.5)
        if _group_alive(group):
            _signal_group(group, signal.SIGKILL)
        self._process.wait()
        self._process = None

    def _healthy(self) -> bool:
        try:
            health = httpx.get(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return False
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(name) or {}).get("status") == "healthy" for name in components)

    def query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """Run a read-only query on the stack's SQLite database."""
        with sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30) as database:
            return database.execute(sql, parameters).fetchall()

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None, timeout: float = 120) -> None:
        """Wait until the DAG processor has stored ``dag_id``, then trigger a run named ``run_id``."""
        deadline = time.monotonic() + timeout
        while not self.query("SELECT 1 FROM dag WHERE dag_id = ?", (dag_id,)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout} s; see {self.output}")
            time.sleep(1)
        subprocess.run(
            [AIRFLOW, "dags", "trigger", dag_id, "--run-id", run_id, "-c", json.dumps(conf or {})],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def dag_run_state(self, dag_id: str, run_id: str) -> str | None:
        """Return the state of a DAG run, or None before it exists."""
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
        return rows[0][0] if rows else None

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Return each task's state in a DAG run."""
        rows = self.query("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
        return dict(rows)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Wait until a DAG run has finished and return its state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.dag_run_state(dag_id, run_id)
            if state in FINISHED_STATES:
                return state
            time.sleep(1)
        raise TimeoutError(
            f"DAG run {dag_id}/{run_id} did not finish within {timeout} s: {self.task_states(dag_id, run_id)}"
        )

    def task_logs(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Return the text of every log file of a DAG run, keyed by its path under the logs folder."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return {str(path.relative_to(folder)): path.read_text(errors="replace") for path in folder.rglob("*.log")}
