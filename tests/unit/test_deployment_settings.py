"""`make airflow` hands the sandboxes' connections to the settings loader: none may be skipped."""

from __future__ import annotations

import json
from types import SimpleNamespace

from include.sandbox.deployment import LocalDeployment
from include.sitoo_erp.settings_loader import load


def test_sandbox_connections_and_variables_reach_the_import_files(tmp_path):
    dep = LocalDeployment(tmp_path)
    dep.api_url = "http://127.0.0.1:8080"
    dep.stack = SimpleNamespace(
        env={
            "AIRFLOW_CONN_SITOO_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": 4100,
                    "schema": "http",
                    "login": "90316-1",
                    "password": "sandbox-pw",
                    "extra": {"timeout": 10},
                }
            ),
            "AIRFLOW_CONN_SITOO_ERP_DB": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 54339,
                    "login": "postgres",
                    "schema": "sitoo_erp",
                }
            ),
            "AIRFLOW_VAR_SITOO_ERP_UI_BASE_URL": "http://localhost:8080",
        }
    )
    files = load(dep._local_settings())
    assert files.skipped_connections == {}
    assert files.connections == {
        "sitoo_default": {
            "conn_type": "http",
            "host": "127.0.0.1",
            "schema": "http",
            "login": "90316-1",
            "password": "sandbox-pw",
            "port": 4100,
            "extra": json.dumps({"timeout": 10}),
        },
        "sitoo_erp_db": {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "schema": "sitoo_erp",
            "login": "postgres",
            "port": 54339,
        },
    }
    # Alert links point at this deployment's UI, not the template's localhost.
    assert files.variables["sitoo_erp_ui_base_url"] == "http://127.0.0.1:8080"
    assert "@sandbox.test" in files.variables["sitoo_erp_alert_recipients"]
