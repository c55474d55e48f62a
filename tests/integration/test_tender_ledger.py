"""Invariant 11 and every return kind, proven in the ERP's general ledger, per account.

Receipts are built by hand in Sitoo's order shape (money as strings, ids in ``additionaldata``),
not by the project's generator; they go through the real path: staging (``stage_orders``) ->
``classify`` -> ``post_ready`` -> ``NetSuiteHook`` -> the NetSuite sandbox on 127.0.0.1. The ledger
is read back with SuiteQL over ``transactionaccountingline`` (reference erp-api §9 Q3), the way
finance would query NetSuite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from include.sandbox.catalogue import (
    GIFT_CARD_SKU,
    SETTLEMENT_ACCOUNT_ID,
    TENDER_ACCOUNTS,
    build_catalogue,
    mapping_seed_rows,
)
from include.sandbox.netsuite import NetSuiteSandbox
from include.sandbox.stack import NETSUITE_CERTIFICATE_ID, NETSUITE_CLIENT_ID
from include.sitoo_erp.erp.netsuite import NetSuiteHook
from include.sitoo_erp.http_retry import RetryPolicy, TransientApiError
from include.sitoo_erp.posting.classify import classify
from include.sitoo_erp.posting.mapping import refresh_item_cache
from include.sitoo_erp.posting.post import post_ready
from include.sitoo_erp.quality.gate import run_gate
from include.sitoo_erp.staging.db import connect_url
from include.sitoo_erp.staging.mappings import load_mapping_csvs, write_mapping_csvs
from include.sitoo_erp.staging.orders import stage_orders
from tests.integration.connections import netsuite_conn

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=2)
D = Decimal
CARD, CASH = TENDER_ACCOUNTS["Card"], TENDER_ACCOUNTS["Cash"]
GIFT_LIABILITY, EXCHANGE_CLEARING = TENDER_ACCOUNTS["Gift Card"], TENDER_ACCOUNTS["Exchange"]
SETTLEMENT = SETTLEMENT_ACCOUNT_ID
SALES, VAT_PAYABLE = "400", "220"  # the sandbox's revenue and VAT accounts
T0 = int(datetime(2026, 11, 16, 10, 0, tzinfo=UTC).timestamp())

LEDGER_SQL = (
    "SELECT tal.account AS account_id, SUM(tal.debit) AS debit, SUM(tal.credit) AS credit "
    "FROM transactionaccountingline tal JOIN transaction t ON t.id = tal.transaction "
    "WHERE tal.posting = 'T' AND t.externalid LIKE 'SITOO-%' GROUP BY tal.account ORDER BY tal.account"
)


# ---------------------------------------------------------------------------------------------- world
@pytest.fixture(scope="module")
def catalogue():
    return build_catalogue(seed=11, stores=2, skus=12, unknown_sku_share=0, inactive_sku_share=0)


@pytest.fixture(scope="module")
def sandbox(catalogue):
    with NetSuiteSandbox(
        master=catalogue.erp_master_data(),
        client_id=NETSUITE_CLIENT_ID,
        certificate_id=NETSUITE_CERTIFICATE_ID,
    ) as ns:
        yield ns


@pytest.fixture
def hook(sandbox, monkeypatch):
    sandbox.reset()
    netsuite_conn(monkeypatch, sandbox)
    h = NetSuiteHook(retry=FAST)
    yield h
    h.close()


@pytest.fixture
def conn(staging_conn, staging_url, catalogue, tmp_path):
    write_mapping_csvs(mapping_seed_rows(catalogue), tmp_path)
    load_mapping_csvs(staging_conn, tmp_path)
    staging_conn.execute(
        "insert into sitoo_erp.map_sku_item (sku, item_id) select unnest(%s::text[]), unnest(%s::text[])",
        ([p.sku for p in catalogue.products], [p.erp_item_id for p in catalogue.products]),
    )
    staging_conn.staging_url = staging_url  # for the gate, which reads the batch through GX
    return staging_conn


@pytest.fixture
def sku(catalogue):
    """A 20 % VAT product's SKU (the prices below are the till's, not the catalogue's)."""
    return next(p.sku for p in catalogue.products if p.vat_rate == 20 and p.group_type == 10)


