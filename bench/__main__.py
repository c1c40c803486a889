"""Run every benchmark and write its results to ``bench/results/<name>.json``: ``python -m bench``."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from bench import bulk, download, triggers

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """Return the facts about this machine that a benchmark figure depends on."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    memory_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    import os

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": sys.version.split()[0],
    }


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    runs = {
        "triggers": lambda: triggers.main(["--count", "1000", "--interval", "10", "--polls", "3", "--aligned"]),
        "download": lambda: download.main(["--size-mib", "1024", "--rounds", "5"]),
        "bulk": lambda: bulk.main(["--users", "2000", "--latency-ms", "25", "--concurrency", "50"]),
    }
    for name, run in runs.items():
        summary = run()
        summary["machine"] = machine()
        (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"Wrote {RESULTS / f'{name}.json'}")


if __name__ == "__main__":
    main()
