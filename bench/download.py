"""Benchmark: download a 1 GiB artifact from the fake server, against curl fetching the same URL.

The fake server runs in its own process with one generated 1 GiB artifact. Each round, curl
and the provider (``DynamiqHook.download_artifact`` in a fresh process) write the file to the
same temporary folder on disk; the order alternates between rounds so neither always gets a
warm page cache. Reported: the median throughput of each over ``--rounds`` rounds, their ratio,
and the RSS growth of the provider's process from just before the download to its peak.

Usage: ``python -m bench.download [--size-mib 1024] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.triggers import PeakSampler, rss_mib

MIB = 1024 * 1024


def serve(size: int) -> None:
    """Run the fake server with one artifact of ``size`` bytes until SIGTERM; print its details."""
    from airflow_provider_dynamiq.testing import ArtifactSpec, FakeDynamiqServer

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    with FakeDynamiqServer(download_url_ttl=3600) as server:
        run_id = server.add_run(artifacts=[ArtifactSpec("big.bin", size=size)])
        print(json.dumps({"connection": server.connection_json(), "run_id": run_id}), flush=True)
        while not stop["now"]:
            time.sleep(0.2)


def download_once(run_id: str, folder: str) -> dict[str, Any]:
    """Download the run's artifact with the hook in this process; return the measurements."""
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    with DynamiqHook() as hook:
        (artifact,) = hook.list_run_artifacts(run_id)
        baseline = rss_mib()
        sampler = PeakSampler()
        sampler.start()
        started = time.perf_counter()
        path = hook.download_artifact(artifact, folder, overwrite=True)
        seconds = time.perf_counter() - started
        peak = sampler.stop()
    size = Path(path).stat().st_size
    Path(path).unlink()
    return {"seconds": seconds, "bytes": size, "rss_growth_mib": peak - baseline}


def signed_url(run_id: str) -> str:
    """Return a fresh signed URL of the run's artifact."""
    from airflow_provider_dynamiq.hooks.dynamiq import DynamiqHook

    with DynamiqHook() as hook:
        (artifact,) = hook.list_run_artifacts(run_id)
        return artifact.download_url.get_secret_value()


def curl_once(url: str, folder: str) -> dict[str, Any]:
    """Fetch ``url`` with curl into a file in ``folder``; return the measurements."""
    target = Path(folder) / "curl.bin"
    started = time.perf_counter()
    subprocess.run(["curl", "--silent", "--fail", "--output", str(target), url], check=True)
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    target.unlink()
    return {"seconds": seconds, "bytes": size}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="artifact size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of curl and provider (default 3)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--download", nargs=2, metavar=("RUN_ID", "FOLDER"), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.serve:
        serve(arguments.serve)
        return {}
    if arguments.download:
        print(json.dumps(download_once(*arguments.download)))
        return {}

    size = arguments.size_mib * MIB
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.download", "--serve", str(size)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        details = json.loads(server.stdout.readline())
        with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
            env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW_CONN_DYNAMIQ_DEFAULT": json.dumps(details["connection"])}
            os.environ.update(env)
            provider, curl = [], []
            for round_number in range(arguments.rounds):
                for tool in (("curl", "provider") if round_number % 2 == 0 else ("provider", "curl")):
                    if tool == "curl":
                        curl.append(curl_once(signed_url(details["run_id"]), folder))
                    else:
                        completed = subprocess.run(
                            [sys.executable, "-m", "bench.download", "--download", details["run_id"], folder],
                            env=env, capture_output=True, text=True, check=True,
                        )
                        provider.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait(timeout=30)

    def throughput(results: list[dict[str, Any]]) -> float:
        return statistics.median(result["bytes"] / result["seconds"] / MIB for result in results)

    summary = {
        "benchmark": "download",
        "size_mib": arguments.size_mib,
        "rounds": arguments.rounds,
        "provider_mib_per_s": round(throughput(provider), 1),
        "curl_mib_per_s": round(throughput(curl), 1),
        "provider_over_curl": round(throughput(provider) / throughput(curl), 2),
        "provider_rss_growth_mib": round(max(result["rss_growth_mib"] for result in provider), 1),
        "raw": {"provider": provider, "curl": curl},
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
