"""Serve the fake Dynamiq server until SIGINT or SIGTERM: ``python -m airflow_provider_dynamiq.testing``."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
import threading
from types import FrameType

from airflow_provider_dynamiq.testing.server import FakeDynamiqServer


def positive_seconds(text: str) -> float:
    """Parse a number of seconds greater than 0 for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_dynamiq.testing",
        description=(
            "Serve a fake Dynamiq service (App host, management API, console and storage) on "
            "127.0.0.1 with the example App seeded, and print its URLs and an "
            "'export AIRFLOW_CONN_DYNAMIQ_DEFAULT=...' line to paste into a shell. That line contains "
            "an Access Key that only this fake accepts: a test credential, not a real one. Stop with "
            "Ctrl+C or SIGTERM."
        ),
        epilog=(
            "Test control over HTTP on the management URL, no credential needed: "
            "POST /_fake/users/USER_ID/complete[?app_id=...] marks a user's requirements met; "
            "POST /_fake/faults with a JSON body of add_fault arguments (e.g. "
            '{"path": "/v1/requirements/status", "status": 503, "count": 2}) injects faults; '
            "DELETE /_fake/faults clears them; POST /_fake/runs/behaviour with "
            '{"outcome": "failed", "duration": 5} sets how new runs end.'
        ),
    )
    parser.add_argument(
        "--management-token",
        action="store_true",
        help="put the fake's Personal Access Token in the connection's management_token extra",
    )
    parser.add_argument(
        "--access-key",
        metavar="KEY",
        help="Access Key to accept, starting with dynamiq_acc_ (default: a new random key each start)",
    )
    parser.add_argument(
        "--connect-token-ttl",
        type=positive_seconds,
        default=86400.0,
        metavar="SECONDS",
        help="lifetime of connect tokens and connect links, in seconds (default: 86400)",
    )
    parser.add_argument(
        "--download-url-ttl",
        type=positive_seconds,
        default=300.0,
        metavar="SECONDS",
        help="lifetime of signed artifact download URLs, in seconds (default: 300)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the fake server until SIGINT or SIGTERM and return the exit status."""
    arguments = build_parser().parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        server = FakeDynamiqServer(
            access_key=arguments.access_key,
            connect_token_ttl=arguments.connect_token_ttl,
            download_url_ttl=arguments.download_url_ttl,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with server:
        print(f"App URL:            {server.app_url()}")
        print(f"App id:             {server.default_app_id}")
        print(f"Management API URL: {server.management_url}")
        print(f"Console URL:        {server.console_url}")
        print(f"Storage URL:        {server.storage_url}")
        connection = json.dumps(server.connection_json(management_token=arguments.management_token))
        print(f"export AIRFLOW_CONN_DYNAMIQ_DEFAULT={shlex.quote(connection)}", flush=True)
        # Waiting in slices keeps the main thread free to run the signal handlers.
        while not stop.wait(0.5):
            pass
    print("fake Dynamiq server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
