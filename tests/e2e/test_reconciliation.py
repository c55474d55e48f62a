"""`sitoo_reconciliation_monthly` end to end: a seeded November with planted gaps, a clean month, a 7-day range.

The month is posted by ONE hourly run (its late sweep stages everything, as in the day test), the
gaps are planted in the sandboxes afterwards (an ERP document PUT through NetSuiteHook, a duplicate,
an ERP that recalculated VAT, an offline receipt uploaded after midnight, a Z-report that disagrees),
then the reconciliation DAG runs with dag.test() on its monthly schedule and with params.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pendulum
import pytest
from psycopg.rows import dict_row

from include.sandbox.generator import F_UNKNOWN_SKU
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import run_hour, task_states

NOV1 = date(2026, 11, 1)
MONTHLY_RUN = pendulum.datetime(2026, 12, 3, 6, tz="Europe/London")  # reconciles November


def _build_doc(conn, orderid: int):
    from include.sitoo_erp.posting.documents import DocumentOptions, ReceiptInput, build_document
    from include.sitoo_erp.posting.post import load_mappings

    with conn.cursor(row_factory=dict_row) as cur:
        h = cur.execute("select * from sitoo_erp.sitoo_order where orderid = %s", (orderid,)).fetchone()
        rows = cur.execute(
            "select * from sitoo_erp.sitoo_order_row where orderid = %s order by orderitemid", (orderid,)
        ).fetchall()
        pays = cur.execute(
            "select * from sitoo_erp.sitoo_payment where orderid = %s order by payment_index", (orderid,)
        ).fetchall()
    return build_document(ReceiptInput.from_rows(h, rows, pays), load_mappings(conn), DocumentOptions())


def _posted_sales(conn, store: str, since: date) -> list[tuple[int, str, Decimal]]:
    return conn.execute(
        """
        select p.orderid, p.external_id, coalesce(v.variance, 0) from sitoo_erp.posting_log p
          join sitoo_erp.sitoo_order o using (orderid)
          left join (select orderid, sum(abs(variance)) as variance from sitoo_erp.receipt_tax_variance
                     group by orderid) v using (orderid)
         where p.document_type = 'sale' and p.store_externalid = %s and p.tran_date >= %s
           and o.loyalty_discount = 0
         order by p.orderid
        """,
        (store, since),
    ).fetchall()


def _first_hour(stack) -> datetime:
    """The hour of the month's first order: its run's late sweep stages (and posts) the whole month."""
    first = int(stack.dataset.idx["orderdate"].min())
    return datetime.fromtimestamp(first - first % 3600, UTC)


def _lines(stack, recon_run_id: int) -> list[dict]:
    with connect_url(stack.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from sitoo_erp.reconciliation_line where recon_run_id = %s order by line_id",
            (recon_run_id,),
        ).fetchall()


def _last_run(stack) -> dict:
    with connect_url(stack.database_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from sitoo_erp.reconciliation_run order by recon_run_id desc limit 1"
        ).fetchone()


@pytest.fixture(scope="module")
def recon_dag(dagbag):
    return dagbag.get_dag("sitoo_reconciliation_monthly")


@pytest.fixture(scope="module")
def planted(postgres, dagbag, recon_dag, tmp_path_factory):
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.erp.netsuite_documents import render_netsuite

    workdir = tmp_path_factory.mktemp("recon")
    from include.sandbox.stack import LocalStack, StackConfig

    stack = LocalStack(
        StackConfig(
            database="e2e_recon_planted", start=NOV1, seed=21, stores=2, days=30, receipts_per_store_day=4
        ),
        workdir,
    ).start(postgres=postgres)
    sitoo = stack.sitoo
    planted: dict = {}
    # An unposted receipt: a SKU the ERP does not know -> quarantined by the gate.
    planted["unknown_sku"] = sitoo.add_order(
        store=1, orderdate=int(datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp()), flags=F_UNKNOWN_SKU
    )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_REPORT_DIR", str(workdir / "reports"))
        hourly = run_hour(dagbag.get_dag("sitoo_sales_hourly"), _first_hour(stack))
        assert str(hourly.state) == "success", task_states(hourly)

        hook = NetSuiteHook()
        with connect_url(stack.database_url) as conn:
            st1 = _posted_sales(conn, "ST001", date(2026, 11, 12))
            st2 = _posted_sales(conn, "ST002", date(2026, 11, 12))
            # An ERP document with our externalId and no receipt behind it.
            ghost = replace(_build_doc(conn, st2[0][0]), external_id="SITOO-S-ST002-GHOST0001")
            hook.post_document(ghost)
            planted["extra"] = ghost.external_id
            # A duplicate: the same receipt a second time, keyed by its orderid instead of its receipt id.
            dup_doc = _build_doc(conn, st1[0][0])
            hook.post_document(replace(dup_doc, external_id=f"SITOO-S-ST001-{st1[0][0]}"))
            planted["duplicate"] = (st1[0][0], f"SITOO-S-ST001-{st1[0][0]}")
            # A tax variance: the ERP recalculated VAT per line on a receipt with a recorded variance.
            with_variance = [r for r in st1 + st2 if r[2] != 0]
            assert with_variance, "the seeded month has no receipt with a tax variance"
            tv_doc = _build_doc(conn, with_variance[0][0])
            body = render_netsuite(tv_doc)
            body["taxDetailsOverride"] = False
            hook.upsert_document(tv_doc.kind, tv_doc.external_id, body)
            planted["tax_variance"] = tv_doc.external_id
            # Directly in the sandbox's store: an ERP user edits a posted document's amount, and another
            # posted document disappears from the ERP (nobody knows why).
            used = {st1[0][0], st2[0][0], with_variance[0][0]}
            plain = [r for r in st1 + st2 if r[2] == 0 and r[0] not in used]
            edited, deleted = plain[0], plain[-1]
            erp_ids = dict(
                conn.execute(
                    "select external_id, erp_id from sitoo_erp.posting_log where external_id = any(%s)",
                    ([edited[1], deleted[1]],),
                ).fetchall()
            )
        hook.close()
        ns = stack.netsuite.store
        with ns.lock:
            tid = int(erp_ids[edited[1]])
            ns.conn.execute(
                'UPDATE transactiontaxdetail SET taxbasis = taxbasis + 5 WHERE "transaction" = ? AND id = '
                '(SELECT MIN(id) FROM transactiontaxdetail WHERE "transaction" = ?)',
                (tid, tid),
            )
            tid = int(erp_ids[deleted[1]])
            for table in ("transactiontaxdetail", "transactionline", "transactionaccountingline"):
                ns.conn.execute(f'DELETE FROM {table} WHERE "transaction" = ?', (tid,))
            ns.conn.execute('DELETE FROM "transaction" WHERE id = ?', (tid,))
        planted["amount_mismatch"], planted["deleted"] = edited[1], deleted[1]
        # An offline receipt rung up at 23:50 on 30 November (London = UTC in winter), uploaded at 00:20.
        late_at = int(datetime(2026, 11, 30, 23, 50, tzinfo=UTC).timestamp())
        planted["offline"] = sitoo.add_order(store=2, orderdate=late_at, dateadded=late_at + 30 * 60)
        sitoo.set_clock(max(sitoo.now, late_at + 3600))
        # A Z-report that disagrees with its receipts (the till's sales total is 10.00 too high).
        # (the report the sandbox serves; Sitoo's Z-report names no business day: its till opened that day)
        z = next(
            z
            for z in sitoo.z_reports()
            if z["store_id"] == "ST001"
            and datetime.fromtimestamp(z["dateopened"], UTC).date() == date(2026, 11, 15)
        )
        z["moneysalestotal"] = str(Decimal(z["moneysalestotal"]) + 10)
        planted["zreport"] = z["registerid"]

        stack.smtp.clear()
        run = recon_dag.test(logical_date=MONTHLY_RUN)
        recon = _last_run(stack)
        mails = stack.smtp.messages
        week = recon_dag.test(
            logical_date=MONTHLY_RUN.add(hours=1),
            run_conf={"date_from": "2026-11-02", "date_to": "2026-11-08", "stores": ["ST001"]},
        )
        week_recon = _last_run(stack)
        yield {
            "stack": stack, "run": run, "recon": recon, "mails": mails, "planted": planted,
            "week": week, "week_recon": week_recon, "workdir": workdir,
        }  # fmt: skip
    stack.stop()
    postgres.drop_database(stack.config.database)


def test_monthly_interval_is_the_closed_month(planted):
    run = planted["run"]
    assert pendulum.instance(run.data_interval_start).in_timezone("Europe/London").month == 11
    recon = planted["recon"]
    assert (recon["date_from"], recon["date_to"]) == (date(2026, 11, 1), date(2026, 11, 30))


def test_gate_fails_and_tasks_before_it_succeed(planted):
    states = task_states(planted["run"])
    assert str(planted["run"].state) == "failed", states
    assert states["sweep_sitoo"] == states["reconcile"] == "success", states
    assert states["gate"] == "failed", states
    assert planted["recon"]["status"] == "failed"


def test_every_planted_gap_is_named_with_class_and_cause(planted):
    lines = _lines(planted["stack"], planted["recon"]["recon_run_id"])
    by = {(ln["class"], ln["cause"]): ln for ln in lines}
    p = planted["planted"]
    missing = {ln["orderid"]: ln for ln in lines if ln["class"] == "missing_in_erp"}
    assert missing[p["unknown_sku"]]["cause"] == "quarantined" and missing[p["unknown_sku"]]["explained"]
    assert "unknown_sku" in missing[p["unknown_sku"]]["detail"]
    offline = missing[p["offline"]]
    assert offline["cause"] == "held" and offline["business_date"] == date(2026, 11, 30)
    assert "after the last hourly sync" in offline["detail"]
    extra = [ln for ln in lines if ln["class"] == "extra_in_erp"]
    assert [ln["external_id"] for ln in extra] == [p["extra"]] and extra[0]["cause"] == "no_receipt"
    dup = [ln for ln in lines if ln["class"] == "duplicate_in_erp"]
    assert [(ln["orderid"], ln["external_id"]) for ln in dup] == [p["duplicate"]]
    tv = [ln for ln in lines if ln["class"] == "tax_variance"]
    assert [ln["external_id"] for ln in tv] == [p["tax_variance"]] and tv[0]["explained"]
    z = [ln for ln in lines if ln["class"] == "zreport_mismatch"]
    assert [(ln["registerid"], ln["business_date"]) for ln in z] == [(p["zreport"], date(2026, 11, 15))]
    assert "difference sales 10.00" in z[0]["detail"]
    assert ("unexplained_residual", "unknown") not in by, by.get(("unexplained_residual", "unknown"))
    unexplained = {ln["class"] for ln in lines if not ln["explained"]}
    assert unexplained == {
        "extra_in_erp",
        "duplicate_in_erp",
        "zreport_mismatch",
        "amount_mismatch",
        "missing_in_erp",
    }, unexplained


def test_erp_amount_edit_is_an_amount_mismatch(planted):
    lines = _lines(planted["stack"], planted["recon"]["recon_run_id"])
    eid = planted["planted"]["amount_mismatch"]
    hit = [ln for ln in lines if ln["external_id"] == eid]
    assert [(ln["class"], ln["cause"], ln["explained"]) for ln in hit] == [
        ("amount_mismatch", "erp_amounts_differ", False)
    ], hit
    assert hit[0]["diff_net"] == Decimal("-5.00") and hit[0]["diff_tax"] == 0, hit[0]
    assert hit[0]["owner"] == "finance" and f"{eid}: ERP net" in hit[0]["detail"]


def test_document_deleted_from_the_erp_is_missing_with_cause_unknown(planted):
    lines = _lines(planted["stack"], planted["recon"]["recon_run_id"])
    eid = planted["planted"]["deleted"]
    hit = [ln for ln in lines if ln["external_id"] == eid]
    assert [(ln["class"], ln["cause"], ln["explained"]) for ln in hit] == [
        ("missing_in_erp", "unknown", False)
    ]
    assert "in the posting log" in hit[0]["detail"] and "deleted, voided or re-dated" in hit[0]["detail"]
    assert hit[0]["erp_amount"] == 0 and hit[0]["sitoo_amount"] > 0
    unknown = [ln for ln in lines if ln["class"] == "missing_in_erp" and ln["cause"] == "unknown"]
    assert len(unknown) == 1, [ln["detail"] for ln in unknown]


def test_finance_email_arrives_with_the_report_attached(planted):
    mails = planted["mails"]
    assert len(mails) == 1, [m["Subject"] for m in mails]
    mail = mails[0]
    assert "FAILED" in mail["Subject"] and "2026-11-01..2026-11-30" in mail["Subject"]
    names = sorted(part.get_filename() for part in mail.iter_attachments())
    assert names[0].endswith(".csv") and names[1].endswith(".html"), names
    html = next(p for p in mail.iter_attachments() if p.get_filename().endswith(".html")).get_content()
    html = html.decode() if isinstance(html, bytes) else html
    assert "<svg" in html and "GHOST0001" in html and "Per store" in html
    recon = planted["recon"]
    assert recon["report_html"] and recon["report_csv"].startswith("line_id,class")
    assert recon["report_path"] and (planted["workdir"] / "reports").exists()


def test_custom_seven_day_range_reconciles_only_that_range(planted):
    assert str(planted["week"].state) == "success", task_states(planted["week"])
    recon = planted["week_recon"]
    assert (recon["date_from"], recon["date_to"], recon["stores"]) == (
        date(2026, 11, 2),
        date(2026, 11, 8),
        ["ST001"],
    )
    with connect_url(planted["stack"].database_url) as conn:
        days, stores = conn.execute(
            "select array_agg(distinct business_date order by business_date), array_agg(distinct store_externalid) "
            "from sitoo_erp.reconciliation_cell where recon_run_id = %s",
            (recon["recon_run_id"],),
        ).fetchone()
    assert stores == ["ST001"]
    assert days[0] >= date(2026, 11, 2) and days[-1] <= date(2026, 11, 8) and len(days) == 7
    assert all(ln["explained"] for ln in _lines(planted["stack"], recon["recon_run_id"]))


@pytest.fixture(scope="module")
def clean(postgres, dagbag, recon_dag, tmp_path_factory):
    from include.sandbox.stack import LocalStack, StackConfig

    workdir = tmp_path_factory.mktemp("recon_clean")
    stack = LocalStack(
        StackConfig(
            database="e2e_recon_clean", start=NOV1, seed=22, stores=2, days=30, receipts_per_store_day=3
        ),
        workdir,
    ).start(postgres=postgres)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_REPORT_DIR", str(workdir / "reports"))
        hourly = run_hour(dagbag.get_dag("sitoo_sales_hourly"), _first_hour(stack))
        assert str(hourly.state) == "success", task_states(hourly)
        stack.sitoo.set_clock(int(MONTHLY_RUN.timestamp()))  # the run day: every till has closed its Z
        stack.smtp.clear()
        # explicit defaults: dag.test(run_conf=...) of another test leaves its values on the shared DAG's params
        run = recon_dag.test(
            logical_date=MONTHLY_RUN.add(minutes=5),
            run_conf={"date_from": None, "date_to": None, "stores": []},
        )
        yield {"stack": stack, "run": run, "recon": _last_run(stack), "mails": stack.smtp.messages}
    stack.stop()
    postgres.drop_database(stack.config.database)


def test_clean_month_passes_with_zero_unexplained_difference(clean):
    bad = [
        (ln["class"], ln["cause"], ln["detail"])
        for ln in _lines(clean["stack"], clean["recon"]["recon_run_id"])
    ]
    assert str(clean["run"].state) == "success", (
        task_states(clean["run"]),
        bad[:5],
        clean["recon"]["summary"],
    )
    recon = clean["recon"]
    assert recon["status"] == "passed"
    assert all(ln["explained"] for ln in _lines(clean["stack"], recon["recon_run_id"]))
    summary = recon["summary"]
    assert summary["unexplained"] == 0 and summary["sitoo"]["receipts"] > 100, summary
    assert [m["Subject"] for m in clean["mails"]] == [
        "[sitoo-erp] Reconciliation 2026-11-01..2026-11-30: passed, zero unexplained difference"
    ]
