"""Receipts that change in Sitoo after they were posted (invariant 10), through the real hourly DAG.

Sitoo has no modified-date filter for orders: a change reaches us when the order's window is staged
again (here: the same hour re-run, as a backfill or clear does). Before this work an edited receipt
was re-staged but stayed ``posted`` with the ERP keeping the old amount, and a cancelled one kept
its ERP sale, silently.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from include.sandbox.generator import is_finalised
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, run_hour, task_states
from tests.e2e.helpers import assert_invariants, expected_quarantine, open_exceptions, plant, states_by_order


def _basket(payload: dict, rows: list[dict]) -> dict:
    """The payload with another basket: header totals and the single payment follow the rows."""
    out = copy.deepcopy(payload)
    out["orderitems"] = copy.deepcopy(rows)
    net = sum(Decimal(r["moneyitemtotal_net"]) for r in rows)
    vat = sum(Decimal(r["moneyitemtotal_vat"]) for r in rows)
    out.update(
        moneyfinal_net=f"{net:.2f}",
        moneyfinal_vat=f"{vat:.2f}",
        moneytotal_gross_roundoff="0.00",
        moneytotal_gross_all=f"{net + vat:.2f}",
    )
    out["payments"] = [{**out["payments"][0], "moneyamount": f"{net + vat:.2f}"}]
    return out


def _two_row_sales(stack) -> list[dict]:
    """Clean one-tender sales with at least two rows and no loyalty discount (totals = rows)."""
    ds = stack.dataset
    out = []
    for oid in range(10_001, ds.max_orderid + 1):
        o = ds.order(oid)
        if (
            is_finalised(o)
            and not expected_quarantine(stack, o)
            and not o.get("creditorderid")
            and len(o["payments"]) == 1
            and len(o["orderitems"]) >= 2
            and not any(k.startswith(("loyalty-", "crm-")) for k in o["additionaldata"])
        ):
            out.append(_basket(o, o["orderitems"]))
    assert len(out) >= 2, "the seeded day has too few two-row sales"
    return out


def _two_row_sale(stack, n: int = 0) -> dict:
    return _two_row_sales(stack)[n]


def _erp(stack, external_id: str) -> dict:
    return next(d for d in stack.netsuite.documents() if d["externalId"] == external_id)


def _log(stack, orderid: int) -> tuple:
    with connect_url(stack.database_url) as conn:
        return conn.execute(
            "select external_id, erp_id, gross_amount from sitoo_erp.posting_log where orderid = %s",
            (orderid,),
        ).fetchone()


def _revisions(stack, orderid: int) -> list[tuple]:
    with connect_url(stack.database_url) as conn:
        return conn.execute(
            "select change, action, status, old_gross, new_gross, detected_run, corrected_erp_id "
            "from sitoo_erp.posting_revision where orderid = %s order by revision_id",
            (orderid,),
        ).fetchall()


def test_receipt_edited_after_posting_is_corrected_in_place(stack, sales_dag):
    payload = _two_row_sale(stack)
    edit = plant(stack, payload, "EDIT-1", 30)
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    eid, erp_id, gross = _log(stack, edit)
    assert gross == Decimal(payload["moneytotal_gross_all"])

    # The till operator edits the receipt in Sitoo: one row less.
    edited = _basket(payload, payload["orderitems"][:1])
    stack.sitoo.update_order(
        edit, **{k: edited[k] for k in ("orderitems", "payments", "moneyfinal_net", "moneyfinal_vat",
                                        "moneytotal_gross_roundoff", "moneytotal_gross_all")}
    )  # fmt: skip
    run = run_hour(sales_dag, at(9))  # the window again (a backfill / clear): the change is seen
    assert str(run.state) == "success", task_states(run)

    assert states_by_order(stack)[edit][0] == "posted"
    new_eid, new_erp_id, new_gross = _log(stack, edit)
    assert (new_eid, new_erp_id) == (eid, erp_id)  # the same document, corrected in place
    assert new_gross == Decimal(edited["moneytotal_gross_all"]) != gross
    doc = _erp(stack, eid)
    assert Decimal(str(doc["total"])).quantize(Decimal("0.01")) == Decimal(edited["moneytotal_gross_all"])
    assert len(doc["item"]["items"]) == 1
    assert stack.netsuite.count_documents_by_external_id()[eid] == 1
    [rev] = _revisions(stack, edit)
    assert rev[:5] == ("content", "correct", "corrected", gross, Decimal(edited["moneytotal_gross_all"]))
    assert rev[5] == run.run_id and rev[6] == erp_id
    assert not [e for e in open_exceptions(stack) if e[1] == edit]
    with connect_url(stack.database_url) as conn:
        audit = conn.execute(
            "select action, before ->> 'gross', after ->> 'gross' from sitoo_erp.audit_log "
            "where entity = 'posting_log' and entity_key = %s",
            (eid,),
        ).fetchall()
    assert audit == [("correct", str(gross), edited["moneytotal_gross_all"])]

    run = run_hour(sales_dag, at(9))  # once more: nothing left to correct, nothing new
    assert len(_revisions(stack, edit)) == 1
    assert_invariants(stack)


def test_edit_in_a_closed_period_and_cancel_after_posting_are_raised_for_finance(
    stack, sales_dag, monkeypatch
):
    payload = _two_row_sale(stack)
    edit = plant(stack, payload, "EDIT-CLOSED-1", 30)
    cancel = plant(stack, _two_row_sale(stack, 1), "CANCEL-1", 35)
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    edit_eid, edit_erp, gross = _log(stack, edit)
    cancel_eid, _, _ = _log(stack, cancel)

    edited = _basket(payload, payload["orderitems"][:1])
    stack.sitoo.update_order(
        edit, **{k: edited[k] for k in ("orderitems", "payments", "moneyfinal_net", "moneyfinal_vat",
                                        "moneytotal_gross_roundoff", "moneytotal_gross_all")}
    )  # fmt: skip
    stack.sitoo.update_order(cancel, orderstateid=20)
    # Finance closed the period that holds the receipts' day.
    monkeypatch.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", at(9).date().isoformat())
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)

    states = states_by_order(stack)
    assert states[edit][0] == "posted" and states[cancel][0] == "posted"  # the ERP still holds both
    assert Decimal(str(_erp(stack, edit_eid)["total"])).quantize(Decimal("0.01")) == gross  # untouched
    exceptions = {(kind, orderid): message for kind, orderid, _sku, message, _n in open_exceptions(stack)}
    changed = exceptions[("changed_after_posting", edit)]
    assert (
        "EDIT-CLOSED-1" in changed
        and edit_eid in changed
        and f"gross {gross} -> {edited['moneytotal_gross_all']}" in changed
    )
    assert "closed" in changed and "Remedy" in changed
    cancelled = exceptions[("cancelled_after_posting", cancel)]
    assert (
        "CANCEL-1" in cancelled
        and cancel_eid in cancelled
        and "cancelled" in cancelled
        and "Remedy" in cancelled
    )
    with connect_url(stack.database_url) as conn:
        owners = dict(
            conn.execute(
                "select kind, owner from sitoo_erp.exception where orderid = any(%s) and status = 'open'",
                ([edit, cancel],),
            ).fetchall()
        )
    assert owners == {"changed_after_posting": "finance", "cancelled_after_posting": "finance"}
    assert [r[:3] for r in _revisions(stack, edit)] == [("content", "exception", "raised")]
    assert [r[:3] for r in _revisions(stack, cancel)] == [("cancelled", "exception", "raised")]

    # Seen again next run: the same exception (one per cause), not a second one.
    run = run_hour(sales_dag, at(9))
    again = [(k, o, n) for k, o, _s, _m, n in open_exceptions(stack) if o in (edit, cancel)]
    assert sorted(again) == sorted(
        [("changed_after_posting", edit, 2), ("cancelled_after_posting", cancel, 2)]
    )

    # Finance reopens the period: the edit is corrected in place and its exception closes by itself.
    monkeypatch.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", "")
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    assert _log(stack, edit) == (edit_eid, edit_erp, Decimal(edited["moneytotal_gross_all"]))
    assert not [e for e in open_exceptions(stack) if e[1] == edit]
    assert [e[0] for e in open_exceptions(stack) if e[1] == cancel] == ["cancelled_after_posting"]
    assert_invariants(stack)


def test_swapped_contents_of_two_posted_receipts_are_both_corrected(stack, sales_dag):
    first_payload = _two_row_sale(stack)
    second_payload = _basket(first_payload, first_payload["orderitems"][:1])
    first = plant(stack, first_payload, "SWAP-A", 30)
    second = plant(stack, second_payload, "SWAP-B", 35)
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    a_eid, a_erp, a_gross = _log(stack, first)
    b_eid, b_erp, b_gross = _log(stack, second)
    assert a_gross != b_gross

    fields = ("orderitems", "payments", "moneyfinal_net", "moneyfinal_vat", "moneytotal_gross_roundoff",
              "moneytotal_gross_all")  # fmt: skip
    stack.sitoo.update_order(first, **{k: second_payload[k] for k in fields})
    stack.sitoo.update_order(second, **{k: first_payload[k] for k in fields})
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)

    assert _log(stack, first) == (a_eid, a_erp, b_gross)
    assert _log(stack, second) == (b_eid, b_erp, a_gross)
    assert Decimal(str(_erp(stack, a_eid)["total"])).quantize(Decimal("0.01")) == b_gross
    assert Decimal(str(_erp(stack, b_eid)["total"])).quantize(Decimal("0.01")) == a_gross
    assert [r[2] for r in _revisions(stack, first)] == ["corrected"]
    assert [r[2] for r in _revisions(stack, second)] == ["corrected"]
    assert_invariants(stack)
