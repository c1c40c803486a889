"""Airflow discovers the provider, its hook and its connection form fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_cli(*args: str) -> str:
    completed = subprocess.run(
        [AIRFLOW, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_providers_list_shows_package():
    from airflow_provider_dynamiq import __version__

    output = airflow_cli("providers", "list", "-o", "json")
    rows = json.loads(output[output.index("[{") :])
    row = next(row for row in rows if row["package_name"] == "airflow-provider-dynamiq")
    assert row["version"] == __version__


def test_providers_hooks_shows_dynamiq():
    output = airflow_cli("providers", "hooks", "-o", "json")
    rows = json.loads(output[output.index("[{") :])
    row = next(row for row in rows if row["connection_type"] == "dynamiq")
    assert row["class"] == "airflow_provider_dynamiq.hooks.dynamiq.DynamiqHook"
    assert row["conn_id_attribute_name"] == "dynamiq_conn_id"


def test_providers_behaviours_lists_dynamiq():
    output = airflow_cli("providers", "behaviours", "-o", "json")
    rows = json.loads(output[output.index("[{") :])
    assert {"field_behaviours": "dynamiq"} in rows


def test_field_behaviour_relabels_fields():
    from airflow.providers_manager import ProvidersManager

    behaviour = ProvidersManager().field_behaviours["dynamiq"]
    assert behaviour["relabeling"] == {"host": "App hostname", "password": "Access Key"}
    assert set(behaviour["hidden_fields"]) == {"schema", "login", "port"}


def test_connection_form_fields():
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    names = {key.split("__")[-1] for key in widgets if key.startswith("extra__dynamiq__")}
    assert names == {"management_url", "management_token", "app_id", "timeout", "max_retries", "verify_ssl"}
    token = widgets["extra__dynamiq__management_token"]
    assert token.is_sensitive


@pytest.mark.parametrize(
    "module",
    [
        "airflow_provider_dynamiq.hooks.dynamiq",
        "airflow_provider_dynamiq.operators.connect",
        "airflow_provider_dynamiq.operators.artifacts",
        "airflow_provider_dynamiq.sensors.requirements",
        "airflow_provider_dynamiq.testing",
    ],
)
def test_import_has_no_deprecation_warning(module):
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    import {module}\n"
        "print('\\n'.join(f'{w.category.__name__}: {w.message} ({w.filename})' for w in caught\n"
        "    if issubclass(w.category, (DeprecationWarning, FutureWarning))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    ours = [line for line in completed.stdout.splitlines() if "airflow_provider_dynamiq" in line]
    assert ours == []
