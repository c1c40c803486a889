"""Benchmark: many requirement triggers waiting at once in one event loop.

It starts the fake Dynamiq server in its own process, then runs ``--count`` never-ready
``DynamiqRequirementsTrigger`` instances in one asyncio loop, as a triggerer would, for
``--polls`` polls each. Two modes run in separate processes, so their memory is measured apart:

* ``shared``: the provider's triggers, which share one hook (one connection read, one
  ``httpx.AsyncClient``) per connection;
* ``per-trigger``: the alternative, where each trigger builds its own hook and client.

Reported per mode: RSS growth from before the triggers start to its peak (MiB), and how late
each poll starts against the time it was due (median, 95th percentile, maximum, in seconds
and as a share of the interval).

Usage: ``python -m bench.triggers [--count 1000] [--interval 10] [--polls 3] [--aligned]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def rss_mib() -> float:
    """Return this process's resident set size in MiB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


class PeakSampler(threading.Thread):
    """Sample RSS every 50 ms and keep the maximum."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_mib()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.05):
            self.peak = max(self.peak, rss_mib())

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_mib())


def run_mode(mode: str, count: int, interval: float, polls: int, aligned: bool = False) -> dict[str, Any]:
    """Run the triggers in this process and return the measurements.

    :param aligned: make every trigger's first poll due exactly one interval after its start, the
        worst case the triggers' random first-poll offset exists to avoid.
    """
    from airflow_provider_dynamiq.hooks.dynamiq import MAX_POOL_CONNECTIONS, DynamiqHook
    from airflow_provider_dynamiq.triggers import dynamiq as triggers

    due_by_task: dict[int, float] = {}
    lateness: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float) -> None:
        # The trigger sleeps until a poll is due; remember when, per task, to compare with the
        # moment the poll actually starts.
        due_by_task[id(asyncio.current_task())] = asyncio.get_running_loop().time() + delay
        await real_sleep(delay)

    async def record_request(request: Any) -> None:
        # httpx calls request hooks just before sending, after any wait for a free connection.
        due = due_by_task.get(id(asyncio.current_task()))
        if due is not None:
            lateness.append(asyncio.get_running_loop().time() - due)

    original_options = DynamiqHook._client_options

    def options_with_hook(self: DynamiqHook, settings: Any) -> dict[str, Any]:
        return {**original_options(self, settings), "event_hooks": {"request": [record_request]}}

    class _SleepProxy:
        def __getattr__(self, name: str) -> Any:
            return recording_sleep if name == "sleep" else getattr(asyncio, name)

    triggers.asyncio = _SleepProxy()  # type: ignore[assignment]
    if aligned:
        triggers.random = type("NoJitter", (), {"uniform": staticmethod(lambda low, high: high)})  # type: ignore[assignment]
    DynamiqHook._client_options = options_with_hook  # type: ignore[method-assign]
    if mode == "per-trigger":

        @contextlib.asynccontextmanager
        async def own_hook(conn_id: str):
            # One pool, so each trigger has exactly one client of its own.
            hook = DynamiqHook(dynamiq_conn_id=conn_id, max_concurrency=MAX_POOL_CONNECTIONS)
            try:
                yield hook
            finally:
                await hook.aclose()

        triggers.SHARED_HOOKS.hook = own_hook  # type: ignore[method-assign]

    async def main() -> dict[str, Any]:
        async def drive(trigger: Any) -> None:
            async for _event in trigger.run():
                raise RuntimeError(f"trigger ended early: {_event.payload}")

        baseline = rss_mib()
        sampler = PeakSampler()
        sampler.start()
        started = time.monotonic()
        cpu_started = time.process_time()
        tasks = [
            asyncio.create_task(
                drive(triggers.DynamiqRequirementsTrigger(user_id=f"bench-user-{n}", poll_interval=interval))
            )
            for n in range(count)
        ]
        await real_sleep(interval * polls + interval / 2)
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
        peak = sampler.stop()
        return {
            "mode": mode + (" aligned" if aligned else ""),
            "triggers": count,
            "interval_s": interval,
            "polls": len(lateness),
            "errors": [repr(e) for e in errors[:3]],
            "rss_growth_mib": round(peak - baseline, 1),
            "lateness_median_s": round(statistics.median(lateness), 3),
            "lateness_p95_s": round(statistics.quantiles(lateness, n=100)[94], 3),
            "lateness_max_s": round(max(lateness), 3),
            "lateness_p95_share": round(statistics.quantiles(lateness, n=100)[94] / interval, 4),
            "cpu_s": round(time.process_time() - cpu_started, 1),
            "wall_s": round(time.monotonic() - started, 1),
        }

    # Everything the triggers import is loaded before the baseline, so it measures the triggers.
    import airflow_provider_dynamiq.hooks.dynamiq  # noqa: F401

    return asyncio.run(main())


def start_fake_server() -> tuple[subprocess.Popen[str], str]:
    """Start the fake server in its own process; return it and its connection JSON."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dynamiq.testing"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("export AIRFLOW_CONN_DYNAMIQ_DEFAULT="):
            return process, shlex.split(line.split("=", 1)[1])[0]
    raise RuntimeError("the fake server exited before printing its connection")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=1000, help="triggers waiting at once (default 1000)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    parser.add_argument("--polls", type=int, default=3, help="polls per trigger (default 3)")
    parser.add_argument("--aligned", action="store_true", help="also run with every first poll due at the same time")
    parser.add_argument("--mode", choices=["shared", "per-trigger"], help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.mode:  # a child process: measure one mode and print JSON
        result = run_mode(arguments.mode, arguments.count, arguments.interval, arguments.polls, arguments.aligned)
        print(json.dumps(result))
        return {}

    server, connection = start_fake_server()
    results = {}
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW_CONN_DYNAMIQ_DEFAULT": connection}
            runs = [("shared", False), ("per-trigger", False)] + ([("shared", True)] if arguments.aligned else [])
            for mode, aligned in runs:
                command = [
                    sys.executable, "-m", "bench.triggers", "--mode", mode, "--count", str(arguments.count),
                    "--interval", str(arguments.interval), "--polls", str(arguments.polls),
                ]
                completed = subprocess.run(
                    command + (["--aligned"] if aligned else []), env=env, capture_output=True, text=True, check=True
                )
                result = json.loads(completed.stdout.strip().splitlines()[-1])
                results[result["mode"]] = result
                print(json.dumps(result), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    shared, alone = results["shared"], results["per-trigger"]
    summary = {
        "benchmark": "triggers",
        "results": results,
        "memory_ratio_per_trigger_over_shared": round(alone["rss_growth_mib"] / max(shared["rss_growth_mib"], 0.1), 1),
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
