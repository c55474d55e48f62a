"""The chaos month's per-receipt check (invariant 10) catches each way an ERP document can be wrong.

Pure logic: a Sitoo receipt (as the API returns it) against the ERP's record of its document (as
``bench.chaos_month`` reads it from the NetSuite tables). A check that cannot fail proves nothing,
so each field the month relies on is broken once here.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bench.chaos_month import _receipt_differences

LONDON = ZoneInfo("Europe/London")
# Rung up late on 1 November, store time (London is on GMT in November).
RUNG_UP = int(datetime(2026, 11, 1, 23, 30, tzinfo=UTC).timestamp())


def _receipt() -> dict:
    """3 x 0.99 at 20 % VAT-inclusive (rows 0.17 VAT each) + 1 x 10.50 at 5 %; the till rounded VAT per
    receipt at 20 % (0.50, not the rows' 0.51): Sitoo's total VAT is 1.00."""
    return {
        "orderdate": RUNG_UP,
        "moneytotal_gross_all": "13.47",
        "moneyfinal_vat": "1.00",
        "orderitems": [
            {
                "sku": "A-1",
                "quantity": 3,
                "vatvalue": 20,
                "moneyitemtotal_net": "2.46",
                "moneyitemtotal_vat": "0.51",
            },
            {
                "sku": "B-2",
                "quantity": 1,
                "vatvalue": 5,
                "moneyitemtotal_net": "10.00",
                "moneyitemtotal_vat": "0.50",
            },
        ],
    }


def _document() -> dict:
    return {
        "record": "cashSale",
        "tranDate": "2026-11-01",
        "total": Decimal("13.47"),
        "tax": Counter({"20.000": Decimal("0.50"), "5.000": Decimal("0.50")}),
        "items": Counter({"A-1": Decimal(-3), "B-2": Decimal(-1)}),  # NetSuite stores sale lines negative
    }


def test_a_right_document_passes_with_the_tills_per_receipt_rounding():
    assert _receipt_differences(_receipt(), _document(), LONDON) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"record": "cashRefund"}, "cashRefund for a receipt of 13.47"),
        ({"total": Decimal("13.46")}, "ERP total 13.46"),
        ({"tranDate": "2026-11-02"}, "tranDate 2026-11-02, business day 2026-11-01"),
        ({"tax": Counter({"20.000": Decimal("0.51"), "5.000": Decimal("0.50")})}, "ERP tax 1.01"),
        # The total VAT adds up, but a cent moved from one rate to the other beyond rounding.
        ({"tax": Counter({"20.000": Decimal("0.45"), "5.000": Decimal("0.55")})}, "ERP tax at 5.000 %"),
        ({"items": Counter({"A-1": Decimal(-2), "B-2": Decimal(-1)})}, "lines"),
        ({"items": Counter({"A-1": Decimal(-3), "C-3": Decimal(-1)})}, "lines"),
    ],
)
def test_each_wrong_field_is_named(change, named):
    problems = _receipt_differences(_receipt(), _document() | change, LONDON)
    assert any(named in p for p in problems), problems


def test_a_refund_must_be_a_refund_record_with_its_negative_total():
    refund = _receipt() | {"moneytotal_gross_all": "-13.47", "moneyfinal_vat": "-1.00"}
    refund["orderitems"] = [
        {
            **r,
            "quantity": -r["quantity"],
            "moneyitemtotal_net": f"-{r['moneyitemtotal_net']}",
            "moneyitemtotal_vat": f"-{r['moneyitemtotal_vat']}",
        }
        for r in refund["orderitems"]
    ]
    as_refund = _document() | {
        "record": "cashRefund",
        "items": Counter({"A-1": Decimal(3), "B-2": Decimal(1)}),
    }
    assert _receipt_differences(refund, as_refund, LONDON) == []
    assert _receipt_differences(refund, _document(), LONDON)  # posted as a sale: wrong
