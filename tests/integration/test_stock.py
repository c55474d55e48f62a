"""`sitoo_stock_daily` end to end under `dag.test()`: real PostgreSQL, both sandboxes, SMTP sink.

The seeded world has no sales (``receipts_per_store_day=0``) so every stock difference is one this test
plants: a manual move-out and a stock count (posted as one adjustment per store/day), a move-in of a
SKU the ERP does not know (quarantined), an ERP on-hand changed behind the integration's back (drift,
e-mailed), and a sale that moved Sitoo stock but is quarantined in staging (not drift).

The Sitoo clock stays at the end of the seeded days, so the day-2 movements are "in flight" while
day 1 runs: staged, not posted, and accounted for — they are not drift either.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from include.sandbox.catalogue import INVENTORY_ADJUSTMENT_ACCOUNT_ID
from include.sandbox.stack import LocalStack, StackConfig
from include.sitoo_erp.staging.db import connect_url
from include.sitoo_erp.staging.orders import stage_orders
from include.sitoo_erp.stock import drift_summary

DAY = date(2026, 11, 16)
TZ = ZoneInfo("Europe/London")
RUN_AT = datetime.combine(DAY + timedelta(days=1), time(2, 30), TZ)  # the run covering DAY


def local_ts(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime.combine(day, time(hour, minute), TZ).timestamp())


@pytest.fixture(scope="module")
def stock_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from include.sandbox.airflow_env import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag("sitoo_stock_daily")
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=0)
        task.retry_exponential_backoff = False
    return dag


@pytest.fixture
def stack(postgres, airflow_db, monkeypatch, tmp_path):
    cfg = StackConfig(
        database=f"t_{uuid.uuid4().hex[:10]}", stores=2, days=2, receipts_per_store_day=0, skus=60, start=DAY
    )
    s = LocalStack(cfg, tmp_path).start(postgres=postgres)
    s.sitoo.set_clock(
        local_ts(DAY + timedelta(days=2), 2, 30)
    )  # after both seeded days (no orders: no end_ts)
    for key, value in s.env.items():
        monkeypatch.setenv(key, value)
    with connect_url(s.database_url) as conn:  # the stack seeds the adjustment account
        assert conn.execute(
            "select item_id from sitoo_erp.map_document_item where purpose = 'stock_adjustment_account'"
        ).fetchone() == (INVENTORY_ADJUSTMENT_ACCOUNT_ID,)
    yield s
    s.stop()
    postgres.drop_database(cfg.database)


def untouched_skus(ds, n: int) -> list[str]:
    """Known, active SKUs no generated movement touches (planted movements stay easy to reason about)."""
    touched = {it["sku"] for t in ds.warehouse_transactions() for it in t["items"]}
    return [p.sku for p in ds.catalogue.products if p.in_erp and not p.erp_inactive and p.sku not in touched][
        :n
    ]


def plant(stack, wid: int, ts: int, ttype: int, items: list[tuple[str, int]], counted: bool = False) -> None:
    ds = stack.dataset
    with stack.sitoo.lock:
        ds._ledger()
        ds._append_tx(wid, ts, ttype, items, counted=counted)


def expected_day_deltas(ds, store, day: date) -> dict[str, Decimal]:
    start, end = ds.day_bounds(day)
    out: dict[str, Decimal] = {}
    for t in ds.warehouse_transactions():
        own_day = t["warehouseid"] == store.warehouseid and start <= t["datecreated"] < end
        if own_day and t["transactiontype"] not in (30, 40):
            for it in t["items"]:
                out[it["sku"]] = out.get(it["sku"], Decimal(0)) + Decimal(it["decimalquantity"])
    return {k: v for k, v in out.items() if v}


def adjustment_lines(stack, external_id: str) -> dict[str, float]:
    docs = [d for d in stack.netsuite.documents("inventoryAdjustment") if d["externalId"] == external_id]
    assert len(docs) == 1, external_id
    return {ln["item"]["refName"]: ln["adjustQtyBy"] for ln in docs[0]["inventory"]["items"]}


def test_stock_day_posts_adjustments_quarantines_unknown_and_reports_only_real_drift(stack, stock_dag):
    ds = stack.dataset
    cat = ds.catalogue
    st1, st2 = cat.stores
    sku_a, sku_b, sku_c = untouched_skus(ds, 3)
    unknown = next(p.sku for p in cat.products if not p.in_erp)
    cost = {p.sku: p.cost for p in cat.products}

    # Planted in Sitoo on DAY at store 1: a manual move-out, a stock count (-1), a move-in of an unknown SKU.
    plant(stack, st1.warehouseid, local_ts(DAY, 11), 20, [(sku_a, -2)])
    plant(stack, st1.warehouseid, local_ts(DAY, 21), 50, [(sku_b, -1)], counted=True)
    plant(stack, st1.warehouseid, local_ts(DAY, 12), 10, [(unknown, 5)])
    # A sale at store 2 that moved Sitoo stock but is quarantined in staging (never reached the ERP).
    with stack.sitoo.lock:
        sale_id = ds.add_order(store=2, kind="sale", orderdate=local_ts(DAY, 15))
    sale = ds.order(sale_id)
    sale_skus = {r["sku"] for r in sale["orderitems"] if r["sku"] != "GIFTCARD" and r["quantity"]}
    with connect_url(stack.database_url) as conn:
        stage_orders(conn, [sale])
        conn.execute(
            "update sitoo_erp.order_state set state = 'quarantined', reason = 'planted: tender mismatch', "
            "reason_code = 'tender_mismatch' "
            "where orderid = %s",
            (sale_id,),
        )

    run = stock_dag.test(logical_date=RUN_AT)
    assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert run.data_interval_end - run.data_interval_start == timedelta(days=1)

    # One adjustment per store for DAY, with the signed sums of the day's non-sale movements.
    for store in (st1, st2):
        want = {k: float(v) for k, v in expected_day_deltas(ds, store, DAY).items() if k != unknown}
        assert adjustment_lines(stack, f"SITOO-ADJ-{store.externalid}-20261116") == want
    lines = adjustment_lines(stack, "SITOO-ADJ-ST001-20261116")
    assert lines[sku_a] == -2.0 and lines[sku_b] == -1.0 and unknown not in lines
    loc1 = st1.erp_location_id
    item = {p.sku: p.erp_item_id for p in cat.products}
    assert stack.netsuite.on_hand(item[sku_a], loc1) == ds.initial_on_hand(1, sku_a) - 2
    assert stack.netsuite.on_hand(item[sku_b], loc1) == ds.initial_on_hand(1, sku_b) - 1
    assert not any(k.endswith("20261117") for k in stack.netsuite.count_documents_by_external_id())

    with connect_url(stack.database_url) as conn:
        exc = conn.execute(
            "select kind, store_externalid, sku, message from sitoo_erp.exception "
            "where status = 'open' and subject_key = %s",
            (f"stock:ST001:20261116:sku:{unknown}",),
        ).fetchall()
        assert len(exc) == 1 and exc[0][:3] == ("unknown_sku", "ST001", unknown), exc
        assert "+5" in exc[0][3]
        logged = conn.execute(
            "select external_id from sitoo_erp.posting_log where document_type = 'stock_adjustment' order by 1"
        ).fetchall()
        assert [r[0] for r in logged] == ["SITOO-ADJ-ST001-20261116", "SITOO-ADJ-ST002-20261116"]
        # Drift: only the unknown SKU (missing in the ERP); in-flight day-2 moves and the quarantined
        # sale are accounted for, so nothing else differs.
        drift = conn.execute(
            "select location_id, sku, status, drift_units, unposted_sales, unposted_movements "
            "from sitoo_erp.stock_drift order by 1, 2"
        ).fetchall()
        assert {(r[1], r[2]) for r in drift} == {(unknown, "missing_in_erp")}, drift
        # ... although the raw sides do differ for the quarantined sale's SKUs at store 2:
        naive = conn.execute(
            """select s.sku, s.on_hand, e.on_hand from sitoo_erp.stock_snapshot_sitoo s
               join sitoo_erp.stock_snapshot_erp e on e.snapshot_id = s.snapshot_id
                    and e.location_id = s.location_id and e.sku = s.sku
               where s.location_id = %s and s.sku = any(%s) and s.on_hand <> e.on_hand""",
            (st2.erp_location_id, sorted(sale_skus)),
        ).fetchall()
        assert naive and {r[0] for r in naive} <= sale_skus
    # The drift mail leads with the check that failed and its own figures (not "0 pairs drifting").
    drift_mails = [m for m in stack.smtp.messages if "Stock drift" in m["Subject"]]
    assert len(drift_mails) == 1, [m["Subject"] for m in stack.smtp.messages]
    assert drift_mails[0]["Subject"].startswith("[sitoo-erp] 1 SKU missing in the ERP (value "), drift_mails[
        0
    ]["Subject"]
    assert "drifting" not in drift_mails[0]["Subject"]

    # Re-running the day changes nothing: no second document, same ERP stock, and no second mail for
    # the same missing SKU (its exception stays open, in the daily digest).
    before = stack.netsuite.count_documents_by_external_id()
    run = stock_dag.test(logical_date=RUN_AT)
    assert str(run.state) == "success"
    assert len([m for m in stack.smtp.messages if "Stock drift" in m["Subject"]]) == 1
    assert stack.netsuite.count_documents_by_external_id() == before
    assert all(n == 1 for n in before.values())
    assert stack.netsuite.on_hand(item[sku_a], loc1) == ds.initial_on_hand(1, sku_a) - 2

    # Planted drift: the ERP loses 3 of sku_c at store 2 behind the integration's back.
    loc2 = st2.erp_location_id
    with stack.netsuite.store.lock:
        stack.netsuite.store.conn.execute(
            "update inventoryitemlocations set quantityonhand = quantityonhand - 3 where item = ? and location = ?",
            (int(item[sku_c]), int(loc2)),
        )
    stack.smtp.clear()
    run = stock_dag.test(logical_date=RUN_AT)
    assert str(run.state) == "success"
    with connect_url(stack.database_url) as conn:
        row = conn.execute(
            "select store_externalid, drift_units, drift_value, status from sitoo_erp.stock_drift "
            "where location_id = %s and sku = %s",
            (loc2, sku_c),
        ).fetchone()
        assert row is not None
        assert row[0] == "ST002" and row[1] == Decimal("3") and row[3] == "drift"
        assert row[2] == (3 * cost[sku_c]).quantize(Decimal("0.01"))
        # Without GX (each rule's own SQL, through the same runner) the gate decides the same.
        from include.sitoo_erp.stock.gate import StockGateOptions, run_stock_gate
        from include.sitoo_erp.stock.jobs import snapshot_for

        snapshot_id = snapshot_for(conn, DAY)
        assert snapshot_id is not None
        opts = StockGateOptions(snapshot_id, DAY)
        with conn.transaction(force_rollback=True):
            by_sql = run_stock_gate(stack.database_url, conn, opts, use_gx=False)
        with conn.transaction(force_rollback=True):
            by_gx = run_stock_gate(stack.database_url, conn, opts)
        assert by_sql.rule_success == by_gx.rule_success and not by_gx.success, by_gx.rule_success
        assert (by_sql.rule_counts, by_sql.checks) == (by_gx.rule_counts, by_gx.checks)
        assert by_gx.gx_errors == [] and by_gx.rule_counts["drift_within_tolerance"] == 1
        exc = conn.execute(
            "select kind, message from sitoo_erp.exception where status = 'open' and subject_key = %s",
            (f"stock_drift:location={loc2}/sku={sku_c}",),
        ).fetchall()
        assert exc and exc[0][0] == "stock_drift"
        summary = drift_summary(conn)
        by_loc = {r[2]: r for r in summary}
        assert by_loc[loc2][4] == 1 and by_loc[loc2][5] == 1  # the planted drift + the unknown SKU
    # ... and e-mailed: the report names the location, SKU, units and value, and says nothing was changed.
    mails = [m for m in stack.smtp.messages if "Stock drift" in m["Subject"]]
    assert len(mails) == 1, [m["Subject"] for m in stack.smtp.messages]
    assert "drift_within_tolerance" in mails[0]["Subject"]
    assert "no_unexplained_negative" not in mails[0]["Subject"]
    assert f"1 SKU/location pair drifting beyond tolerance (value {row[2]})" in mails[0]["Subject"]
    body = mails[0].get_body(("html",)).get_content()
    assert sku_c in body and loc2 in body and str(row[2]) in body and "No stock was changed" in body
    # The changed set is news: the new drift is named as new, the missing SKU as unchanged.
    news = [line for line in body.splitlines() if 'class="news"' in line]
    assert len(news) == 1 and "new: " in news[0] and sku_c in news[0], news
    counts = next(line for line in body.splitlines() if "New or changed since the last run" in line)
    assert "(1 new, 0 changed, " in counts and " unchanged)" in counts, (
        counts
    )  # the missing SKU etc. are not news
    # Never "fixed": the ERP still has the planted difference, and there is still one document per store.
    assert stack.netsuite.on_hand(item[sku_c], loc2) == ds.initial_on_hand(2, sku_c) - 3
    assert stack.netsuite.count_documents_by_external_id() == before


def test_a_sku_the_erp_lacks_is_missing_not_negative(stack, stock_dag):
    """A move-out of a SKU the ERP does not know leaves its "expected ERP on-hand" below zero; that
    is the missing SKU's story (quarantined, missing_in_erp), not a negative-stock count to chase."""
    ds = stack.dataset
    st1 = ds.catalogue.stores[0]
    unknown = next(p.sku for p in ds.catalogue.products if not p.in_erp)
    plant(stack, st1.warehouseid, local_ts(DAY, 11), 20, [(unknown, -4)])

    run = stock_dag.test(logical_date=RUN_AT)
    assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    with connect_url(stack.database_url) as conn:
        drift = conn.execute(
            "select status, sitoo_on_hand, expected_erp from sitoo_erp.stock_drift "
            "where location_id = %s and sku = %s",
            (st1.erp_location_id, unknown),
        ).fetchone()
        assert drift is not None and drift[0] == "missing_in_erp", drift
        negative = conn.execute(
            "select negative from sitoo_erp.stock_drift_location where location_id = %s order by snapshot_id desc",
            (st1.erp_location_id,),
        ).fetchone()
        assert negative == (0,)