# ---------------------------------------------------------------------------------------------- receipts
def row(index: int, sku: str, qty: int, net: str, vat: str, rate: int = 20, **ad: str) -> dict:
    """One Sitoo order item; a return carries negative quantity and money, positive unit price."""
    return {
        "orderitemid": index,
        "orderitemtype": 10,
        "sku": sku,
        "productname": f"Item {sku}",
        "quantity": qty,
        "vatvalue": rate,
        "moneynetpriceperunit": f"{abs(D(net) / qty):.2f}",
        "moneyitemtotal_net": net,
        "moneyitemtotal_vat": vat,
        "additionaldata": dict(ad),
    }


def pay(name: str, amount: str, **ad: str) -> dict:
    return {"name": name, "moneyamount": amount, "additionaldata": dict(ad)}


def order(
    orderid: int,
    receipt: str,
    rows: list[dict],
    payments: list[dict],
    store: str = "ST001",
    creditorderid: int | None = None,
    minute: int = 0,
    **ad: str,
) -> dict:
    """A closed, paid POS receipt in Sitoo's shape; totals are the rows' sums."""
    net = sum((D(r["moneyitemtotal_net"]) for r in rows), D(0))
    vat = sum((D(r["moneyitemtotal_vat"]) for r in rows), D(0))
    storeid = int(store[2:])
    out = {
        "orderid": orderid,
        "eshopid": 1,
        "registerid": f"{{5170000{storeid}-0000-0000-0000-000000000000}}",
        "warehouseid": 100 + storeid,
        "orderdate": T0 + 60 * minute,
        "orderstateid": 10,
        "paymentstateid": 20,
        "ordertypeid": 10,
        "currencycode": "GBP",
        "moneyfinal_net": f"{net:.2f}",
        "moneyfinal_vat": f"{vat:.2f}",
        "moneytotal_gross_roundoff": "0.00",
        "moneytotal_gross_all": f"{net + vat:.2f}",
        "additionaldata": {"pos-receiptid": receipt, "store-externalid": store, **ad},
        "orderitems": rows,
        "payments": payments,
    }
    if creditorderid is not None:
        out["creditorderid"] = creditorderid
    return out


def run(conn, hook, payloads: list[dict]):
    """What the hourly DAG does with a batch: stage, classify, ERP items, the quality gate, post."""
    stage_orders(conn, payloads)
    classify(conn)
    refresh_item_cache(conn, hook)
    run_gate(conn.staging_url, conn, run_label="tender-ledger")
    return post_ready(conn, hook)


def ledger(hook) -> dict[str, Decimal]:
    """Posted balance per account, debit minus credit, from SuiteQL."""
    out = {}
    for r in hook.query(LEDGER_SQL):
        out[str(r["account_id"])] = D(r.get("debit", "0")) - D(r.get("credit", "0"))
    return out


def state(conn, orderid: int) -> tuple[str, str]:
    return conn.execute(
        "select state, reason from sitoo_erp.order_state where orderid = %s", (orderid,)
    ).fetchone()


