"""A systemic stop says what to fix, and once it is fixed the next run posts: no SQL, no jam."""

from __future__ import annotations

import re

import pendulum

from include.sandbox.generator import is_finalised
from include.sitoo_erp.operations.actions import delete_mapping, upsert_mapping
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, run_hour, task_states
from tests.e2e.helpers import assert_invariants, expected_quarantine, states_by_order


def test_systemic_stop_names_rule_keys_and_owner_and_the_fixed_mapping_posts_next_run(
    stack, sales_dag, dagbag, monkeypatch, tmp_path
):
    # Someone removes the location mapping of one of the two stores: about half of every hour fails.
    with connect_url(stack.database_url) as conn:
        row = conn.execute(
            "select location_id, customer_id, subsidiary_id, timezone from sitoo_erp.map_store_location "
            "where store_externalid = 'ST001'"
        ).fetchone()
        assert row is not None
        delete_mapping(conn, "map_store_location", "ST001", "someone", "ui", note="by mistake")

    run = run_hour(sales_dag, at(9))
    states = task_states(run)
    assert states["quality_gate"] == "failed" and states["post_to_erp"] != "success", states
    assert not stack.netsuite.count_documents_by_external_id()  # nothing posted
    with connect_url(stack.database_url) as conn:
        quarantined = conn.execute(
            "select count(*) from sitoo_erp.order_state where state = 'quarantined'"
        ).fetchone()[0]
    assert quarantined == 0  # a systemic stop quarantines nothing

    mails = stack.smtp.messages
    assert len(mails) == 1 and "SYSTEMIC" in mails[0]["Subject"], [m["Subject"] for m in mails]
    body = mails[0].get_body(("html",)).get_content()
    fix = body[body.index("What to fix") :]
    assert "sku_mismatches.store_mapped" in fix and "store=ST001" in fix and "retail_ops" in fix
    assert "operations page" in fix

    # The same broken mapping an hour later is not news: the run stops again, without a second mail.
    run = run_hour(sales_dag, at(10))
    assert task_states(run)["quality_gate"] == "failed"
    assert len(stack.smtp.messages) == 1

    # Finance reconciles the day while the stop holds: the receipts it blocks are their own class,
    # unexplained until they post (not "held in flight"), and the report's per-store receipt counts
    # add up to its total although many receipts have lines at two VAT rates.
    monkeypatch.setenv("AIRFLOW_VAR_SITOO_ERP_REPORT_DIR", str(tmp_path / "reports"))
    recon = dagbag.get_dag("sitoo_reconciliation_monthly").test(
        logical_date=pendulum.datetime(2026, 11, 17, 6, tz="Europe/London"),
        run_conf={"date_from": "2026-11-16", "date_to": "2026-11-16", "stores": []},
    )
    assert task_states(recon)["reconcile"] == "success", task_states(recon)
    with connect_url(stack.database_url) as conn:
        run_id, report_html, summary = conn.execute(
            "select recon_run_id, report_html, summary from sitoo_erp.reconciliation_run "
            "order by recon_run_id desc limit 1"
        ).fetchone()
        lines = conn.execute(
            "select class, cause, explained, orderid, detail from sitoo_erp.reconciliation_line "
            "where recon_run_id = %s",
            (run_id,),
        ).fetchall()
        ready = {
            r[0]
            for r in conn.execute(
                "select orderid from sitoo_erp.order_state where state = 'held' and reason = 'ready to post'"
            ).fetchall()
        }
        cell_receipts = conn.execute(
            "select sum(sitoo_receipts) from sitoo_erp.reconciliation_cell where recon_run_id = %s", (run_id,)
        ).fetchone()[0]
    blocked = [ln for ln in lines if ln[0] == "blocked_systemic_stop"]
    assert blocked and {ln[3] for ln in blocked} <= ready
    assert all(ln[1] == "systemic stop" and not ln[2] for ln in blocked), blocked[:3]
    assert "sku_mismatches.store_mapped store=ST001" in blocked[0][4], blocked[0][4]
    assert not [ln for ln in lines if ln[0] == "missing_in_erp" and ln[1] == "held" and ln[3] in ready]
    assert task_states(recon)["gate"] == "failed"  # unexplained: the month cannot pass while it holds
    assert "Blocked: systemic stop" in report_html
    per_store = {
        m[0]: int(m[1]) for m in re.findall(r'<tr><td>(ST\d+)</td><td class="n">(\d+)</td>', report_html)
    }
    total = summary["sitoo"]["receipts"]
    assert set(per_store) == {"ST001", "ST002"} and sum(per_store.values()) == total, (per_store, total)
    assert cell_receipts > total  # receipts with two VAT rates: summing cells would count them twice

    # Ops put the mapping back through the mapping edit function (what the operations page calls).
    with connect_url(stack.database_url) as conn:
        upsert_mapping(
            conn,
            "map_store_location",
            "ST001",
            dict(zip(("location_id", "customer_id", "subsidiary_id", "timezone"), row, strict=True)),
            "ops",
            "ui",
        )
    run = run_hour(sales_dag, at(11))
    assert str(run.state) == "success", task_states(run)
    assert_invariants(stack)
    by_order = states_by_order(stack)
    finalised = [
        o["orderid"]
        for o in map(stack.dataset.order, by_order)
        if is_finalised(o) and not expected_quarantine(stack, o)
    ]
    unposted = [o for o in finalised if by_order[o][0] != "posted"]
    assert len(finalised) > 50 and not unposted, [(o, by_order[o]) for o in unposted][:5]
    store_docs = [k for k in stack.netsuite.count_documents_by_external_id() if "ST001" in k]
    assert store_docs, "the fixed store's receipts reached the ERP"
