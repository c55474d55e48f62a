"""Summary posting mode seen by the reconciliation, the after-posting check, stock and the ops page.

A week of one ``daily_summary`` store beside one ``receipt`` store through `sitoo_sales_hourly`, then:
`sitoo_stock_daily` for the last day (sales decrement the ERP's stock once, through the summaries),
`sitoo_reconciliation_monthly` over the week (clean: 0 unexplained, every summarised receipt
proven), then planted gaps — a summary edited in the ERP, another summary's line quantity edited in
the ERP (amounts kept), a receipt lost from the summary posting log, two receipts of one summary swapped
in Sitoo, one cancelled in Sitoo — reconciled again, one
hourly run (the after-posting check raises the Sitoo changes for finance), and reconciled a third time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pendulum
import pytest
from psycopg.rows import dict_row

from include.sitoo_erp.operations import queries
from include.sitoo_erp.posting.summary import set_posting_mode
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import make_stack, run_hour, task_states
from tests.e2e.helpers import render_ops_page

START = date(2026, 11, 16)  # Monday; London = UTC in November
LEDGER_FIELDS = (
    "orderitems",
    "payments",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneytotal_gross_roundoff",
    "moneytotal_gross_all",
    "additionaldata",
)
WEEK = {"date_from": "2026-11-16", "date_to": "2026-11-22", "stores": None}


def d(n: int) -> date:
    return START + timedelta(days=n)


def ts(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def recon_at(n: int) -> pendulum.DateTime:
    return pendulum.datetime(2026, 11, 24, 6 + n, tz="Europe/London")


def _last_recon(conn) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(
            "select * from sitoo_erp.reconciliation_run order by recon_run_id desc limit 1"
        ).fetchone()
        run["lines"] = cur.execute(
            "select * from sitoo_erp.reconciliation_line where recon_run_id = %s order by line_id",
            (run["recon_run_id"],),
        ).fetchall()
    return run


def _summary(conn, external_id: str) -> tuple[str, list[dict]]:
    with conn.cursor(row_factory=dict_row) as cur:
        erp_id = cur.execute(
            "select erp_id from sitoo_erp.summary_document where external_id = %s", (external_id,)
        ).fetchone()["erp_id"]
        receipts = cur.execute(
            """
            select r.orderid, o.receipt_id, o.registerid, o.money_gross, o.loyalty_discount
              from sitoo_erp.summary_receipt r join sitoo_erp.sitoo_order o using (orderid)
             where r.external_id = %s order by r.orderid
            """,
            (external_id,),
        ).fetchall()
    return erp_id, receipts


def _stock_drift(conn, location_id: str) -> dict[str, dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return {
            r["sku"]: r
            for r in cur.execute(
                "select * from sitoo_erp.stock_drift where snapshot_id = (select max(snapshot_id) "
                "from sitoo_erp.stock_drift_location) and location_id = %s",
                (location_id,),
            )
        }


@pytest.fixture(scope="module")
def world(postgres, dagbag, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("summary-recon")
    stack = make_stack(postgres, workdir, seed=31, stores=2, days=7, receipts_per_store_day=10)
    summary_store, receipt_store = (s.externalid for s in stack.dataset.catalogue.stores)
    with connect_url(stack.database_url) as conn:
        set_posting_mode(conn, "receipt", date(2026, 1, 1))
        set_posting_mode(conn, "daily_summary", date(2026, 11, 1), summary_store, changed_by="e2e")
    hourly = dagbag.get_dag("sitoo_sales_hourly")
    recon = dagbag.get_dag("sitoo_reconciliation_monthly")
    stock = dagbag.get_dag("sitoo_stock_daily")
    out: dict = {"stack": stack, "summary_store": summary_store, "receipt_store": receipt_store, "runs": []}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", "")
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_REPORT_DIR", str(workdir / "reports"))
        stack.sitoo.set_clock(int(ts(d(8), 6).timestamp()))
        # Monday 09:00: the late sweep stages the week; the receipt store posts, the summary store waits.
        out["runs"].append(run_hour(hourly, ts(d(0), 9)))
        with connect_url(stack.database_url) as conn:
            out["stalled_before"] = queries.stalled_receipts(conn, now=ts(d(0), 10))
            out["waiting"] = conn.execute(
                "select count(*) from sitoo_erp.order_state s join sitoo_erp.sitoo_order o using (orderid) "
                "where s.state = 'held' and s.reason = 'ready to post' and o.store_externalid = %s",
                (summary_store,),
            ).fetchone()[0]
        # The next Tuesday 07:00: every day of the week has closed and is summarised.
        out["runs"].append(run_hour(hourly, ts(d(8), 6)))
        # Stock for the last day of the week (Sitoo's on-hand is the end of the week's).
        out["stock"] = stock.test(logical_date=pendulum.datetime(2026, 11, 23, 2, 30, tz="Europe/London"))
        with connect_url(stack.database_url) as conn:
            out["summaries_page"] = queries.summary_documents(conn, limit=100)
            out["html"] = render_ops_page(conn)
            out["stalled_after"] = queries.stalled_receipts(conn, now=ts(d(8), 7))
            loc = dict(conn.execute("select store_externalid, location_id from sitoo_erp.map_store_location"))
            out["drift"] = {s: _stock_drift(conn, loc[s]) for s in (summary_store, receipt_store)}
            out["summarised"] = conn.execute(
                "select count(*) from sitoo_erp.summary_receipt r join sitoo_erp.summary_document d "
                "using (external_id) where d.status = 'posted'"
            ).fetchone()[0]

        # 1. A clean week.
        out["clean_run"] = recon.test(logical_date=recon_at(0), run_conf=WEEK)
        with connect_url(stack.database_url) as conn:
            out["clean"] = _last_recon(conn)

        # 2. Planted: an ERP user edits Wednesday's summary; a finance user changes one item line's
        # quantity on Tuesday's summary in NetSuite, keeping its amount (so only quantities differ);
        # Thursday's summary loses a receipt from the summary posting log; two receipts of Friday's
        # summary swap contents in Sitoo; one receipt of Saturday's summary is cancelled in Sitoo.
        key = lambda n: f"SITOO-D-{summary_store}-{d(n):%Y%m%d}"  # noqa: E731
        planted: dict = {
            "edited": key(2),
            "qty_doc": key(1),
            "lost_doc": key(3),
            "swapped_doc": key(4),
            "cancelled_doc": key(5),
        }
        with connect_url(stack.database_url) as conn:
            erp_id, _ = _summary(conn, key(1))
            record = stack.netsuite.store.get_record("cashSale", internal_id=erp_id)
            stock_lines = {
                r[0] for r in stack.netsuite.store.query(
                    "SELECT id FROM transactionline WHERE \"transaction\" = ? AND itemtype = 'InvtPart'",
                    (int(erp_id),),
                )
            }  # fmt: skip
            line = next(ln for ln in record["item"]["items"] if ln["line"] in stock_lines)
            posted_qty = sum(Decimal(str(ln["quantity"])) for ln in record["item"]["items"])
            stack.netsuite.edit_line_quantity(erp_id, line["line"], Decimal(str(line["quantity"])) + 2)
            planted["qty"] = {"erp_id": erp_id, "posted": posted_qty, "erp": posted_qty + 2}
            erp_id, _ = _summary(conn, key(2))
            ns = stack.netsuite.store
            with ns.lock:
                ns.conn.execute(
                    'UPDATE transactiontaxdetail SET taxbasis = taxbasis + 5 WHERE "transaction" = ? AND id = '
                    '(SELECT MIN(id) FROM transactiontaxdetail WHERE "transaction" = ?)',
                    (int(erp_id), int(erp_id)),
                )
            _, receipts = _summary(conn, key(3))
            planted["lost"] = receipts[0]
            conn.execute(
                "delete from sitoo_erp.summary_receipt where orderid = %s", (receipts[0]["orderid"],)
            )
            _, receipts = _summary(conn, key(4))
            pair = next(
                (a, b)
                for a, b in pairwise([r for r in receipts if r["loyalty_discount"] == 0])
                if a["registerid"] == b["registerid"] and a["money_gross"] != b["money_gross"]
            )
            planted["swapped"] = pair
            _, receipts = _summary(conn, key(5))
            planted["cancelled"] = receipts[-1]
        pa, pb = (stack.dataset.order(r["orderid"]) for r in pair)
        for target, source in ((pair[0], pb), (pair[1], pa)):
            changes = {k: source[k] for k in LEDGER_FIELDS}
            changes["additionaldata"] = {**source["additionaldata"], "pos-receiptid": target["receipt_id"]}
            stack.sitoo.update_order(target["orderid"], **changes)
        stack.sitoo.update_order(planted["cancelled"]["orderid"], orderstateid=20)
        out["planted"] = planted
        out["docs_before_hourly"] = stack.netsuite.count_documents_by_external_id()

        out["planted_run"] = recon.test(logical_date=recon_at(1), run_conf=WEEK)
        with connect_url(stack.database_url) as conn:
            out["before_hourly"] = _last_recon(conn)
        # 3. The next hourly run: the after-posting check sees the Sitoo changes (staged by the sweep).
        out["runs"].append(run_hour(hourly, ts(d(8), 7)))
        out["docs_after_hourly"] = stack.netsuite.count_documents_by_external_id()
        out["raised_run"] = recon.test(logical_date=recon_at(2), run_conf=WEEK)
        with connect_url(stack.database_url) as conn:
            out["after_hourly"] = _last_recon(conn)
            with conn.cursor(row_factory=dict_row) as cur:
                out["exceptions"] = cur.execute(
                    "select * from sitoo_erp.exception where kind in ('changed_after_posting', "
                    "'cancelled_after_posting') order by orderid"
                ).fetchall()
            out["states"] = dict(conn.execute("select orderid, state from sitoo_erp.order_state").fetchall())
        yield out
    stack.stop()
    postgres.drop_database(stack.config.database)


def _by(lines: list[dict], **match) -> list[dict]:
    return [ln for ln in lines if all(ln[k] == v for k, v in match.items())]


def test_every_run_succeeds(world):
    for run in world["runs"]:
        assert str(run.state) == "success", task_states(run)
    assert str(world["stock"].state) == "success", task_states(world["stock"])


def test_a_clean_summary_week_reconciles_to_its_receipts(world):
    run, clean = world["clean_run"], world["clean"]
    summary = clean["summary"]
    assert str(run.state) == "success", (task_states(run), summary["lines_by_class"])
    assert clean["status"] == "passed" and summary["unexplained"] == 0, [
        ln["detail"] for ln in clean["lines"] if not ln["explained"]
    ]
    # Both stores' store-days are in the cells, the ERP sums equal Sitoo's, no residual, and every
    # summarised receipt was proven through its summary (besides the receipt store's per-receipt proof).
    assert set(summary["sitoo"]["receipts_by_store"]) == {
        world["summary_store"],
        world["receipt_store"],
    }
    assert not _by(clean["lines"], **{"class": "unexplained_residual"})
    assert not _by(clean["lines"], **{"class": "receipt_mismatch"})
    assert world["summarised"] > 50
    # Every summary was posted with its line quantities recorded: the clean week proved them too.
    with connect_url(world["stack"].database_url) as conn:
        unrecorded = conn.execute(
            "select count(*) from sitoo_erp.summary_document where status = 'posted' and line_qty is null"
        ).fetchone()[0]
    assert unrecorded == 0
    with connect_url(world["stack"].database_url) as conn:
        logged = conn.execute(
            "select count(*) from sitoo_erp.posting_log where document_type in ('sale', 'refund', 'credit_memo')"
        ).fetchone()[0]
    assert summary["receipts_proven"] == logged + world["summarised"]


def test_a_summary_edited_in_the_erp_is_named_as_that_document(world):
    lines = world["before_hourly"]["lines"]
    eid = world["planted"]["edited"]
    hit = _by(lines, external_id=eid)
    assert [(ln["class"], ln["cause"], ln["explained"]) for ln in hit] == [
        ("amount_mismatch", "erp_amounts_differ", False)
    ], hit
    assert hit[0]["diff_net"] == Decimal("-5.00") and "daily summary of" in hit[0]["detail"]
    # Still unexplained after the hourly run: nothing in the pipeline changed the ERP document.
    assert _by(world["after_hourly"]["lines"], external_id=eid)[0]["explained"] is False


def test_a_summary_whose_line_quantity_was_edited_in_the_erp_is_named_with_both_quantities(world):
    """Amounts untouched, one item line's quantity changed in NetSuite: the store-day's sums agree, only
    the per-document proof of quantities can see it."""
    p = world["planted"]
    eid, q = p["qty_doc"], p["qty"]
    for recon in (world["before_hourly"], world["after_hourly"]):
        hit = _by(recon["lines"], external_id=eid)
        assert [(ln["class"], ln["cause"], ln["explained"], ln["owner"]) for ln in hit] == [
            ("receipt_mismatch", "erp_differs", False, "finance")
        ], hit
        detail = hit[0]["detail"]
        assert f"daily summary {eid} (ERP id {q['erp_id']}, {world['summary_store']} {d(1)}," in detail
        erp_qty, posted_qty = (f"{q[k].normalize():f}" for k in ("erp", "posted"))
        assert f"item quantity {erp_qty} in the ERP, posted with {posted_qty}" in detail, detail
        # Amounts are as posted: nothing to explain in money.
        assert hit[0]["diff_net"] == 0 and hit[0]["diff_tax"] == 0
    # Only that document: the other days' summaries (their quantities as posted) are not named.
    named = {ln["external_id"] for ln in world["before_hourly"]["lines"] if ln["class"] == "receipt_mismatch"}
    assert named == {p["qty_doc"], p["lost_doc"], p["swapped_doc"], p["cancelled_doc"]}, named


def test_a_receipt_on_no_summary_is_named_with_its_document(world):
    lines = world["before_hourly"]["lines"]
    lost = world["planted"]["lost"]
    receipt = _by(lines, orderid=lost["orderid"], **{"class": "missing_in_erp"})
    assert [(ln["cause"], ln["explained"], ln["receipt_id"]) for ln in receipt] == [
        ("not_in_any_summary", False, lost["receipt_id"])
    ], receipt
    assert receipt[0]["diff_net"] + receipt[0]["diff_tax"] == lost["money_gross"]
    doc = _by(lines, external_id=world["planted"]["lost_doc"])
    assert [(ln["class"], ln["cause"], ln["explained"]) for ln in doc] == [
        ("receipt_mismatch", "receipts_differ", False)
    ], doc
    assert "summary posting log (summary_receipt) now names" in doc[0]["detail"]
    # The two lines explain the store-day between them: no residual for that day.
    day = world["before_hourly"]["lines"]
    assert not _by(day, **{"class": "unexplained_residual"}), [
        ln["detail"] for ln in _by(day, **{"class": "unexplained_residual"})
    ]


def test_receipts_changed_or_cancelled_after_their_summary_are_named_then_explained_once_raised(world):
    p = world["planted"]
    a, b = p["swapped"]
    for recon, explained in ((world["before_hourly"], False), (world["after_hourly"], True)):
        swapped = _by(recon["lines"], external_id=p["swapped_doc"])
        assert [(ln["class"], ln["cause"], ln["explained"]) for ln in swapped] == [
            ("receipt_mismatch", "changed_after_posting", explained)
        ], swapped
        for r in (a, b):
            assert f"receipt {r['receipt_id']} (order {r['orderid']}) changed" in swapped[0]["detail"]
        cancelled = _by(recon["lines"], external_id=p["cancelled_doc"])
        assert [(ln["class"], ln["cause"], ln["explained"], ln["orderid"]) for ln in cancelled] == [
            ("receipt_mismatch", "cancelled_after_posting", explained, p["cancelled"]["orderid"])
        ], cancelled
        # Sitoo no longer has the cancelled receipt: the summary holds its gross more than its receipts.
        assert cancelled[0]["diff_net"] + cancelled[0]["diff_tax"] == -p["cancelled"]["money_gross"]
    # What is left unexplained once finance has the Sitoo changes: the ERP edits and the lost receipt.
    left = {(ln["class"], ln["cause"]) for ln in world["after_hourly"]["lines"] if not ln["explained"]}
    assert left == {
        ("amount_mismatch", "erp_amounts_differ"),
        ("receipt_mismatch", "erp_differs"),
        ("missing_in_erp", "not_in_any_summary"),
        ("receipt_mismatch", "receipts_differ"),
    }, left
    assert str(world["raised_run"].state) == "failed" and world["after_hourly"]["status"] == "failed"


def test_after_posting_a_summarised_receipt_that_changes_is_raised_for_finance_not_silenced(world):
    p = world["planted"]
    by_order = {(e["orderid"], e["kind"]): e for e in world["exceptions"] if e["status"] == "open"}
    for r in p["swapped"]:
        exc = by_order[(r["orderid"], "changed_after_posting")]
        assert exc["owner"] == "finance" and p["swapped_doc"] in exc["message"]
        assert r["receipt_id"] in exc["message"] and "never rewritten" in exc["message"]
    exc = by_order[(p["cancelled"]["orderid"], "cancelled_after_posting")]
    assert exc["owner"] == "finance" and p["cancelled_doc"] in exc["message"]
    assert f"gross {p['cancelled']['money_gross']}" in exc["message"]
    # Exactly these three, the receipts stay posted (their summary holds them) and no ERP document moved.
    assert len(by_order) == 3, sorted(by_order)
    assert all(world["states"][o] == "posted" for o, _ in by_order)
    assert world["docs_after_hourly"] == world["docs_before_hourly"]
    with connect_url(world["stack"].database_url) as conn:
        revisions = conn.execute(
            "select orderid, external_id, action, status from sitoo_erp.posting_revision order by orderid"
        ).fetchall()
    assert sorted(revisions) == sorted(
        [(r["orderid"], p["swapped_doc"], "exception", "raised") for r in p["swapped"]]
        + [(p["cancelled"]["orderid"], p["cancelled_doc"], "exception", "raised")]
    )


def test_stock_decrements_once_through_the_summaries(world):
    """SKUs only sales moved over the week: the ERP's on-hand (less what is not posted) is Sitoo's at the
    summary store exactly as at the receipt store — never twice, never not at all."""
    ds = world["stack"].dataset
    moved = {
        it["sku"]
        for t in ds.warehouse_transactions()
        if t["transactiontype"] not in (30, 40)
        for it in t["items"]
    }
    orders = [ds.order(oid) for oid in range(10_001, ds.max_orderid + 1)]
    sold = {
        row["sku"]
        for order in orders
        if (store := ds.store_of(order)) is not None and store.externalid == world["summary_store"]
        for row in order.get("orderitems") or []
    } - moved
    drift = world["drift"]
    assert len(sold) > 10
    for store in (world["summary_store"], world["receipt_store"]):
        wrong = {sku: (r["sitoo_on_hand"], r["erp_on_hand"], r["unposted_sales"]) for sku, r in drift[store].items()
                 if r["status"] == "drift" and sku not in moved}  # fmt: skip
        assert not wrong, (store, wrong)


def test_operations_page_shows_summary_documents_and_counts_waiting_receipts(world):
    page = world["summaries_page"]
    totals = page["totals"]
    assert page["available"] and totals["pending_documents"] == 0
    assert totals["posted_receipts"] == world["summarised"]
    assert totals["store_days"] == 7
    docs = {doc["external_id"]: doc for doc in page["documents"]}
    monday = docs[f"SITOO-D-{world['summary_store']}-{d(0):%Y%m%d}"]
    assert (monday["status"], monday["supplement"], monday["part"]) == ("posted", 0, 1)
    assert sum(doc["receipt_count"] for doc in docs.values()) == world["summarised"]
    # The page shows each of them and the count of summarised receipts.
    html = world["html"]
    assert f'data-total="posted_receipts">{world["summarised"]:,}<' in html
    for external_id in docs:
        assert f'data-summary="{external_id}"' in html, external_id
    # Before the days closed, the summary store's ready receipts wait for their summary, not "stuck".
    grid = world["stalled_before"]["grid"]
    assert sum(grid["awaiting_daily_summary"].values()) == world["waiting"] > 0
    assert sum(world["stalled_after"]["grid"]["awaiting_daily_summary"].values()) == 0
