"""Run history in the package's own table: the operators record each task try in ``sitoo_erp.task_run``
and the operations page shows the last run of each DAG from there, not from Airflow's metadata DB."""

from __future__ import annotations

import json

from markupsafe import escape
from psycopg.rows import dict_row

from include.sitoo_erp.operations import queries
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, run_hour, task_states
from tests.e2e.helpers import ledger, plant_unknown_sku, render_ops_page


def _task_runs(stack, run_id: str) -> dict[str, dict]:
    with connect_url(stack.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select * from sitoo_erp.task_run where dag_id = 'sitoo_sales_hourly' and run_id = %s "
            "order by task_id, try_number",
            (run_id,),
        ).fetchall()
    return {r["task_id"]: r for r in rows}  # the latest try of each task


def test_an_hourly_run_records_its_tasks_counts_and_the_page_shows_them(stack, sales_dag):
    plant_unknown_sku(stack)  # one receipt the gate quarantines
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    counts = ledger(stack)
    assert counts["posted"] > 0 and counts["quarantined"] >= 1

    rows = _task_runs(stack, run.run_id)
    # Every task that ran recorded its try, in the DAG's own interval.
    assert set(rows) == {t for t, s in task_states(run).items() if s == "success"}
    assert all(r["state"] == "success" and r["ended_at"] >= r["started_at"] for r in rows.values())
    assert {r["data_interval_start"] for r in rows.values()} == {at(9)}
    # The counts the tasks returned, as the ledger has them.
    assert rows["post_to_erp"]["counts"]["posted"] == counts["posted"]
    assert rows["summarise"]["counts"]["posted"] == counts["posted"]
    assert rows["summarise"]["counts"]["quarantined"] == counts["quarantined"]
    assert rows["quality_gate"]["counts"]["failed_receipts"] >= 1

    with connect_url(stack.database_url) as conn:
        (last,) = queries.last_dag_runs(conn)
        page = render_ops_page(conn)
    assert (last["dag_id"], last["run_id"], last["state"]) == ("sitoo_sales_hourly", run.run_id, "success")
    assert last["task_states"] == {"success": len(rows)}
    assert last["duration"] is not None and last["data_interval_end"] == at(10)
    section = page[page.index('id="runs"') : page.index("</section>", page.index('id="runs"'))]
    assert "sitoo_sales_hourly" in section and ">success<" in section
    assert f"posted {counts['posted']}" in section and f"quarantined {counts['quarantined']}" in section


def test_a_failing_task_records_failed_with_its_error(stack, sales_dag, monkeypatch):
    run_hour(sales_dag, at(9))
    sitoo = json.loads(stack.env["AIRFLOW_CONN_SITOO_DEFAULT"])
    sitoo["password"] = "Wr0ng-Pa55word-123"
    monkeypatch.setenv("AIRFLOW_CONN_SITOO_DEFAULT", json.dumps(sitoo))
    run = run_hour(sales_dag, at(10))
    assert task_states(run)["extract_to_staging"] == "failed"

    rows = _task_runs(stack, run.run_id)
    failed = rows["extract_to_staging"]
    assert failed["state"] == "failed" and failed["ended_at"] is not None
    assert failed["error"].startswith("AuthError: ")
    assert "refused the credentials of connection 'sitoo_default'" in failed["error"]
    assert "Wr0ng-Pa55word-123" not in failed["error"]
    assert "classify" not in rows  # upstream failed: never started, nothing recorded

    with connect_url(stack.database_url) as conn:
        (last,) = queries.last_dag_runs(conn)
        page = render_ops_page(conn)
    assert (last["run_id"], last["state"]) == (run.run_id, "failed")
    assert last["task_states"]["failed"] == 1
    assert last["errors"] == {"extract_to_staging": failed["error"]}
    section = page[page.index('id="runs"') : page.index("</section>", page.index('id="runs"'))]
    assert ">failed<" in section and str(escape(failed["error"])) in section
