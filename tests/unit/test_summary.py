"""Daily summaries (pure part): receipts' documents added up per ERP item and tax code, to the penny."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from include.sitoo_erp.erp.adapter import DocumentKind
from include.sitoo_erp.erp.netsuite_documents import render_netsuite
from include.sitoo_erp.posting.documents import DocumentError
from include.sitoo_erp.posting.summary import pack, summarise, summary_external_id
from tests.unit.test_documents import MAPPINGS, build, receipt

D = Decimal
DAY = date(2026, 11, 16)


def day_of_receipts():
    a = build(receipt([("SKU-A", 2, "10.00", 20), ("SKU-C", 1, "3.33", 5)], [("Card", "27.50")], orderid=1))
    b = build(receipt([("SKU-A", 1, "10.00", 20)], [("Cash", "12.00")], orderid=2, receipt_id="R-2"))
    # 3 x 0.99 VAT-inclusive: the till's VAT 0.50 (rows 0.17 each): POS VAT wins, per receipt.
    c = build(
        receipt(
            [("SKU-C", 3, "0.82", 20, "0.51")],
            [("Card", "2.97")],
            orderid=3,
            receipt_id="R-3",
            vat_override="0.50",
            money_net=D("2.47"),
            money_gross=D("2.97"),
        )
    )
    return [a, b, c]


def test_lines_per_item_and_tax_code_with_the_receipts_pos_vat_per_rate():
    docs = day_of_receipts()
    s = summarise(
        docs, summary_external_id("sale", "ST001", DAY), "ST001", DAY, MAPPINGS, "Sitoo daily summary"
    )
    doc = s.document
    assert doc.external_id == "SITOO-D-ST001-20261116"
    keys = {(ln.item_id, ln.vat_rate) for ln in doc.lines}
    assert keys == {("111", D("20.000")), ("333", D("5.000")), ("333", D("20.000"))}
    assert len(doc.lines) == 3  # SKU-A twice -> one line
    item_a = next(ln for ln in doc.lines if ln.item_id == "111")
    assert item_a.quantity == 3 and item_a.amount == D("30.00")
    # Tax per rate = the sum of the receipts' POS VAT per rate (not recomputed on the summed net).
    want: dict[Decimal, Decimal] = {}
    for d in docs:
        for rate, v in d.pos_tax_by_rate.items():
            want[rate] = want.get(rate, D(0)) + v
    assert doc.tax_by_rate() == want
    assert doc.gross_total == sum((d.gross_total for d in docs), D(0))
    # Card + Cash: the settlement method and one tender journal moving each tender's day total.
    assert doc.tender_journal is not None and doc.tender_journal.external_id == "SITOO-TJ-D-ST001-20261116"
    balance = doc.tender_journal.balance_by_account()
    assert balance["1210"] == D("27.50") + D("2.97") and balance["1220"] == D("12.00")
    # Each receipt names the summary lines its rows went into.
    assert s.lines_by_order[2] == [item_a.line_no]
    body = render_netsuite(doc)
    assert body["taxDetailsOverride"] is True
    assert sum(D(str(t["taxAmount"])) for t in body["taxDetails"]["items"]) == doc.tax_total


def test_one_bank_tender_all_day_is_the_cash_sales_payment_method():
    docs = [d for d in day_of_receipts() if d.orderid != 2]  # card only
    doc = summarise(docs, "SITOO-D-ST001-20261116", "ST001", DAY, MAPPINGS, "m").document
    assert doc.payment_method_id == "2" and doc.tender_journal is None


def test_returns_summary_and_supplement_and_part_keys():
    ret = build(
        receipt([("SKU-A", 1, "10.00", 20)], [("Card", "-12.00")], sign=-1, orderid=9, receipt_id="R-9")
    )
    assert ret.kind == DocumentKind.REFUND
    key = summary_external_id("return", "ST001", DAY, supplement=2, part=3)
    assert key == "SITOO-DR-ST001-20261116-S2-P3"
    doc = summarise([ret], key, "ST001", DAY, MAPPINGS, "m").document
    assert (
        doc.kind == DocumentKind.REFUND and doc.gross_total == D("12.00") and doc.created_from_orderid is None
    )


def test_a_day_over_the_line_limit_splits_into_whole_receipts():
    docs = day_of_receipts()
    parts = pack(docs, max_lines=2)
    assert [[d.orderid for d in p] for p in parts] == [[1, 2], [3]]
    with pytest.raises(DocumentError, match="more than the ERP takes"):
        pack(docs, max_lines=1)


def test_receipts_of_different_kinds_never_share_a_summary():
    ret = build(
        receipt([("SKU-A", 1, "10.00", 20)], [("Card", "-12.00")], sign=-1, orderid=9, receipt_id="R-9")
    )
    with pytest.raises(ValueError, match="different kinds"):
        summarise([*day_of_receipts(), ret], "X", "ST001", DAY, MAPPINGS, "m")
