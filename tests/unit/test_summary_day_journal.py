"""The business day's tender journal of summary mode (pure part): many stores' summary documents'
tenders in one journal entry, each store's lines on its own location, under the ERP's line limit."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from include.sitoo_erp.erp.netsuite_documents import render_day_tender_journal
from include.sitoo_erp.posting.documents import DocumentError
from include.sitoo_erp.posting.summary import day_journals, summarise, summary_external_id
from tests.unit.test_documents import MAPPINGS, build, receipt

D = Decimal
DAY = date(2026, 11, 16)


def store_day(store: str, first_orderid: int, card_units: int = 2):
    """A store's day of two receipts paid by card and by cash: a summary that owes a tender journal."""
    a = build(
        receipt(
            [("SKU-A", card_units, "10.00", 20)],
            [("Card", f"{12 * card_units}.00")],
            orderid=first_orderid,
            store_externalid=store,
        )
    )
    b = build(
        receipt(
            [("SKU-A", 1, "10.00", 20)],
            [("Cash", "12.00")],
            orderid=first_orderid + 1,
            receipt_id=f"R-{first_orderid + 1}",
            store_externalid=store,
        )
    )
    key = summary_external_id("sale", store, DAY)
    return summarise([a, b], key, store, DAY, MAPPINGS, "Sitoo daily summary").document


def per_location_account(journal) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for sl in journal.lines:
        k = (sl.location_id, sl.line.account_id)
        out[k] = out.get(k, D(0)) + sl.line.debit - sl.line.credit
    return out


def test_one_journal_for_the_day_moves_each_stores_tenders_on_its_own_location():
    st1, st2 = store_day("ST001", 1), store_day("ST002", 10, card_units=4)
    assert st1.tender_journal is not None and st2.tender_journal is not None
    (journal,) = day_journals([st2, st1], DAY, 1, max_lines=200)
    assert journal.external_id == "SITOO-TJ-D-20261116-J1"
    assert journal.documents == ("SITOO-D-ST001-20261116", "SITOO-D-ST002-20261116")
    # Per store: exactly what that store's own per-document journal would have done, on its location.
    want: dict[tuple[str, str], Decimal] = {}
    for doc in (st1, st2):
        for account, amount in doc.tender_journal.balance_by_account().items():
            want[(doc.location_id, account)] = want.get((doc.location_id, account), D(0)) + amount
    assert per_location_account(journal) == want
    assert want[("1001", "1210")] == D("24.00") and want[("1002", "1210")] == D("48.00")
    # The POS settlement account clears per store location (card + cash in, settlement out).
    assert want[("1001", "1250")] == -D("36.00") and want[("1002", "1250")] == -D("60.00")
    body = render_day_tender_journal(journal)
    assert sum(D(str(x.get("debit", 0))) for x in body["line"]["items"]) == sum(
        D(str(x.get("credit", 0))) for x in body["line"]["items"]
    )
    assert {x["location"]["id"] for x in body["line"]["items"]} == {"1001", "1002"}
    assert {x["entity"]["id"] for x in body["line"]["items"]} == {"5001", "5002"}


def test_over_the_line_limit_the_day_takes_more_journals_each_document_whole_and_balanced():
    docs = [store_day("ST001", 1), store_day("ST002", 10)]
    per_doc = len(docs[0].tender_journal.lines)  # card, cash, settlement
    journals = day_journals(docs, DAY, 4, max_lines=per_doc + 1)
    assert [j.external_id for j in journals] == ["SITOO-TJ-D-20261116-J4", "SITOO-TJ-D-20261116-J5"]
    for j in journals:
        assert len(j.lines) <= per_doc + 1
        assert sum(sl.line.debit for sl in j.lines) == sum(sl.line.credit for sl in j.lines)
    with pytest.raises(DocumentError, match="more than the ERP takes"):
        day_journals(docs, DAY, 1, max_lines=per_doc - 1)


def test_documents_paid_by_one_bank_method_owe_no_journal():
    card_only = build(receipt([("SKU-A", 1, "10.00", 20)], [("Card", "12.00")], orderid=5))
    doc = summarise([card_only], "SITOO-D-ST001-20261116", "ST001", DAY, MAPPINGS, "m").document
    assert doc.tender_journal is None
    assert day_journals([doc], DAY, 1, max_lines=200) == []
