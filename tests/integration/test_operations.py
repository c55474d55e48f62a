"""Ops actions on a real PostgreSQL: audited mapping edits, ignore/resolve, owners per kind."""

from __future__ import annotations

import pytest

from include.sitoo_erp.operations.actions import (
    ActionError,
    delete_mapping,
    ignore_exception,
    resolve_exception,
    set_owner,
    upsert_mapping,
)
from include.sitoo_erp.posting.classify import classify
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception
from include.sitoo_erp.staging.orders import stage_orders
from tests.unit.test_sitoo_models import order


def audit_rows(conn):
    return conn.execute(
        "select entity, entity_key, action, before, after, actor, source from sitoo_erp.audit_log order by audit_id"
    ).fetchall()


def test_mapping_edits_are_audited_before_and_after(staging_conn):
    upsert_mapping(staging_conn, "map_sku_item", "SKU-9", {"item_id": "100009"}, "alice", "ui")
    upsert_mapping(
        staging_conn, "map_sku_item", "SKU-9", {"item_id": "100010"}, "bob", "replay_dag", note="typo"
    )
    assert staging_conn.execute("select item_id, updated_by from sitoo_erp.map_sku_item").fetchall() == [
        ("100010", "bob")
    ]
    rows = audit_rows(staging_conn)
    assert [(r[0], r[1], r[2], r[5], r[6]) for r in rows] == [
        ("map_sku_item", "SKU-9", "insert", "alice", "ui"),
        ("map_sku_item", "SKU-9", "update", "bob", "replay_dag"),
    ]
    assert rows[0][3] is None and rows[0][4]["item_id"] == "100009"
    assert rows[1][3]["item_id"] == "100009" and rows[1][4]["item_id"] == "100010"
    delete_mapping(staging_conn, "map_sku_item", "SKU-9", "carol", "ui")
    assert audit_rows(staging_conn)[-1][2] == "delete"


@pytest.mark.parametrize(
    ("table", "key", "values", "message"),
    [
        ("map_nope", "x", {}, "unknown mapping table"),
        ("map_sku_item", "", {"item_id": "1"}, "sku is required"),
        ("map_sku_item", "SKU-1", {}, "item_id required"),
        ("map_sku_item", "SKU-1", {"item_id": "1", "colour": "red"}, "unknown field"),
        ("map_vat_tax_code", "twenty", {"tax_code_id": "1", "tax_type_id": "7"}, "vat_rate must be a number"),
    ],
)
def test_bad_mapping_edits_are_refused_with_a_clear_message(staging_conn, table, key, values, message):
    with pytest.raises(ActionError, match=message):
        upsert_mapping(staging_conn, table, key, values, "alice", "ui")
    assert audit_rows(staging_conn) == []


def _quarantined_receipt(conn, orderid: int) -> int:
    stage_orders(conn, [order(orderid=orderid, registerid="{R}")])
    classify(conn)
    conn.execute(
        "update sitoo_erp.order_state set state = 'quarantined', reason = 'test', reason_code = 'quality_gate' where orderid = %s",
        (orderid,),
    )
    return record_exception(
        conn,
        ExceptionKind.ORPHANED_RETURN,
        f"order:{orderid}:orphaned_return:x",
        rule="gx:test",
        message="original unknown",
        orderid=orderid,
    )


def test_an_ignored_exception_leaves_the_queue_and_stays_ignored(staging_conn):
    exception_id = _quarantined_receipt(staging_conn, 41)
    with pytest.raises(ActionError, match="reason"):
        ignore_exception(staging_conn, exception_id, "", "dana", "ui")
    ignore_exception(staging_conn, exception_id, "sale predates go-live", "dana", "ui")
    assert staging_conn.execute("select status from sitoo_erp.exception").fetchall() == [("ignored",)]
    state, reason = staging_conn.execute(
        "select state, reason from sitoo_erp.order_state where orderid = 41"
    ).fetchone()
    assert state == "excluded" and "dana" in reason and "go-live" in reason
    # The next runs see the same cause again: it stays ignored (counted), and the receipt stays excluded.
    classify(staging_conn)
    again = record_exception(
        staging_conn,
        ExceptionKind.ORPHANED_RETURN,
        "order:41:orphaned_return:x",
        rule="gx:test",
        message="original unknown",
        orderid=41,
    )
    assert again == exception_id
    assert staging_conn.execute("select status, occurrences from sitoo_erp.exception").fetchall() == [
        ("ignored", 2)
    ]
    assert staging_conn.execute("select state from sitoo_erp.order_state where orderid = 41").fetchone() == (
        "excluded",
    )
    assert audit_rows(staging_conn)[-1][2] == "ignore"


