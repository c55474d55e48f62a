"""Pure logic of invariant 10: which document a changed receipt needs, and how a per-receipt
reconciliation mismatch is named, caused and explained."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from include.sitoo_erp.erp.netsuite_ledger import id_windows
from include.sitoo_erp.posting.after_posting import _kind
from include.sitoo_erp.reconciliation.compare import _receipt_line

D = Decimal


@pytest.mark.parametrize(
    ("gross", "refund_of", "posted_as", "needs"),
    [
        (D("344.77"), None, "sale", "sale"),
        (D("-10.00"), 5, "refund", "refund"),
        (D("-10.00"), 5, "credit_memo", "credit_memo"),  # a return keeps the document the site chose
        (D("-10.00"), None, "sale", "refund"),  # a sale edited into a return needs another document
        (D("0.00"), 5, "refund", "refund"),
        (D("12.00"), None, "refund", "sale"),
    ],
)
def test_the_document_a_changed_receipt_needs(gross, refund_of, posted_as, needs):
    assert _kind(gross, refund_of, posted_as) == needs


def _row(**over) -> dict:
    row = {
        "orderid": 11001,
        "receipt_id": "R-1",
        "external_id": "SITOO-S-ST001-R-1",
        "erp_id": "10042",
        "document_type": "sale",
        "tran_date": date(2026, 11, 5),
        "store_externalid": "ST001",
        "sign": 1,
        "content_hash": "a",
        "line_count": 2,
        "line_qty": D("3.000"),
        "line_item_qty": D("300005.000"),
        "business_date": date(2026, 11, 5),
        "money_gross": D("344.77"),
        "money_vat": D("57.46"),
        "state": "posted",
        "trantype": "CashSale",
        "expected_type": "CashSale",
        "erp_date": date(2026, 11, 5),
        "erp_net": D("432.69"),
        "erp_tax": D("86.54"),
        "lines": 2,
        "qty": D("3"),
        "item_qty": D("300005"),
        "absent": False,
        "tax_detail": None,
        "not_finalised": False,
        "changed": True,
        "raised": False,
        "any_open": False,
        "pending": False,
    }
    row.update(over)
    return row


def test_edited_receipt_not_yet_handled_is_named_and_unexplained():
    line = _receipt_line(_row())
    assert line["class"] == "receipt_mismatch" and line["cause"] == "changed_after_posting"
    assert not line["explained"] and line["owner"] == "finance"
    assert (line["orderid"], line["receipt_id"], line["external_id"], line["erp_id"]) == (
        11001,
        "R-1",
        "SITOO-S-ST001-R-1",
        "10042",
    )
    assert (
        "total: Sitoo 344.77, ERP 519.23" in line["detail"]
        and "tax: Sitoo 57.46, ERP 86.54" in line["detail"]
    )
    assert (line["sitoo_amount"], line["erp_amount"]) == (D("344.77"), D("519.23"))
    assert (line["diff_net"], line["diff_tax"]) == (D("287.31") - D("432.69"), D("57.46") - D("86.54"))


def test_a_pending_correction_or_a_finance_exception_explains_it_an_erp_edit_never_does():
    assert _receipt_line(_row(state="held", pending=True))["cause"] == "correction_pending"
    assert _receipt_line(_row(state="held", pending=True))["explained"]
    assert _receipt_line(_row(raised=True))["explained"]
    cancelled = _receipt_line(_row(not_finalised=True, changed=False, raised=True))
    assert cancelled["cause"] == "cancelled_after_posting" and cancelled["explained"]
    assert cancelled["sitoo_amount"] == 0 and cancelled["erp_amount"] == D("519.23")
    erp_edit = _receipt_line(_row(changed=False, any_open=True, qty=D("4")))
    assert erp_edit["cause"] == "erp_differs" and not erp_edit["explained"]
    assert (
        "lines (item x quantity): ERP 2 lines, quantity 4; posted 2 lines, quantity 3.000"
        in erp_edit["detail"]
    )


def test_id_windows_merge_buckets_up_to_the_window_and_never_split_one():
    assert id_windows([]) == []
    assert id_windows([(10, 300), (11, 300), (12, 300), (40, 5)]) == [(10_000, 11_999), (12_000, 40_999)]
    assert id_windows([(7, 1000), (8, 1)]) == [(7_000, 7_999), (8_000, 8_999)]
