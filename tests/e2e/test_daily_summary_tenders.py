"""Tenders of a summary-mode day (invariant 11) with one tender journal for the whole business day.

Three stores in ``daily_summary`` mode through `sitoo_sales_hourly`. Their summary documents take
the POS settlement method when the day had more than one tender, and ONE journal entry for the
business day (``SITOO-TJ-D-{yyyymmdd}-J1``) moves every store's tenders from the settlement
account to each tender's own account, on that store's location. Proved against the NetSuite
sandbox's documents and Sitoo's own payments: per store and tender account the ERP holds the day's
Sitoo tender total, the settlement account clears per store, and a re-run posts nothing more.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest

from include.sandbox.catalogue import SETTLEMENT_ACCOUNT_ID, SETTLEMENT_METHOD_ID, TENDER_ACCOUNTS
from include.sitoo_erp.posting.summary import set_posting_mode
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import DAY, at, make_stack, run_hour, task_states
from tests.e2e.helpers import money, open_exceptions

JOURNAL = f"SITOO-TJ-D-{DAY:%Y%m%d}-J1"


@contextmanager
def summary_day(postgres, dagbag, workdir, stores: int):
    """A summary-mode stack whose day is staged (09:00, not closed yet) under its environment."""
    stack = make_stack(postgres, workdir, seed=7, stores=stores, days=1, receipts_per_store_day=60)
    with connect_url(stack.database_url) as conn:
        set_posting_mode(conn, "daily_summary", date(2026, 1, 1))
    dag = dagbag.get_dag("sitoo_sales_hourly")
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in stack.env.items():
                mp.setenv(key, value)
            mp.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", "")
            run_hour(dag, at(9))
            yield stack, dag
    finally:
        stack.stop()
        postgres.drop_database(stack.config.database)


@pytest.fixture(scope="module")
def tenders(postgres, dagbag, tmp_path_factory):
    with summary_day(postgres, dagbag, tmp_path_factory.mktemp("tenders"), stores=3) as (stack, dag):
        out: dict = {"stack": stack}
        out["posting"] = run_hour(dag, at(7, day=DAY + timedelta(days=1)))
        out["after_posting"] = stack.netsuite.count_documents_by_external_id()
        out["rerun"] = run_hour(dag, at(8, day=DAY + timedelta(days=1)))
        out["after_rerun"] = stack.netsuite.count_documents_by_external_id()
        with connect_url(stack.database_url) as conn:
            out["members"] = conn.execute(
                "select d.external_id, r.orderid from sitoo_erp.summary_receipt r "
                "join sitoo_erp.summary_document d using (external_id) where d.status = 'posted'"
            ).fetchall()
        yield out


def test_the_day_posts_and_a_rerun_posts_nothing_more(tenders):
    assert task_states(tenders["posting"])["post_daily_summaries"] == "success"
    assert task_states(tenders["rerun"])["post_daily_summaries"] == "success"
    assert tenders["after_rerun"] == tenders["after_posting"]
    assert all(n == 1 for n in tenders["after_rerun"].values())


def test_one_tender_journal_for_the_whole_business_day(tenders):
    stack = tenders["stack"]
    journals = [d["externalId"] for d in stack.netsuite.documents("journalEntry")]
    summary_docs = [
        d for d in stack.netsuite.documents() if d["externalId"].startswith(("SITOO-D-", "SITOO-DR-"))
    ]
    assert len({d["location"]["id"] for d in summary_docs}) == 3
    assert any(d["paymentMethod"]["id"] == SETTLEMENT_METHOD_ID for d in summary_docs)
    # Not one journal per summary document (SITOO-TJ-D-{store}-{day}): one for the day.
    assert journals == [JOURNAL]


def test_each_stores_tenders_reach_their_own_accounts_on_its_location(tenders):
    stack = tenders["stack"]
    ds = stack.dataset
    erp_docs = {d["externalId"]: d for d in stack.netsuite.documents()}
    journal = next(d for d in stack.netsuite.documents("journalEntry") if d["externalId"] == JOURNAL)
    got: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in journal["line"]["items"]:
        key = (line["location"]["id"], line["account"]["id"])
        got[key] += money(line.get("debit", 0)) - money(line.get("credit", 0))

    # Sitoo's side: the payments of every receipt in a summary document that took the settlement method.
    want: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for external_id, orderid in tenders["members"]:
        doc = erp_docs[external_id]
        if doc["paymentMethod"]["id"] != SETTLEMENT_METHOD_ID:
            continue
        location = doc["location"]["id"]
        order = ds.order(orderid)
        for p in order["payments"]:
            want[(location, TENDER_ACCOUNTS[p["name"]])] += money(p["moneyamount"])
        want[(location, SETTLEMENT_ACCOUNT_ID)] -= money(order["moneytotal_gross_all"])
    assert want
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}


@pytest.fixture(scope="module")
def refused(postgres, dagbag, tmp_path_factory):
    """The same day while finance has made the gift card liability account inactive, then reactivated."""
    with summary_day(postgres, dagbag, tmp_path_factory.mktemp("refused"), stores=2) as (stack, dag):
        out: dict = {"stack": stack}
        stack.netsuite.set_account_active(TENDER_ACCOUNTS["Gift Card"], active=False)
        out["refused_run"] = run_hour(dag, at(7, day=DAY + timedelta(days=1)))
        out["refused_docs"] = stack.netsuite.count_documents_by_external_id()
        out["refused_exceptions"] = open_exceptions(stack)
        stack.netsuite.set_account_active(TENDER_ACCOUNTS["Gift Card"], active=True)
        out["next_run"] = run_hour(dag, at(8, day=DAY + timedelta(days=1)))
        out["next_docs"] = stack.netsuite.count_documents_by_external_id()
        with connect_url(stack.database_url) as conn:
            out["resolved"] = conn.execute(
                "select status, resolution_note from sitoo_erp.exception where subject_key = %s",
                (f"tender_journal:{JOURNAL}",),
            ).fetchall()
        yield out


def test_a_refused_day_journal_is_named_for_finance_and_posts_once_the_cause_is_fixed(refused):
    # The documents post; the refused journal does not fail the run (bad input is an exception row).
    assert task_states(refused["refused_run"])["post_daily_summaries"] == "success"
    posted = {e for e in refused["refused_docs"] if e.startswith(("SITOO-D-", "SITOO-DR-"))}
    assert posted and JOURNAL not in refused["refused_docs"]
    named = [m for kind, _, _, m, _ in refused["refused_exceptions"] if kind == "erp_rejected"]
    assert len(named) == 1, refused["refused_exceptions"]
    assert JOURNAL in named[0] and "inactive" in named[0]
    assert any(doc in named[0] for doc in posted)  # the documents whose tenders it moves

    # Reactivated: the next hourly run sends the same journal once, with the gift card line, and
    # the exception closes by itself.
    assert task_states(refused["next_run"])["post_daily_summaries"] == "success"
    assert refused["next_docs"][JOURNAL] == 1
    assert all(n == 1 for n in refused["next_docs"].values())
    journal = next(
        d for d in refused["stack"].netsuite.documents("journalEntry") if d["externalId"] == JOURNAL
    )
    assert TENDER_ACCOUNTS["Gift Card"] in {ln["account"]["id"] for ln in journal["line"]["items"]}
    [(status, note)] = refused["resolved"]
    assert status == "resolved" and "posted as ERP id" in note
