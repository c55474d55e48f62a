"""Intent before the call: a lost ERP answer is settled from the ERP, even after Sitoo changed.

Through the real DAG, the NetSuite sandbox's *timeout after commit* (the ERP stores the document,
the answer never arrives) and the Sitoo sandbox: three receipts lose their answers; then one is
cancelled in Sitoo, one is edited, one stays as it was. The next hourly run must record all three as
posted from the ERP — never leave the cancelled one *excluded* behind a live ERP sale — raise the
cancelled one for finance by receipt, externalId and ERP id, correct the edited one in place,
and send nothing twice.
"""

from __future__ import annotations

from include.sitoo_erp.reconciliation.compare import reconcile
from include.sitoo_erp.reconciliation.period import Period
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import DAY, at, run_hour, task_states
from tests.e2e.helpers import assert_invariants, clean_sale, states_by_order


def _plant_before_opening(stack, receipt: str, minute: int) -> int:
    payload = clean_sale(stack)
    payload["additionaldata"]["pos-receiptid"] = receipt
    return stack.sitoo.add_order(
        payload=payload, orderdate=at(6, minute).timestamp(), dateadded=at(6, minute + 1).timestamp()
    )


def test_lost_answers_are_settled_from_the_erp_and_changes_meanwhile_go_to_finance(stack, sales_dag):
    sitoo, netsuite = stack.sitoo, stack.netsuite
    # The stores open at 09:00: in the 06:00 hour these three are the only receipts.
    cancelled = _plant_before_opening(stack, "LOST-CANCELLED", 10)
    edited = _plant_before_opening(stack, "LOST-EDITED", 12)
    unchanged = _plant_before_opening(stack, "LOST-UNCHANGED", 14)
    sitoo.set_clock(int(at(7, 5).timestamp()))

    post = sales_dag.get_task("post_to_erp")
    saved = (post.retries, post.retry_attempts, post.retry_max_wait)
    post.retries, post.retry_attempts, post.retry_max_wait = 0, 1, 0.01
    try:
        netsuite.timeout_next_upserts(3)  # the ERP stores all three; no answer reaches us
        run = run_hour(sales_dag, at(6))
    finally:
        post.retries, post.retry_attempts, post.retry_max_wait = saved
    assert task_states(run)["post_to_erp"] == "failed"
    assert netsuite.counters()["timeouts_after_commit"] == 3
    in_erp = {d["externalId"]: str(d["id"]) for d in netsuite.documents()}
    keys = {
        o: next(k for k in in_erp if k.endswith(r))
        for o, r in ((cancelled, "-LOST-CANCELLED"), (edited, "-LOST-EDITED"), (unchanged, "-LOST-UNCHANGED"))
    }
    with connect_url(stack.database_url) as conn:
        intents = dict(conn.execute("select orderid, external_id from sitoo_erp.posting_intent").fetchall())
        assert intents == keys  # written before the call, left behind by the lost answers
        assert conn.execute("select count(*) from sitoo_erp.posting_log").fetchone()[0] == 0
        # The reconciliation names the real remedy, not "the next run re-PUTs the same key".
        result = reconcile(conn, stack_erp(), Period(DAY, DAY))
        details = [
            d
            for (d,) in conn.execute(
                "select detail from sitoo_erp.reconciliation_line where recon_run_id = %s and cause = 'not_logged'",
                (result.recon_run_id,),
            )
        ]
    assert len(details) == 3, details
    assert all("posting intent is open" in d and "re-PUTs" not in d for d in details), details

    # Meanwhile in Sitoo: one receipt is cancelled, one has its tender changed.
    other_tender = next(
        p["name"]
        for oid in range(10_001, stack.dataset.max_orderid + 1)
        for p in stack.dataset.order(oid).get("payments") or []
        if p["name"] in ("Card", "Cash") and p["name"] != stack.dataset.order(edited)["payments"][0]["name"]
    )
    payments = [dict(stack.dataset.order(edited)["payments"][0], name=other_tender)]
    sitoo.update_order(cancelled, orderstateid=20)
    sitoo.update_order(edited, payments=payments)
    sitoo.set_clock(int(at(8, 5).timestamp()))
    before = netsuite.counters()

    run = run_hour(sales_dag, at(7))
    assert str(run.state) == "success", task_states(run)

    states = states_by_order(stack)
    for oid in keys:
        assert states[oid][0] == "posted", states[oid]  # the ERP has it: never "excluded: cancelled"
    counters = netsuite.counters()
    # Settled by reading, not re-sent; only the edited receipt's document is corrected in place
    # (the after-posting policy: period open, same key), never a second document.
    assert counters["created"] == before["created"]
    assert counters["updated"] == before["updated"] + 1
    with connect_url(stack.database_url) as conn:
        logged = dict(conn.execute("select external_id, erp_id from sitoo_erp.posting_log").fetchall())
        assert logged == {keys[o]: in_erp[keys[o]] for o in keys}
        assert conn.execute("select count(*) from sitoo_erp.posting_intent").fetchone()[0] == 0
        raised = {
            orderid: (kind, owner, message)
            for orderid, kind, owner, message in conn.execute(
                "select orderid, kind, owner, message from sitoo_erp.exception where status = 'open' "
                "and kind in ('cancelled_after_posting', 'changed_after_posting')"
            )
        }
        revisions = conn.execute(
            "select orderid, change, status, erp_id from sitoo_erp.posting_revision order by revision_id"
        ).fetchall()
    assert set(raised) == {cancelled}, raised
    got_kind, owner, message = raised[cancelled]
    assert (got_kind, owner) == ("cancelled_after_posting", "finance")
    assert "LOST-CANCELLED" in message and keys[cancelled] in message
    assert f"ERP id {in_erp[keys[cancelled]]}" in message and "cancelled in Sitoo" in message
    # The edited receipt was recorded with what was sent, then corrected in place under its key.
    assert (edited, "content", "corrected", in_erp[keys[edited]]) in revisions, revisions
    assert_invariants(stack)


def stack_erp():
    """The real NetSuite adapter, on this test's connection."""
    from include.sitoo_erp.erp.netsuite import NetSuiteHook

    return NetSuiteHook(netsuite_conn_id="netsuite_default")