# ---------------------------------------------------------------------------------------------- tenders
def test_gift_card_sold_then_redeemed_nets_the_liability_to_zero_and_is_never_revenue(
    conn, hook, sandbox, sku
):
    sold = order(
        20001,
        "GC-SOLD",
        [row(0, GIFT_CARD_SKU, 1, "50.00", "0.00", rate=0, **{"product-group-type": "30"})],
        [pay("Card", "50.00")],
    )
    summary = run(conn, hook, [sold])
    assert summary.posted == 1
    gl = ledger(hook)
    assert gl[GIFT_LIABILITY] == D("-50.00")  # a liability, credited
    assert gl[CARD] == D("50.00")
    assert SALES not in gl and VAT_PAYABLE not in gl  # selling a gift card is not revenue

    # Redeemed in two purchases: gift card 20 + card 40, then gift card 30 alone.
    split = order(
        20002,
        "GC-SPLIT",
        [row(0, sku, 1, "50.00", "10.00")],
        [pay("Gift Card", "20.00"), pay("Card", "40.00")],
    )
    rest = order(20003, "GC-REST", [row(0, sku, 1, "25.00", "5.00")], [pay("Gift Card", "30.00")], minute=1)
    before = ledger(hook)
    summary = run(conn, hook, [split])
    assert summary.posted == 1
    after = ledger(hook)
    delta = {a: after.get(a, D(0)) - before.get(a, D(0)) for a in after}
    assert delta[GIFT_LIABILITY] == D("20.00")  # relieved by exactly the redeemed amount
    assert delta[CARD] == D("40.00")  # only the card's share lands on the card account
    assert delta[SALES] == D("-50.00") and delta[VAT_PAYABLE] == D("-10.00")
    assert delta.get(SETTLEMENT, D(0)) == 0  # the settlement account clears per receipt

    assert run(conn, hook, [rest]).posted == 1
    gl = ledger(hook)
    assert gl[GIFT_LIABILITY] == 0  # sold 50, redeemed 20 + 30
    assert gl[CARD] == D("90.00") and gl[SALES] == D("-75.00") and gl[VAT_PAYABLE] == D("-15.00")
    assert gl.get(SETTLEMENT, D(0)) == 0
    assert sum(gl.values(), D(0)) == 0  # the ledger balances

    # Exactly once: every tender journal has its own externalId, logged with its receipt.
    logged = conn.execute(
        "select orderid, tender_journal_external_id, tender_journal_erp_id from sitoo_erp.posting_log "
        "order by orderid"
    ).fetchall()
    assert [(o, j) for o, j, _ in logged] == [
        (20001, None),
        (20002, "SITOO-TJ-S-ST001-GC-SPLIT"),
        (20003, "SITOO-TJ-S-ST001-GC-REST"),
    ]
    journals = {d["externalId"]: d["id"] for d in sandbox.documents("journalEntry")}
    assert {j: e for _, j, e in logged if j} == journals
    # A re-run (all posted) and a re-post of the same receipt change nothing in the ledger.
    conn.execute(
        "update sitoo_erp.order_state set state = 'held', reason = 'ready to post', reason_code = 'ready' "
        "where orderid = 20002"
    )
    assert post_ready(conn, hook).posted == 1
    assert ledger(hook) == gl
    assert all(n == 1 for n in sandbox.count_documents_by_external_id().values())


def test_exchange_with_a_dearer_item_nets_the_clearing_account_to_zero(conn, hook, sku):
    sale = order(21001, "EX-ORIG", [row(0, sku, 1, "10.00", "2.00")], [pay("Card", "12.00")])
    assert run(conn, hook, [sale]).posted == 1
    refund = order(
        21002,
        "EX-BACK",
        [row(0, sku, -1, "-10.00", "-2.00")],
        [pay("Exchange", "-12.00", **{"virtual-payment": "true"})],
        creditorderid=21001,
        minute=5,
        **{"pos-refundsales-orderid": "21003"},
    )
    new = order(
        21003,
        "EX-NEW",
        [row(0, sku, 1, "15.00", "3.00")],
        [pay("Exchange", "12.00", **{"virtual-payment": "true"}), pay("Card", "6.00")],
        minute=6,
        **{"pos-refund-orderid": "21002"},
    )
    before = ledger(hook)
    summary = run(conn, hook, [refund, new])
    assert summary.posted == 2, summary
    after = ledger(hook)
    delta = {a: after.get(a, D(0)) - before.get(a, D(0)) for a in {*after, *before}}
    assert after[EXCHANGE_CLEARING] == 0  # 12 out on the refund, 12 in on the new sale
    assert delta[CARD] == D("6.00")  # the customer paid the difference by card
    assert delta.get(SETTLEMENT, D(0)) == 0
    assert delta[SALES] == D("-5.00") and delta[VAT_PAYABLE] == D("-1.00")  # -(15 - 10), -(3 - 2)


