"""Benchmark: check the requirement status of 2,000 users, with 25 ms of latency per request.

The fake server runs in its own process and delays every status request by ``--latency-ms``,
a realistic round trip to a hosted API. Three ways to check ``--users`` users, each in a fresh
process, measured in one run:

1. ``provider``: ``DynamiqHook.check_requirements`` (what ``DynamiqRequirementsStatusOperator``
   runs), at ``--concurrency`` requests in flight;
2. ``requests-loop``: what a DAG author writes without the provider, one ``requests.get`` per
   user in a loop;
3. ``bare-httpx``: the limit, an ``httpx.AsyncClient`` at the same concurrency with no validation
   and no retries.

Reported for each: wall time, CPU time of the process, and its peak RSS.

Usage: ``python -m bench.bulk [--users 2000] [--latency-ms 25] [--concurrency 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx


def measure(mode: str, users: int, concurrency: int) -> dict[str, Any]:
    """Check ``users`` users in this process in the way ``mode`` names; return the measurements."""
    connection = json.loads(os.environ["AIRFLOW_CONN_DYNAMIQ_DEFAULT"])
    url = f"{connection['host']}/v1/requirements/status"
    headers = {"Authorization": f"Bearer {connection['password']}"}
    user_ids = [f"bench-user-{n}" for n in range(users)]
    if mode == "provider":
        from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

        hook = DynamiqHook(max_concurrency=concurrency)
        hook.settings  # read the connection before the clock starts, as every mode does
    cpu_started = time.process_time()
    started = time.perf_counter()
    if mode == "provider":
        results = hook.check_requirements(user_ids, progress_interval=3600)
        ok = sum(1 for item in results if "error" not in item)
    elif mode == "requests-loop":
        import requests

        ok = 0
        with requests.Session() as session:
            for user_id in user_ids:
                response = session.get(url, params={"user_id": user_id}, headers=headers, timeout=30)
                ok += response.status_code == 200
    else:
        ok = asyncio.run(_bare_httpx(url, headers, user_ids, concurrency))
    wall = time.perf_counter() - started
    return {
        "mode": mode,
        "users": users,
        "ok": ok,
        "wall_s": round(wall, 2),
        "cpu_s": round(time.process_time() - cpu_started, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


async def _bare_httpx(url: str, headers: dict[str, str], user_ids: list[str], concurrency: int) -> int:
    slots = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(headers=headers) as client:

        async def one(user_id: str) -> bool:
            async with slots:
                response = await client.get(url, params={"user_id": user_id})
            return response.status_code == 200

        return sum(await asyncio.gather(*(one(user_id) for user_id in user_ids)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=2000, help="users to check (default 2000)")
    parser.add_argument("--latency-ms", type=float, default=25.0, help="server delay per request (default 25)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (default 50)")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.mode:
        print(json.dumps(measure(arguments.mode, arguments.users, arguments.concurrency)))
        return {}

    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dynamiq.testing"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    results: dict[str, Any] = {}
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if line.startswith("export AIRFLOW_CONN_DYNAMIQ_DEFAULT="):
                connection = shlex.split(line.split("=", 1)[1])[0]
                break
        management_url = json.loads(connection)["extra"]["management_url"]
        httpx.post(
            f"{management_url}/_fake/faults",
            json={"path": "^/v1/requirements/status$", "delay": arguments.latency_ms / 1000, "count": None},
        ).raise_for_status()
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW_CONN_DYNAMIQ_DEFAULT": connection}
            for mode in ("provider", "requests-loop", "bare-httpx"):
                completed = subprocess.run(
                    [sys.executable, "-m", "bench.bulk", "--mode", mode, "--users", str(arguments.users),
                     "--concurrency", str(arguments.concurrency)],
                    env=env, capture_output=True, text=True, check=True,
                )
                results[mode] = json.loads(completed.stdout.strip().splitlines()[-1])
                print(json.dumps(results[mode]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {
        "benchmark": "bulk",
        "latency_ms": arguments.latency_ms,
        "concurrency": arguments.concurrency,
        "results": results,
        "requests_loop_over_provider": round(results["requests-loop"]["wall_s"] / results["provider"]["wall_s"], 1),
        "provider_over_bare_httpx": round(results["provider"]["wall_s"] / results["bare-httpx"]["wall_s"], 2),
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