def test_resolve_by_hand_and_owner_per_kind(staging_conn):
    exception_id = _quarantined_receipt(staging_conn, 42)
    assert staging_conn.execute("select owner from sitoo_erp.exception").fetchone() == ("retail_ops",)
    set_owner(staging_conn, "orphaned_return", "finance", "erin", "ui")
    assert staging_conn.execute("select owner from sitoo_erp.exception").fetchone() == ("finance",)
    resolve_exception(staging_conn, exception_id, "original sale keyed in the ERP", "erin", "ui")
    with pytest.raises(ActionError, match="not open"):
        resolve_exception(staging_conn, exception_id, "twice", "erin", "ui")
    # A new occurrence after a manual resolve opens a fresh exception, owned by the new owner.
    fresh = record_exception(
        staging_conn,
        ExceptionKind.ORPHANED_RETURN,
        "order:42:orphaned_return:x",
        rule="gx:test",
        message="original unknown",
        orderid=42,
    )
    assert fresh != exception_id
    assert staging_conn.execute(
        "select owner from sitoo_erp.exception where exception_id = %s", (fresh,)
    ).fetchone() == ("finance",)


def test_reconciliation_status_with_a_reconciliation_in_the_database(staging_conn):
    """The operations page's summary once a reconciliation has run (it answered HTTP 500: PostgreSQL
    refuses a FULL JOIN on ``is not distinct from``). Stores only in the cells, only in the lines, and
    lines without a store all show up once."""
    from include.sitoo_erp.operations.queries import reconciliation_status

    run_id = staging_conn.execute(
        "insert into sitoo_erp.reconciliation_run (dag_id, run_id, date_from, date_to, status, compared_at) "
        "values ('sitoo_reconciliation_monthly', 'm1', '2026-11-01', '2026-11-30', 'failed', now()) "
        "returning recon_run_id"
    ).fetchone()[0]
    staging_conn.execute(
        """
        insert into sitoo_erp.reconciliation_cell (recon_run_id, store_externalid, business_date, tax_code_id,
            sitoo_receipts, sitoo_net, sitoo_tax, erp_docs, erp_net, erp_tax)
        values (%(r)s, 'ST001', '2026-11-02', 'S20', 10, 100.00, 20.00, 10, 90.00, 18.00),
               (%(r)s, 'ST001', '2026-11-03', 'S20', 5, 50.00, 10.00, 5, 50.00, 10.00),
               (%(r)s, 'ST002', '2026-11-02', 'S20', 3, 30.00, 6.00, 3, 30.00, 6.00)
        """,
        {"r": run_id},
    )
    staging_conn.execute(
        """
        insert into sitoo_erp.reconciliation_line (recon_run_id, class, cause, explained, owner,
            store_externalid, diff_net, detail)
        values (%(r)s, 'missing_in_erp', 'not posted', false, 'finance', 'ST001', 10.00, 'x'),
               (%(r)s, 'extra_in_erp', 'unknown', false, 'finance', 'ST009', -5.00, 'y'),
               (%(r)s, 'unexplained_residual', 'rounding', true, 'finance', null, 0.01, 'z')
        """,
        {"r": run_id},
    )
    status = reconciliation_status(staging_conn)
    assert status["available"] and status["run"]["recon_run_id"] == run_id
    by_store = {s["store"]: s for s in status["stores"]}
    assert set(by_store) == {"ST001", "ST002", "ST009", None}
    assert by_store["ST001"]["diff_net"] == 10 and by_store["ST001"]["unexplained"] == 1
    assert by_store["ST001"]["sitoo_receipts"] == 15 and by_store["ST001"]["lines"] == 1
    assert by_store["ST002"]["lines"] == 0 and by_store["ST002"]["diff_net"] == 0
    assert by_store["ST009"]["sitoo_receipts"] is None and by_store["ST009"]["unexplained"] == 1
    assert by_store[None]["lines"] == 1 and by_store[None]["unexplained"] == 0

    # Once the run records its distinct receipts per store (a two-rate receipt is in two cells),
    # the page shows those, so per-store receipts add up to the run's total.
    staging_conn.execute(
        "update sitoo_erp.reconciliation_run set summary = %s where recon_run_id = %s",
        ('{"sitoo": {"receipts": 16, "receipts_by_store": {"ST001": 13, "ST002": 3}}}', run_id),
    )
    by_store = {s["store"]: s for s in reconciliation_status(staging_conn)["stores"]}
    assert by_store["ST001"]["sitoo_receipts"] == 13 and by_store["ST002"]["sitoo_receipts"] == 3
    assert by_store["ST009"]["sitoo_receipts"] is None