def test_card_and_cash_each_land_on_their_own_deposit_account(conn, hook, sku):
    receipts = [
        order(22001, "CC-1", [row(0, sku, 1, "25.00", "5.00")], [pay("Cash", "10.00"), pay("Card", "20.00")]),
        order(22002, "CC-2", [row(0, sku, 1, "5.00", "1.00")], [pay("Cash", "6.00")], minute=1),
        order(22003, "CC-3", [row(0, sku, 2, "20.00", "4.00")], [pay("Card", "24.00")], minute=2),
        order(  # a refund split over cash and card: the reverse
            22004,
            "CC-4",
            [row(0, sku, -1, "-25.00", "-5.00")],
            [pay("Cash", "-10.00"), pay("Card", "-20.00")],
            creditorderid=22001,
            minute=3,
        ),
    ]
    assert run(conn, hook, receipts[:3]).posted == 3
    gl = ledger(hook)
    assert gl[CASH] == D("16.00")  # 10 + 6
    assert gl[CARD] == D("44.00")  # 20 + 24
    assert gl.get(SETTLEMENT, D(0)) == 0
    assert run(conn, hook, receipts[3:]).posted == 1
    gl = ledger(hook)
    assert gl[CASH] == D("6.00")  # 10 + 6 - 10
    assert gl[CARD] == D("24.00")  # 20 + 24 - 20
    assert gl.get(SETTLEMENT, D(0)) == 0
    assert gl[SALES] == D("-25.00") and gl[VAT_PAYABLE] == D("-5.00")


# ---------------------------------------------------------------------------------------------- returns
def test_partial_cross_store_returns_and_a_return_of_a_return_post_linked(
    conn, hook, sandbox, sku, catalogue
):
    sale = order(23001, "RT-SALE", [row(0, sku, 3, "30.00", "6.00")], [pay("Card", "36.00")])
    part1 = order(
        23002,
        "RT-P1",
        [row(0, sku, -1, "-10.00", "-2.00")],
        [pay("Card", "-12.00")],
        creditorderid=23001,
        minute=5,
    )
    part2 = order(  # the same sale, returned at the other store
        23003,
        "RT-P2",
        [row(0, sku, -1, "-10.00", "-2.00")],
        [pay("Card", "-12.00")],
        store="ST002",
        creditorderid=23001,
        minute=6,
    )
    # The customer changes their mind and takes the first returned item back: a positive receipt
    # whose creditorderid is the refund.
    again = order(
        23004,
        "RT-AGAIN",
        [row(0, sku, 1, "10.00", "2.00")],
        [pay("Card", "12.00")],
        creditorderid=23002,
        minute=7,
    )
    summary = run(conn, hook, [sale, part1, part2, again])
    assert summary.posted == 4 and summary.quarantined == 0, summary
    assert {state(conn, o)[0] for o in (23001, 23002, 23003, 23004)} == {"posted"}

    sale_id = hook.find_document("sale", "SITOO-S-ST001-RT-SALE")["id"]
    p1 = hook.find_document("refund", "SITOO-R-ST001-RT-P1")
    p2 = hook.find_document("refund", "SITOO-R-ST002-RT-P2")
    assert p1["createdFrom"] == {"id": sale_id} and p2["createdFrom"] == {"id": sale_id}
    st2 = next(s for s in catalogue.stores if s.externalid == "ST002")
    assert p2["location"] == {"id": st2.erp_location_id}  # the return is booked where it happened
    resale = hook.find_document("sale", "SITOO-S-ST001-RT-AGAIN")
    assert resale["total"] == 12.0 and "reverses return RT-P1" in resale["memo"]

    item = next(p for p in catalogue.products if p.sku == sku).erp_item_id
    st1 = next(s for s in catalogue.stores if s.externalid == "ST001")
    # stock: store 1 sold 3, got 1 back, sold it again; store 2 took one back
    assert (
        sandbox.on_hand(item, st1.erp_location_id)
        == sandbox.store.on_hand_source(item, st1.erp_location_id) - 3
    )
    assert (
        sandbox.on_hand(item, st2.erp_location_id)
        == sandbox.store.on_hand_source(item, st2.erp_location_id) + 1
    )
    gl = ledger(hook)
    assert gl[CARD] == D("24.00") and gl[SALES] == D("-20.00")  # 36 - 12 - 12 + 12


