"""airflow_settings.yaml -> the files Airflow's own import commands read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.sitoo_erp.settings_loader import SettingsError, commands, load, translate, write

ROOT = Path(__file__).resolve().parents[2]


def test_project_settings_pools_and_variables_and_no_placeholder_connection():
    files = load(ROOT / "airflow_settings.yaml")
    assert files.pools["erp_api"] == {
        "slots": 5,
        "description": "NetSuite account-wide concurrent request limit, shared by every DAG",
        "include_deferred": False,
    }
    assert files.pools["sitoo_api"]["slots"] == 4
    assert files.variables["sitoo_erp_alert_recipients"] == "retail-ops@example.com,finance@example.com"
    assert files.variables["sitoo_erp_report_dir"] == "reports"
    # Every connection in the template still holds a placeholder: none may overwrite a real secret.
    assert files.connections == {}
    assert set(files.skipped_connections) == {
        "sitoo_default",
        "netsuite_default",
        "sitoo_erp_db",
        "smtp_default",
    }
    assert "placeholder" in files.skipped_connections["sitoo_default"]


def test_real_connection_becomes_airflow_connection_json_with_extra_as_json_string():
    files = translate(
        {
            "airflow": {
                "connections": [
                    {
                        "conn_id": "sitoo_default",
                        "conn_type": "http",
                        "conn_schema": "http",
                        "conn_host": "127.0.0.1",
                        "conn_port": 18080,
                        "conn_login": "90316-1",
                        "conn_password": "s3cret",
                        "conn_extra": {"timeout": 30, "netsuite": {"algorithm": "PS256"}},
                    },
                    {
                        "conn_id": "mail",
                        "conn_type": "smtp",
                        "conn_host": "smtp.example.com",
                        "conn_port": 587,
                    },
                ]
            }
        }
    )
    assert files.connections == {
        "sitoo_default": {
            "conn_type": "http",
            "host": "127.0.0.1",
            "schema": "http",
            "login": "90316-1",
            "password": "s3cret",
            "port": 18080,
            "extra": json.dumps({"timeout": 30, "netsuite": {"algorithm": "PS256"}}),
        }
    }
    assert files.skipped_connections == {"mail": "conn_host 'smtp.example.com' is an example host"}


def test_import_files_and_airflow_commands(tmp_path):
    files = translate(
        {
            "airflow": {
                "pools": [{"pool_name": "erp_api", "pool_slot": 3}],
                "variables": [{"variable_name": "a", "variable_value": "x"}, {"variable_name": "b"}],
            }
        }
    )
    written = write(files, tmp_path)
    assert set(written) == {"pools", "variables"}  # no empty connections file
    assert json.loads(written["pools"].read_text()) == {
        "erp_api": {"slots": 3, "description": "", "include_deferred": False}
    }
    assert json.loads(written["variables"].read_text()) == {"a": "x", "b": ""}
    assert commands(written, ["airflow"]) == [
        ["airflow", "pools", "import", str(written["pools"])],
        ["airflow", "variables", "import", str(written["variables"]), "-a", "overwrite"],
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "top-level 'airflow:'"),
        ({"airflow": {"pools": [{"pool_name": "erp_api"}]}}, "pools[0] (erp_api)"),
        ({"airflow": {"variables": [{"variable_value": 1}]}}, "variables[0]"),
        ({"airflow": {"connections": [{"conn_id": "x"}]}}, "connections[0] (x)"),
    ],
)
def test_bad_settings_name_the_entry(settings, message):
    with pytest.raises(
        SettingsError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        translate(settings)
