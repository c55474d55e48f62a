"""No silent no-ops: a run dated before a DAG's start date fails and says why (real ``dag.test()``).

Airflow 3.3 creates no task of a run whose logical date is before the DAG's ``start_date`` and
marks it successful: a backfill of October "did nothing, silently". So the DAGs set no
``start_date``; their go-live date is configurable (``SITOO_ERP_START_DATE``, read when the DAG
files are parsed) and the first task, ``check_window``, fails a run dated before it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pendulum
import pytest

from include.sandbox.airflow_env import ROOT
from include.sitoo_erp.schedule import START_DATE_ENV, configured_start_date, window_refusal
from tests.e2e.conftest import task_states

SCHEDULED = ("sitoo_sales_hourly", "sitoo_stock_daily", "sitoo_reconciliation_monthly")


@pytest.mark.parametrize("dag_id", SCHEDULED)
def test_a_run_before_the_start_date_fails_instead_of_succeeding_empty(dagbag, dag_id):
    dag = dagbag.get_dag(dag_id)
    assert dag.get_task("check_window").go_live.date().isoformat() == "2026-11-01"
    run = dag.test(logical_date=datetime(2026, 10, 5, 12, tzinfo=UTC))
    states = task_states(run)
    assert states.pop("check_window") == "failed"
    assert set(states.values()) <= {"upstream_failed", "skipped"} and states  # nothing else ran
    assert str(run.state) == "failed"


def test_the_refusal_names_the_window_the_start_date_and_the_setting():
    start = pendulum.datetime(2026, 11, 1, tz="UTC")
    logical = pendulum.datetime(2026, 10, 5, 12, tz="UTC")
    reason = window_refusal("sitoo_sales_hourly", logical, logical, start)
    assert "sitoo_sales_hourly" in reason and "2026-10-05T12:00:00+00:00" in reason
    assert "2026-11-01T00:00:00+00:00" in reason and f"{START_DATE_ENV} to 2026-10-05 or earlier" in reason
    assert window_refusal("sitoo_sales_hourly", start, start, start) is None
    assert window_refusal("sitoo_sales_hourly", None, None, start) is None  # a run without a logical date


def test_the_start_date_comes_from_the_environment_when_the_dags_are_parsed(airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(START_DATE_ENV, "2026-10-01")
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    for dag_id in SCHEDULED:
        assert bag.get_dag(dag_id).get_task("check_window").go_live.date().isoformat() == "2026-10-01"
    assert bag.get_dag("sitoo_stock_daily").get_task("check_window").go_live.tz.name == "Europe/London"


def test_a_malformed_start_date_is_an_import_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv(START_DATE_ENV, "1st October")
    with pytest.raises(ValueError, match=f"{START_DATE_ENV}='1st October' is not an ISO date"):
        configured_start_date()
