"""A daily summary whose ERP answer was lost is re-sent exactly as it was first sent.

The NetSuite sandbox stores the day's documents and drops the answers (a timeout after commit), so
the documents stay ``pending``. Before the next run a till operator edits one of the day's receipts
in Sitoo. The re-send must carry the document as it was committed with its receipts — what the ERP
may already hold and what the ledger recorded — not a rebuild from the edited receipt: a rebuild
overwrites the ERP's document with content the ledger never recorded, and the after-posting review
then asks finance to book the same change a second time. The edit itself is raised by name.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from include.sandbox.generator import is_finalised
from include.sitoo_erp.posting.summary import set_posting_mode
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import DAY, at, make_stack, run_hour, run_hour_answers_lost, task_states
from tests.e2e.helpers import expected_quarantine, open_exceptions
from tests.e2e.test_after_posting import _basket

KEY = f"SITOO-D-ST001-{DAY:%Y%m%d}"
EDITED = ("orderitems", "payments", "moneyfinal_net", "moneyfinal_vat", "moneytotal_gross_roundoff",
          "moneytotal_gross_all")  # fmt: skip


def _erp_document(stack, external_id: str) -> dict:
    return next(d for d in stack.netsuite.documents() if d["externalId"] == external_id)


def _tax(doc: dict) -> Decimal:
    """The ERP document's tax (its tax details), as NetSuite holds it."""
    return sum((Decimal(str(t["taxAmount"])) for t in doc["taxDetails"]["items"]), Decimal(0))


@pytest.fixture(scope="module")
def resent(postgres, dagbag, tmp_path_factory):
    stack = make_stack(
        postgres, tmp_path_factory.mktemp("resend"), seed=23, stores=1, days=1, receipts_per_store_day=40
    )
    with connect_url(stack.database_url) as conn:
        set_posting_mode(conn, "daily_summary", date(2026, 1, 1))
    dag = dagbag.get_dag("sitoo_sales_hourly")
    out: dict = {"stack": stack}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", "")
        run_hour(dag, at(9))  # stages the day
        # The ERP stores every document; no answer comes back.
        out["lost"] = run_hour_answers_lost(dag, at(6, day=DAY + timedelta(days=1)), stack.netsuite)
        out["erp_after_lost"] = _erp_document(stack, KEY)
        with connect_url(stack.database_url) as conn:
            out["status_after_lost"] = conn.execute(
                "select status from sitoo_erp.summary_document where external_id = %s", (KEY,)
            ).fetchone()[0]
            members = [
                r[0]
                for r in conn.execute(
                    "select orderid from sitoo_erp.summary_receipt where external_id = %s order by orderid",
                    (KEY,),
                )
            ]
        # A clean one-tender sale of the pending document with two rows or more: the till drops a row.
        ds = stack.dataset
        oid = next(
            o["orderid"]
            for o in (ds.order(m) for m in members)
            if is_finalised(o)
            and not expected_quarantine(stack, o)
            and len(o["payments"]) == 1
            and len(o["orderitems"]) >= 2
            and not any(k.startswith(("loyalty-", "crm-")) for k in o["additionaldata"])
        )
        order = _basket(ds.order(oid), ds.order(oid)["orderitems"])
        edited = _basket(order, order["orderitems"][:1])
        stack.sitoo.update_order(oid, **{k: edited[k] for k in EDITED})
        out.update(oid=oid, gross_before=Decimal(order["moneytotal_gross_all"]))
        out["gross_after"] = Decimal(edited["moneytotal_gross_all"])
        # The receipt's own hour again (a clear of it): the edit is staged, then the pending document
        # is re-sent; one more hour for the after-posting review of what is now posted.
        hour = datetime.fromtimestamp(int(ds.idx["dateadded"][ds.pos(oid)]), UTC).replace(minute=0, second=0)
        out["resend"] = run_hour(dag, hour)
        out["review"] = run_hour(dag, at(8, day=DAY + timedelta(days=1)))
        yield out
    stack.stop()
    postgres.drop_database(stack.config.database)


def test_the_answer_was_lost_after_the_erp_stored_the_document(resent):
    assert str(resent["lost"].state) == "failed"
    assert resent["status_after_lost"] == "pending"


def test_the_resend_carries_the_document_as_committed_not_the_edited_receipt(resent):
    stack, oid = resent["stack"], resent["oid"]
    assert str(resent["resend"].state) == "success", task_states(resent["resend"])
    assert resent["gross_after"] < resent["gross_before"]  # the scenario: the receipt lost a row
    with connect_url(stack.database_url) as conn:
        staged = conn.execute(
            "select money_gross from sitoo_erp.sitoo_order where orderid = %s", (oid,)
        ).fetchone()
        status, tax = conn.execute(
            "select status, tax_amount from sitoo_erp.summary_document where external_id = %s",
            (KEY,),
        ).fetchone()
        recorded = conn.execute(
            "select gross_amount from sitoo_erp.summary_receipt where orderid = %s", (oid,)
        ).fetchone()[0]
    assert Decimal(staged[0]) == resent["gross_after"]  # the edit was staged before the re-send
    assert status == "posted"
    assert stack.netsuite.count_documents_by_external_id()[KEY] == 1
    # The ERP's document is unchanged by the re-send (every line and tax detail as first stored) and
    # holds the tax the ledger recorded for it.
    now, before = _erp_document(stack, KEY), resent["erp_after_lost"]
    assert (now["item"], now["taxDetails"]) == (before["item"], before["taxDetails"])
    assert _tax(now) == tax
    assert recorded == resent["gross_before"]


def test_the_edit_is_raised_once_for_finance_naming_the_receipt(resent):
    stack, oid = resent["stack"], resent["oid"]
    assert str(resent["review"].state) == "success", task_states(resent["review"])
    mine = [e for e in open_exceptions(stack) if str(oid) in " ".join(str(v) for v in e)]
    assert len(mine) == 1, mine
    text = " ".join(str(v) for v in mine[0])
    assert "changed in Sitoo after it was posted" in text and KEY in text
    assert f"{resent['gross_before']} -> {resent['gross_after']}" in text
