"""The run history on a real PostgreSQL: what the page calls a run's state, and what retention keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.sitoo_erp.operations import queries
from include.sitoo_erp.operations.task_runs import (
    FAILED,
    SUCCESS,
    TaskTry,
    error_text,
    numeric_counts,
    record_end,
    record_start,
)

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def _try(run: str, task: str, try_number: int = 1, dag: str = "sitoo_sales_hourly") -> TaskTry:
    return TaskTry(dag, run, task, try_number, run_type="scheduled", data_interval_start=T0)


def _done(conn, task: TaskTry, minute: int, state: str = SUCCESS, **kw) -> None:
    start = T0 + timedelta(minutes=minute)
    record_start(conn, task, start)
    record_end(conn, task, start, start + timedelta(seconds=30), state, **kw)


def test_a_run_is_failed_running_or_success_by_the_latest_try_of_each_task(staging_conn):
    conn = staging_conn
    # Run 1: extract failed on its first try and succeeded on the retry: the run succeeded.
    _done(conn, _try("r1", "extract_to_staging", 1), 0, FAILED, error="TransientApiError: 503")
    _done(conn, _try("r1", "extract_to_staging", 2), 2, counts=numeric_counts({"staged": 12, "ok": True}))
    _done(conn, _try("r1", "post_to_erp"), 3, counts={"posted": 10, "quarantined": 2})
    (run,) = queries.last_dag_runs(conn)
    assert (run["run_id"], run["state"]) == ("r1", "success")
    assert run["task_states"] == {"success": 2}
    assert run["counts"] == {
        "extract_to_staging": {"staged": 12},
        "post_to_erp": {"posted": 10, "quarantined": 2},
    }
    assert run["errors"] == {} and run["duration"] == timedelta(minutes=3, seconds=30)

    # Run 2 starts later: it is the latest; one task still running.
    _done(conn, _try("r2", "extract_to_staging"), 60)
    record_start(conn, _try("r2", "post_to_erp"), T0 + timedelta(minutes=61))
    (run,) = queries.last_dag_runs(conn)
    assert (run["run_id"], run["state"], run["duration"]) == ("r2", "running", None)

    # The running task fails: a failure outranks everything, with its error.
    error = error_text(RuntimeError("ERP answered 400 for SITOO-ST001-1"))
    record_end(
        conn,
        _try("r2", "post_to_erp"),
        T0 + timedelta(minutes=61),
        T0 + timedelta(minutes=62),
        FAILED,
        error=error,
    )
    (run,) = queries.last_dag_runs(conn)
    assert run["state"] == "failed" and run["errors"] == {
        "post_to_erp": "RuntimeError: ERP answered 400 for SITOO-ST001-1"
    }
    assert run["task_states"] == {"success": 1, "failed": 1}


def test_each_dag_shows_its_own_latest_run_and_retention_keeps_it(staging_conn):
    conn = staging_conn
    _done(conn, _try("m1", "reconcile", dag="sitoo_reconciliation_monthly"), 0)
    _done(conn, _try("h1", "classify"), 1)
    # 100 days later the hourly DAG runs again: its old rows go, the monthly DAG's only run stays.
    later = T0 + timedelta(days=100)
    record_start(conn, TaskTry("sitoo_sales_hourly", "h2", "classify", 1), later)
    record_start(
        conn, TaskTry("sitoo_reconciliation_monthly", "m2", "reconcile", 1), later - timedelta(days=95)
    )
    runs = {r["dag_id"]: r["run_id"] for r in queries.last_dag_runs(conn)}
    assert runs == {"sitoo_reconciliation_monthly": "m2", "sitoo_sales_hourly": "h2"}
    kept = conn.execute("select run_id from sitoo_erp.task_run order by run_id").fetchall()
    assert [r[0] for r in kept] == ["h2", "m1", "m2"]  # h1 pruned; m1 is within m2's 90 days
    # Another package's DAG (or an underscore wildcard) is not ours.
    record_start(conn, TaskTry("sitooXother", "x", "t", 1), later)
    assert {r["dag_id"] for r in queries.last_dag_runs(conn)} == set(runs)
