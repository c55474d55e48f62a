"""Ops clear exceptions without a deployment: the replay DAG applies the fix and re-posts at once."""

from __future__ import annotations

from include.sitoo_erp.operations.actions import upsert_mapping
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, run_hour, task_states
from tests.e2e.helpers import (
    assert_invariants,
    open_exceptions,
    plant_orphaned_return,
    plant_tender_mismatch,
    plant_unknown_sku,
    states_by_order,
)


def _unknown_sku(stack, orderid: int) -> str:
    products = stack.dataset.catalogue.product_by_sku()
    return next(r["sku"] for r in stack.dataset.order(orderid)["orderitems"] if not products[r["sku"]].in_erp)


def _stand_in(stack, sku: str):
    """A real, active ERP item with the same VAT rate (what ops would look up in NetSuite)."""
    return next(
        p
        for p in stack.dataset.catalogue.products
        if p.in_erp
        and not p.erp_inactive
        and p.vat_rate == stack.dataset.catalogue.product_by_sku()[sku].vat_rate
    )


def test_unknown_sku_is_one_exception_across_three_runs_and_one_form_fixes_two_causes(
    stack, sales_dag, dagbag
):
    orderid = plant_unknown_sku(stack)
    tender_order = plant_tender_mismatch(stack)
    sku = _unknown_sku(stack, orderid)
    for hour in (9, 10, 11):
        run = run_hour(sales_dag, at(hour))
        assert str(run.state) == "success", task_states(run)
    rows = [e for e in open_exceptions(stack) if e[0] == "unknown_sku" and e[1] == orderid]
    assert len(rows) == 1 and rows[0][4] == 3  # one exception, seen three times
    assert any(e[0] == "tender_mismatch" and e[1] == tender_order for e in open_exceptions(stack))

    stand_in = _stand_in(stack, sku)
    cash = stack.dataset.catalogue.tenders["Cash"]
    fix = dagbag.get_dag("sitoo_exceptions_fix_mappings")
    run = fix.test(
        run_conf={
            "sku_items": [{"sku": sku, "item_id": stand_in.erp_item_id}],
            "tender_payments": [{"tender": "Foreign Currency", "payment_method_id": cash}],
            "reason": "new season SKU, created in NetSuite as " + stand_in.sku,
            "changed_by": "ops.lead@sandbox.test",
        }
    )
    assert str(run.state) == "success", task_states(run)
    states = states_by_order(stack)
    assert states[orderid][0] == "posted" and states[tender_order][0] == "posted"
    assert_invariants(stack)
    with connect_url(stack.database_url) as conn:
        audit = conn.execute(
            "select entity, entity_key, action, actor, source from sitoo_erp.audit_log order by audit_id"
        ).fetchall()
        status = conn.execute(
            "select status, resolution_note from sitoo_erp.exception where orderid = any(%s)",
            ([orderid, tender_order],),
        ).fetchall()
    assert [a[:3] + a[4:] for a in audit] == [
        ("map_sku_item", sku, "insert", "replay_dag"),
        ("map_tender_payment", "Foreign Currency", "insert", "replay_dag"),
    ]
    assert {a[3] for a in audit} == {"dag_test for ops.lead@sandbox.test"}  # who triggered it, for whom
    # Closed by the fix itself (same run), not left for a later gate run.
    assert len(status) == 2 and all(s == "resolved" and "saved by" in note for s, note in status)
    doc = next(d for d in stack.netsuite.documents() if d["externalId"].endswith("-UNKNOWN-SKU-1"))
    assert stand_in.erp_item_id in {line["item"]["id"] for line in doc["item"]["items"]}


def test_a_mapping_to_an_item_the_erp_lacks_is_refused_and_nothing_changes(stack, sales_dag, dagbag):
    """The doc's example: SKU-000164 -> item 100164, where NetSuite has no item 100164."""
    orderid = plant_unknown_sku(stack)
    sku = _unknown_sku(stack, orderid)
    missing_item = stack.dataset.catalogue.product_by_sku()[sku].erp_item_id  # "100" + productid
    run_hour(sales_dag, at(9))
    before = open_exceptions(stack)
    run = dagbag.get_dag("sitoo_exceptions_fix_mappings").test(
        run_conf={"sku_items": [{"sku": sku, "item_id": missing_item}]}
    )
    states = task_states(run)
    assert states["save_mappings"] == "failed" and states["post_to_erp"] == "upstream_failed"
    with connect_url(stack.database_url) as conn:
        assert conn.execute("select count(*) from sitoo_erp.audit_log").fetchone() == (0,)
        assert conn.execute("select count(*) from sitoo_erp.map_sku_item").fetchone() == (0,)
    assert open_exceptions(stack) == before and states_by_order(stack)[orderid][0] == "quarantined"


