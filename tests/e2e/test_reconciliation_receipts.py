"""The reconciliation proves each receipt (invariant 10), not only the sums per store x day x tax code.

Swapping the contents of two posted receipts of one register and day keeps every sum, every
document count and every Z-report equal. Before this work the monthly reconciliation passed it with
0 unexplained; now it names both receipts until the hourly run has corrected their ERP documents.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import pairwise

import pendulum
import pytest
from psycopg.rows import dict_row

from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import run_hour, task_states

NOV1 = date(2026, 11, 1)
MONTHLY_RUN = pendulum.datetime(2026, 12, 3, 6, tz="Europe/London")
LEDGER_FIELDS = (
    "orderitems",
    "payments",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneytotal_gross_roundoff",
    "moneytotal_gross_all",
    "additionaldata",
)


def _last_run(stack) -> dict:
    with connect_url(stack.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from sitoo_erp.reconciliation_run order by recon_run_id desc limit 1"
        ).fetchone()


def _lines(stack, recon_run_id: int) -> list[dict]:
    with connect_url(stack.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from sitoo_erp.reconciliation_line where recon_run_id = %s order by line_id",
            (recon_run_id,),
        ).fetchall()


def _swap_pair(stack) -> tuple[dict, dict]:
    """Two posted sales of one register and business day with different totals and no loyalty."""
    with connect_url(stack.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            select o.orderid, o.receipt_id, o.registerid, o.business_date, o.money_gross, p.external_id, p.erp_id
              from sitoo_erp.sitoo_order o join sitoo_erp.posting_log p using (orderid)
             where p.document_type = 'sale' and o.loyalty_discount = 0
             order by o.registerid, o.business_date, o.orderid
            """
        ).fetchall()
    for a, b in pairwise(rows):
        if (a["registerid"], a["business_date"]) == (b["registerid"], b["business_date"]) and a[
            "money_gross"
        ] != b["money_gross"]:
            return a, b
    raise AssertionError("no two posted sales of one register and day")


@pytest.fixture(scope="module")
def swapped(postgres, dagbag, tmp_path_factory):
    from include.sandbox.stack import LocalStack, StackConfig

    workdir = tmp_path_factory.mktemp("recon_swap")
    stack = LocalStack(
        StackConfig(
            database="e2e_recon_swap", start=NOV1, seed=23, stores=2, days=30, receipts_per_store_day=3
        ),
        workdir,
    ).start(postgres=postgres)
    recon_dag = dagbag.get_dag("sitoo_reconciliation_monthly")
    hourly_dag = dagbag.get_dag("sitoo_sales_hourly")
    out: dict = {"stack": stack}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_REPORT_DIR", str(workdir / "reports"))
        first = int(stack.dataset.idx["orderdate"].min())
        hourly = run_hour(hourly_dag, datetime.fromtimestamp(first - first % 3600, UTC))
        assert str(hourly.state) == "success", task_states(hourly)
        stack.sitoo.set_clock(int(MONTHLY_RUN.timestamp()))

        a, b = _swap_pair(stack)
        pa, pb = stack.dataset.order(a["orderid"]), stack.dataset.order(b["orderid"])
        for target, source in ((a, pb), (b, pa)):
            changes = {k: source[k] for k in LEDGER_FIELDS}
            # The receipt keeps its own number: only its contents move.
            changes["additionaldata"] = {**source["additionaldata"], "pos-receiptid": target["receipt_id"]}
            stack.sitoo.update_order(target["orderid"], **changes)
        out["pair"] = (a, b)

        run = recon_dag.test(
            logical_date=MONTHLY_RUN.add(minutes=5),
            run_conf={"date_from": None, "date_to": None, "stores": []},
        )
        out["before"] = (run, _last_run(stack))
        # The next hourly run sees the changed receipts (staged by the reconciliation's sweep) and corrects them.
        hourly = run_hour(hourly_dag, datetime(2026, 12, 3, 6, tzinfo=UTC))
        assert str(hourly.state) == "success", task_states(hourly)
        run = recon_dag.test(
            logical_date=MONTHLY_RUN.add(minutes=10),
            run_conf={"date_from": None, "date_to": None, "stores": []},
        )
        out["after"] = (run, _last_run(stack))
        yield out
    stack.stop()
    postgres.drop_database(stack.config.database)


def test_swapped_receipts_are_named_by_the_reconciliation_before_correction(swapped):
    stack, (a, b) = swapped["stack"], swapped["pair"]
    run, recon = swapped["before"]
    assert recon["summary"]["unexplained"] >= 2, recon["summary"]
    assert recon["status"] == "failed" and str(run.state) == "failed"
    lines = [ln for ln in _lines(stack, recon["recon_run_id"]) if ln["class"] == "receipt_mismatch"]
    by_order = {ln["orderid"]: ln for ln in lines}
    for r, other in ((a, b), (b, a)):
        ln = by_order[r["orderid"]]
        assert (ln["receipt_id"], ln["external_id"], ln["erp_id"]) == (
            r["receipt_id"],
            r["external_id"],
            r["erp_id"],
        )
        assert ln["cause"] == "changed_after_posting" and not ln["explained"]
        assert f"total: Sitoo {other['money_gross']}, ERP {r['money_gross']}" in ln["detail"], ln["detail"]
        assert r["receipt_id"] in ln["detail"] and r["external_id"] in ln["detail"]
        assert ln["sitoo_amount"] == other["money_gross"] and ln["erp_amount"] == r["money_gross"]
    # The sums agree: nothing else is off, so only the per-receipt proof can see it.
    assert not [ln for ln in _lines(stack, recon["recon_run_id"]) if ln["class"] == "unexplained_residual"]


def test_after_the_hourly_correction_the_month_passes_receipt_by_receipt(swapped):
    stack, (a, b) = swapped["stack"], swapped["pair"]
    run, recon = swapped["after"]
    assert str(run.state) == "success", (task_states(run), recon["summary"])
    assert recon["status"] == "passed" and recon["summary"]["unexplained"] == 0
    assert recon["summary"]["receipts_proven"] > 100
    assert not [ln for ln in _lines(stack, recon["recon_run_id"]) if ln["class"] == "receipt_mismatch"]
    docs = {d["externalId"]: d for d in stack.netsuite.documents()}
    assert Decimal(str(docs[a["external_id"]]["total"])).quantize(Decimal("0.01")) == b["money_gross"]
    assert Decimal(str(docs[b["external_id"]]["total"])).quantize(Decimal("0.01")) == a["money_gross"]