def test_a_return_whose_sale_is_quarantined_raises_its_own_exception_the_same_run(conn, hook, sku):
    sale = order(24001, "Q-SALE", [row(0, sku, 1, "10.00", "2.00")], [pay("Foreign Currency", "12.00")])
    ret = order(
        24002,
        "Q-RET",
        [row(0, sku, -1, "-10.00", "-2.00")],
        [pay("Card", "-12.00")],
        creditorderid=24001,
        minute=5,
    )
    summary = run(conn, hook, [sale, ret])
    assert summary.posted == 0
    assert state(conn, 24001)[0] == "quarantined"  # by the gate or at posting: an unmapped tender
    st, reason = state(conn, 24002)
    assert st == "quarantined" and "24001" in reason
    exc = conn.execute(
        "select kind, rule, owner, status, message from sitoo_erp.exception where orderid = 24002"
    ).fetchall()
    assert len(exc) == 1
    kind, rule, owner, status, message = exc[0]
    assert (kind, rule, owner, status) == (
        "orphaned_return",
        "return.original_quarantined",
        "retail_ops",
        "open",
    )
    assert "SITOO-R-ST001-Q-RET" in message and "24001" in message

    # Ops map the tender; the next run posts the sale, then the return, and closes its exception.
    conn.execute(
        "insert into sitoo_erp.map_tender_payment (tender, payment_method_id, account_id) "
        "values ('Foreign Currency', '1', %s)",
        (CASH,),
    )
    summary = run(conn, hook, [])
    assert summary.posted == 2, summary
    assert state(conn, 24002)[0] == "posted"
    assert conn.execute("select status from sitoo_erp.exception where orderid = 24002").fetchone() == (
        "resolved",
    )
    assert hook.find_document("refund", "SITOO-R-ST001-Q-RET")["createdFrom"] == {
        "id": hook.find_document("sale", "SITOO-S-ST001-Q-SALE")["id"]
    }


def test_a_lost_answer_on_a_split_tender_sale_still_books_its_tender_journal(conn, hook, sandbox, sku):
    """The ERP stores the cash sale but its answer never arrives (the task dies before the journal is
    sent). The next run, a new session, finds the sale by externalId — and must not record the receipt
    as posted without its journal, or the gift card would stay a liability and the card unbooked."""
    sale = order(
        25001,
        "LOST-SPLIT",
        [row(0, sku, 1, "50.00", "10.00")],
        [pay("Gift Card", "20.00"), pay("Card", "40.00")],
    )
    with connect_url(conn.staging_url) as dying:
        dying.staging_url = conn.staging_url
        sandbox.timeout_next_upserts(FAST.attempts)  # stored by the ERP every time, never answered
        with pytest.raises(TransientApiError):
            run(dying, hook, [sale])
    assert [d["externalId"] for d in sandbox.documents("cashSale")] == ["SITOO-S-ST001-LOST-SPLIT"]
    assert sandbox.documents("journalEntry") == []  # never sent
    assert conn.execute(
        "select external_id, tender_journal_external_id from sitoo_erp.posting_intent"
    ).fetchall() == [("SITOO-S-ST001-LOST-SPLIT", "SITOO-TJ-S-ST001-LOST-SPLIT")]

    summary = post_ready(conn, hook)  # the next run: settles the intent first, then posts
    assert summary.intents["cleared"] == 1 and summary.posted == 1
    assert state(conn, 25001)[0] == "posted"
    gl = ledger(hook)
    assert gl[GIFT_LIABILITY] == D("20.00") and gl[CARD] == D("40.00")  # every tender booked
    assert gl.get(SETTLEMENT, D(0)) == 0
    assert all(n == 1 for n in sandbox.count_documents_by_external_id().values())  # nothing twice
    assert conn.execute("select count(*) from sitoo_erp.posting_intent").fetchone()[0] == 0
