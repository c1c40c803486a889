"""Apache Airflow provider for Dynamiq deployed Apps.

Importing this package is cheap: it does not import Airflow, so Airflow's provider
discovery can call :func:`get_provider_info` without loading the hook or operators.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-dynamiq"


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Dynamiq",
        "description": "Hooks, operators, sensors and triggers for Dynamiq deployed Apps.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Dynamiq",
                "external-doc-url": "https://docs.getdynamiq.ai/docs/api-reference",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Dynamiq", "python-modules": ["airflow_provider_dynamiq.hooks.dynamiq"]}
        ],
        "operators": [
            {
                "integration-name": "Dynamiq",
                "python-modules": [
                    "airflow_provider_dynamiq.operators.connect",
                    "airflow_provider_dynamiq.operators.artifacts",
                    "airflow_provider_dynamiq.operators.runs",
                    "airflow_provider_dynamiq.operators.requirements",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Dynamiq",
                "python-modules": [
                    "airflow_provider_dynamiq.sensors.requirements",
                    "airflow_provider_dynamiq.sensors.runs",
                ],
            }
        ],
        "triggers": [
            {"integration-name": "Dynamiq", "python-modules": ["airflow_provider_dynamiq.triggers.dynamiq"]}
        ],
        "extra-links": ["airflow_provider_dynamiq.operators.runs.DynamiqRunLink"],
        "connection-types": [
            {
                "connection-type": "dynamiq",
                "hook-class-name": "airflow_provider_dynamiq.hooks.dynamiq.DynamiqHook",
                "hook-name": "Dynamiq",
                "conn-fields": _CONNECTION_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "App hostname", "password": "Access Key"},
                    "placeholders": {
                        "host": "4f6e1c2a-7b8d-4e9f-a1b2-c3d4e5f60718.apps.us-east-1.getdynamiq.ai",
                        "password": "dynamiq_acc_...",
                    },
                },
            }
        ],
    }


_CONNECTION_FIELDS: dict[str, Any] = {
    "management_url": {
        "label": "Management API URL",
        "schema": {"type": ["string", "null"], "default": "https://api.getdynamiq.ai"},
        "description": "Base URL of the management API (run artifacts). Self-hosted installs set their own.",
    },
    "management_token": {
        "label": "Management token",
        "schema": {"type": ["string", "null"], "format": "password"},
        "description": "Personal Access Token for the management API. When empty, the Access Key is used.",
    },
    "app_id": {
        "label": "App ID",
        "schema": {"type": ["string", "null"]},
        "description": "UUID of the App. Needed for run artifacts when the hostname does not start with it.",
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 30},
        "description": "Connect and read timeout of each HTTP request, in seconds.",
    },
    "max_retries": {
        "label": "Max retries",
        "schema": {"type": ["integer", "null"], "default": 5},
        "description": "Retries for rate-limited, unavailable or unreachable requests. 0 turns retries off.",
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Verify the servers' TLS certificates. Turn off only for a trusted test install.",
    },
}
