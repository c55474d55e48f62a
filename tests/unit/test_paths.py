"""Relative paths in settings resolve against one documented base, never the worker's cwd."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from include.sitoo_erp.paths import base_dir, resolve


def test_sitoo_erp_home_wins_over_airflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SITOO_ERP_HOME", str(tmp_path / "erp"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af"))
    monkeypatch.chdir(tmp_path)
    assert base_dir() == (tmp_path / "erp").resolve()
    assert resolve("reports") == (tmp_path / "erp" / "reports").resolve()


def test_airflow_home_when_sitoo_erp_home_is_unset(monkeypatch, tmp_path):
    monkeypatch.delenv("SITOO_ERP_HOME", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af"))
    elsewhere = tmp_path / "scheduler-cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve("reports/monthly") == (tmp_path / "af" / "reports" / "monthly").resolve()


def test_absolute_and_home_paths_stay_as_given(monkeypatch, tmp_path):
    monkeypatch.setenv("SITOO_ERP_HOME", str(tmp_path))
    assert resolve(tmp_path / "x") == tmp_path / "x"
    assert resolve("~/r") == Path.home() / "r"


def test_report_written_under_the_base_not_the_working_directory(monkeypatch, tmp_path, staging_conn):
    from include.sitoo_erp.notify.reconciliation_report import save_report

    home, cwd = tmp_path / "home", tmp_path / "worker-cwd"
    cwd.mkdir()
    monkeypatch.setenv("SITOO_ERP_HOME", str(home))
    monkeypatch.chdir(cwd)
    report = SimpleNamespace(filename="recon-2026-11", html="<p>ok</p>", csv="a,b\n", recon_run_id=1)
    paths = save_report(staging_conn, report, "reports")
    assert paths == [
        home.resolve() / "reports" / "recon-2026-11.html",
        home.resolve() / "reports" / "recon-2026-11.csv",
    ]
    assert paths[0].read_text() == "<p>ok</p>"
    assert not (cwd / "reports").exists()
