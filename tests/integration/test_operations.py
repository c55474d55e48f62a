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
from include.sitoo_erp.staging.exceptions import ExceptionKind, raise_exception
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
        "update sitoo_erp.order_state set state = 'quarantined', reason = 'test' where orderid = %s",
        (orderid,),
    )
    return raise_exception(
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
    again = raise_exception(
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
    fresh = raise_exception(
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