def test_a_stale_bad_mapping_fixed_closes_its_erp_rejections_in_the_same_run(stack, sales_dag, dagbag):
    """Before the check existed a wrong item was saved: receipts were rejected by the ERP. The
    corrected mapping closes those rejections at once and the same run posts the receipts."""
    orderid = plant_unknown_sku(stack)
    sku = _unknown_sku(stack, orderid)
    bad = stack.dataset.catalogue.product_by_sku()[sku].erp_item_id
    with connect_url(stack.database_url) as conn:
        upsert_mapping(conn, "map_sku_item", sku, {"item_id": bad}, "before-the-check", "ui")
    run_hour(sales_dag, at(9))
    kinds = {e[0] for e in open_exceptions(stack) if e[1] == orderid}
    assert kinds == {"erp_rejected"}
    run = dagbag.get_dag("sitoo_exceptions_fix_mappings").test(
        run_conf={"sku_items": [{"sku": sku, "item_id": _stand_in(stack, sku).erp_item_id}]}
    )
    assert str(run.state) == "success", task_states(run)
    assert orderid not in {e[1] for e in open_exceptions(stack)}
    assert states_by_order(stack)[orderid][0] == "posted"
    with connect_url(stack.database_url) as conn:
        note = conn.execute(
            "select resolution_note from sitoo_erp.exception where orderid = %s and kind = 'erp_rejected'",
            (orderid,),
        ).fetchone()[0]
    assert f"map_sku_item {sku} saved by" in note
    assert_invariants(stack)


def test_replay_only_needs_no_form(stack, sales_dag, dagbag):
    replay = dagbag.get_dag("sitoo_exceptions_replay")
    assert dict(replay.params) == {}  # nothing to fill: the Trigger button is enabled as is
    run_hour(sales_dag, at(9))
    run = replay.test()
    assert str(run.state) == "success", task_states(run)
    assert_invariants(stack)


def test_exceptions_ignored_through_the_decide_dag_leave_the_queue_for_good(stack, sales_dag, dagbag):
    orderid = plant_orphaned_return(stack)
    run_hour(sales_dag, at(9))
    exception_id = next(e for e in open_exceptions_with_ids(stack) if e[1] == orderid)[0]
    decide = dagbag.get_dag("sitoo_exceptions_decide")
    run = decide.test(
        run_conf={
            "decision": "ignore",
            "exception_ids": [exception_id],
            "reason": "refund of a pre-go-live sale, booked by hand",
            "changed_by": "fin",
        }
    )
    assert str(run.state) == "success", task_states(run)
    assert orderid not in {e[1] for e in open_exceptions(stack)}
    run_hour(sales_dag, at(10))  # the cause is seen again: it stays ignored, the receipt stays excluded
    assert orderid not in {e[1] for e in open_exceptions(stack)}
    state, reason = states_by_order(stack)[orderid]
    assert state == "excluded" and "pre-go-live" in reason
    assert_invariants(stack)


def test_a_decision_on_a_closed_exception_fails_clearly_and_changes_nothing(stack, dagbag):
    run = dagbag.get_dag("sitoo_exceptions_decide").test(
        run_conf={"decision": "resolve", "exception_ids": [999999], "reason": "fixed by hand"}
    )
    assert task_states(run)["decide"] == "failed"
    with connect_url(stack.database_url) as conn:
        assert conn.execute("select count(*) from sitoo_erp.audit_log").fetchone() == (0,)


def open_exceptions_with_ids(stack) -> list[tuple]:
    with connect_url(stack.database_url) as conn:
        return conn.execute(
            "select exception_id, orderid, kind from sitoo_erp.exception where status = 'open' order by 1"
        ).fetchall()
