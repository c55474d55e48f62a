"""Ops clear exceptions without a deployment: the replay DAG applies the fix and re-posts at once."""

from __future__ import annotations

from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, run_hour, task_states
from tests.e2e.helpers import (
    assert_invariants,
    open_exceptions,
    plant_orphaned_return,
    plant_unknown_sku,
    states_by_order,
)


def _unknown_sku(stack, orderid: int) -> str:
    products = stack.dataset.catalogue.product_by_sku()
    return next(r["sku"] for r in stack.dataset.order(orderid)["orderitems"] if not products[r["sku"]].in_erp)


def test_unknown_sku_is_one_exception_across_three_runs_and_the_replay_dag_posts_it(stack, sales_dag, dagbag):
    orderid = plant_unknown_sku(stack)
    sku = _unknown_sku(stack, orderid)
    for hour in (9, 10, 11):
        run = run_hour(sales_dag, at(hour))
        assert str(run.state) == "success", task_states(run)
    rows = [e for e in open_exceptions(stack) if e[0] == "unknown_sku" and e[1] == orderid]
    assert len(rows) == 1 and rows[0][4] == 3  # one exception, seen three times

    stand_in = next(
        p
        for p in stack.dataset.catalogue.products
        if p.in_erp
        and not p.erp_inactive
        and p.vat_rate == stack.dataset.catalogue.product_by_sku()[sku].vat_rate
    )
    replay = dagbag.get_dag("sitoo_exceptions_replay")
    run = replay.test(
        run_conf={
            "action": "map_sku_item",
            "key": sku,
            "values": {"item_id": stand_in.erp_item_id},
            "reason": "new season SKU, created in NetSuite as " + stand_in.sku,
            "changed_by": "ops.lead@sandbox.test",
        }
    )
    assert str(run.state) == "success", task_states(run)
    assert states_by_order(stack)[orderid][0] == "posted"
    assert_invariants(stack)
    with connect_url(stack.database_url) as conn:
        audit = conn.execute(
            "select entity, entity_key, action, after->>'item_id', actor, source from sitoo_erp.audit_log"
        ).fetchall()
        status = conn.execute(
            "select status from sitoo_erp.exception where orderid = %s and kind = 'unknown_sku'", (orderid,)
        ).fetchall()
    assert [a[:4] + a[5:] for a in audit] == [
        ("map_sku_item", sku, "insert", stand_in.erp_item_id, "replay_dag")
    ]
    assert audit[0][4] == "dag_test for ops.lead@sandbox.test"  # who triggered it, for whom
    assert status == [("resolved",)]
    doc = next(d for d in stack.netsuite.documents() if d["externalId"].endswith("-UNKNOWN-SKU-1"))
    assert stand_in.erp_item_id in {line["item"]["id"] for line in doc["item"]["items"]}


def test_an_exception_ignored_through_the_replay_dag_leaves_the_queue_for_good(stack, sales_dag, dagbag):
    orderid = plant_orphaned_return(stack)
    run_hour(sales_dag, at(9))
    exception_id = next(e for e in open_exceptions_with_ids(stack) if e[1] == orderid)[0]
    replay = dagbag.get_dag("sitoo_exceptions_replay")
    run = replay.test(
        run_conf={
            "action": "ignore_exception",
            "exception_id": exception_id,
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


def test_a_bad_form_fails_clearly_and_changes_nothing(stack, dagbag):
    replay = dagbag.get_dag("sitoo_exceptions_replay")
    run = replay.test(run_conf={"action": "map_sku_item", "key": "SKU-X", "values": {}})
    assert task_states(run)["apply_fix"] == "failed"
    with connect_url(stack.database_url) as conn:
        assert conn.execute("select count(*) from sitoo_erp.audit_log").fetchone() == (0,)
        assert conn.execute("select count(*) from sitoo_erp.map_sku_item").fetchone() == (0,)


def open_exceptions_with_ids(stack) -> list[tuple]:
    with connect_url(stack.database_url) as conn:
        return conn.execute(
            "select exception_id, orderid, kind from sitoo_erp.exception where status = 'open' order by 1"
        ).fetchall()
