"""The NetSuite emulator's general ledger: where each record posts, per account (no HTTP needed).

NetSuite's default payment account: the payment method's "Deposit To" account, else undeposited
funds; a gift certificate item credits its liability account; a journal entry posts its lines as
given and must balance.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from include.sandbox.catalogue import (
    GIFT_CARD_ITEM_ID,
    SETTLEMENT_ACCOUNT_ID,
    SETTLEMENT_METHOD_ID,
    TENDER_ACCOUNTS,
    build_catalogue,
)
from include.sandbox.netsuite.errors import NetSuiteError
from include.sandbox.netsuite.store import (
    ACCOUNT_SALES,
    ACCOUNT_TAX_PAYABLE,
    ACCOUNT_UNDEPOSITED_FUNDS,
    Store,
)

ITEM = "100001"


@pytest.fixture
def store():
    return Store(build_catalogue(seed=3, stores=1, skus=5).erp_master_data(), on_hand=None)


def sale(
    eid: str, item: str, amount: float, tax: float, method: str | None, record: str = "cashSale"
) -> tuple:
    body = {
        "entity": {"id": "5001"},
        "location": {"id": "1001"},
        "tranDate": "2026-11-16",
        "taxDetailsOverride": True,
        "item": {
            "items": [{"item": {"id": item}, "quantity": 1, "amount": amount, "taxDetailsReference": "L1"}]
        },
        "taxDetails": {
            "items": [
                {
                    "taxDetailsReference": "L1",
                    "taxType": {"id": "7"},
                    "taxCode": {"id": "41" if tax else "43"},
                    "taxBasis": amount,
                    "taxRate": 20 if tax else 0,
                    "taxAmount": tax,
                }
            ]
        },
    }
    if method:
        body["paymentMethod"] = {"id": method}
    return record, eid, body


def post(store: Store, record: str, eid: str, body: dict) -> str:
    return store.upsert(store.prepare(record, eid, body))[0]


def balances(store: Store) -> dict[str, Decimal]:
    return {a: Decimal(v["balance"]) for a, v in store.ledger().items()}


def test_cash_sale_debits_its_payment_methods_deposit_account_and_refund_reverses(store):
    post(store, *sale("SITOO-S-1", ITEM, 10.0, 2.0, "2"))  # Card
    post(store, *sale("SITOO-S-2", ITEM, 5.0, 1.0, "1"))  # Cash
    post(store, *sale("SITOO-S-3", ITEM, 5.0, 1.0, None))  # no method: undeposited funds
    post(store, *sale("SITOO-R-1", ITEM, 10.0, 2.0, "2", record="cashRefund"))
    gl = balances(store)
    assert gl[TENDER_ACCOUNTS["Card"]] == 0  # 12 in, 12 back
    assert gl[TENDER_ACCOUNTS["Cash"]] == Decimal("6.00")
    assert gl[str(ACCOUNT_UNDEPOSITED_FUNDS)] == Decimal("6.00")
    assert gl[str(ACCOUNT_SALES)] == Decimal("-10.00") and gl[str(ACCOUNT_TAX_PAYABLE)] == Decimal("-2.00")


def test_gift_card_item_credits_the_liability_not_revenue(store):
    post(store, *sale("SITOO-S-GC", GIFT_CARD_ITEM_ID, 25.0, 0.0, "2"))
    gl = balances(store)
    assert gl[TENDER_ACCOUNTS["Gift Card"]] == Decimal("-25.00")
    assert str(ACCOUNT_SALES) not in gl


def test_journal_entry_posts_its_lines_and_must_balance(store):
    post(store, *sale("SITOO-S-1", ITEM, 50.0, 10.0, SETTLEMENT_METHOD_ID))
    journal = {
        "subsidiary": {"id": "1"},
        "tranDate": "2026-11-16",
        "line": {
            "items": [
                {"account": {"id": TENDER_ACCOUNTS["Gift Card"]}, "debit": 20, "location": {"id": "1001"}},
                {"account": {"id": TENDER_ACCOUNTS["Card"]}, "debit": 40, "location": {"id": "1001"}},
                {"account": {"id": SETTLEMENT_ACCOUNT_ID}, "credit": 60, "location": {"id": "1001"}},
            ]
        },
    }
    post(store, "journalEntry", "SITOO-TJ-S-1", journal)
    post(store, "journalEntry", "SITOO-TJ-S-1", journal)  # an upsert: same document, same ledger
    gl = balances(store)
    assert gl[TENDER_ACCOUNTS["Gift Card"]] == Decimal("20.00")
    assert gl[TENDER_ACCOUNTS["Card"]] == Decimal("40.00")
    assert gl[SETTLEMENT_ACCOUNT_ID] == 0
    assert sum(gl.values(), Decimal(0)) == 0
    unbalanced = {**journal, "line": {"items": journal["line"]["items"][:2]}}
    with pytest.raises(NetSuiteError, match="not in balance"):
        store.prepare("journalEntry", "SITOO-TJ-S-2", unbalanced)
    both = {"line": {"items": [{"account": {"id": SETTLEMENT_ACCOUNT_ID}, "debit": 1, "credit": 1}]}}
    with pytest.raises(NetSuiteError, match="either a debit or a credit"):
        store.prepare("journalEntry", "SITOO-TJ-S-3", both)


def test_a_transaction_takes_at_most_the_documented_200_lines(store):
    """NetSuite Help, "Limitations for Creating Transactions" (invoices, journal entries: 200)."""
    record, eid, body = sale("SITOO-D-ST001-20261116", ITEM, 1.0, 0.2, SETTLEMENT_METHOD_ID)
    line, tax = body["item"]["items"][0], body["taxDetails"]["items"][0]
    body["item"]["items"] = [{**line, "taxDetailsReference": f"L{n}"} for n in range(1, 201)]
    body["taxDetails"]["items"] = [{**tax, "taxDetailsReference": f"L{n}"} for n in range(1, 201)]
    post(store, record, eid, body)  # 200 lines: accepted
    body["item"]["items"].append({**line, "taxDetailsReference": "L201"})
    body["taxDetails"]["items"].append({**tax, "taxDetailsReference": "L201"})
    with pytest.raises(NetSuiteError, match="maximum number of lines"):
        store.prepare(record, "SITOO-D-ST001-20261117", body)


def test_a_finance_user_edits_a_posted_lines_quantity_and_only_quantity_rate_and_stock_move(store):
    """The control the reconciliation's quantity proof is tested with: amounts, tax and ledger stay."""
    tid = post(store, *sale("SITOO-D-ST001-20261116", ITEM, 10.0, 2.0, "2"))
    gl_before = balances(store)
    on_hand_before = store.on_hand(ITEM, "1001")
    store.edit_line_quantity(tid, 1, Decimal(3))
    qty, rate, net = store.query(
        'SELECT quantity, rate, netamount FROM transactionline WHERE "transaction" = ? AND id = 1',
        (int(tid),),
    )[0]
    assert (qty, net) == (-3, -10.0) and rate == pytest.approx(3.3333)  # a cash sale's lines are negative
    line = store.get_record("cashSale", internal_id=tid)["item"]["items"][0]
    assert (line["quantity"], line["amount"]) == (3.0, 10.0)
    assert balances(store) == gl_before
    assert store.on_hand(ITEM, "1001") == on_hand_before - 2  # sold 3 now, not 1
    with pytest.raises(ValueError, match="not an item line"):
        store.edit_line_quantity(tid, 0, Decimal(1))  # the main line carries no quantity
