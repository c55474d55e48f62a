"""A seeded trading day through `sitoo_sales_hourly`: every finalised receipt in the ERP once,
with the POS's VAT to the penny, or quarantined with its reason — checked against the ERP itself."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from include.sandbox.catalogue import (
    GIFT_CARD_ITEM_ID,
    LOYALTY_DISCOUNT_ITEM_ID,
    ROUNDING_ITEM_ID,
    SETTLEMENT_ACCOUNT_ID,
    SETTLEMENT_METHOD_ID,
    TAX_CODE_BY_RATE,
    TENDER_ACCOUNTS,
)
from include.sandbox.generator import receipt_vat_by_rate, row_vat_by_rate
from include.sitoo_erp import loyalty
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, make_stack, run_hour, task_states
from tests.e2e.helpers import (
    assert_invariants,
    expected_quarantine,
    finalised,
    money,
    open_exceptions,
    states_by_order,
    visible_orders,
)


@pytest.fixture(scope="module")
def day(postgres, dagbag, tmp_path_factory):
    """One day for 3 stores (~450 receipts): run the 09:00 hour (its late sweep stages the whole
    day), then the 10:00 hour (a re-run that must change nothing)."""
    stack = make_stack(
        postgres, tmp_path_factory.mktemp("day"), seed=5, stores=3, days=1, receipts_per_store_day=150
    )
    dag = dagbag.get_dag("sitoo_sales_hourly")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        first = run_hour(dag, at(9))
        docs_after_first = stack.netsuite.count_documents_by_external_id()
        ledger_after_first = assert_invariants(stack)
        second = run_hour(dag, at(10))
        yield {
            "stack": stack,
            "runs": (first, second),
            "docs_after_first": docs_after_first,
            "ledger_after_first": ledger_after_first,
        }
    stack.stop()
    postgres.drop_database(stack.config.database)


def erp_documents(stack) -> dict[str, dict]:
    """The receipts' own documents (cash sales, refunds, credit memos), by externalId."""
    return {
        d["externalId"]: d for d in stack.netsuite.documents() if not d["externalId"].startswith("SITOO-TJ-")
    }


def tender_journal(stack, doc: dict) -> dict[str, Decimal]:
    """Debit minus credit per account of the receipt's tender journal."""
    journal = next(
        d
        for d in stack.netsuite.documents("journalEntry")
        if d["externalId"] == "SITOO-TJ-" + doc["externalId"][6:]
    )
    out: dict[str, Decimal] = {}
    for line in journal["line"]["items"]:
        acct = line["account"]["id"]
        out[acct] = out.get(acct, Decimal(0)) + money(line.get("debit", 0)) - money(line.get("credit", 0))
    return out


def posted_orders(stack) -> dict[int, str]:
    with connect_url(stack.database_url) as conn:
        return dict(conn.execute("select orderid, external_id from sitoo_erp.posting_log").fetchall())


def test_runs_succeed_and_every_task_ran(day):
    for run in day["runs"]:
        assert str(run.state) == "success", task_states(run)
        assert set(task_states(run).values()) == {"success"}


def test_every_finalised_receipt_is_posted_once_or_quarantined_with_its_reason(day):
    stack = day["stack"]
    counts = assert_invariants(stack)
    states = states_by_order(stack)
    orders = visible_orders(stack)
    assert counts["seen"] == len(orders)  # every order Sitoo has is in the ledger
    posted = posted_orders(stack)
    for order in finalised(orders):
        reason = expected_quarantine(stack, order)
        state, why = states[order["orderid"]]
        if reason is None:
            assert state == "posted", (order["orderid"], state, why)
            assert order["orderid"] in posted
        else:
            assert state == "quarantined" and reason in why, (order["orderid"], state, why)
    # ERP documents = distinct finalised receipts that could post.
    expected_docs = sum(1 for o in finalised(orders) if expected_quarantine(stack, o) is None)
    assert len(erp_documents(stack)) == expected_docs == counts["posted"]
    # Not finalised: held or excluded, never in the ERP.
    for order in orders:
        if order["orderstateid"] != 10 or order["paymentstateid"] != 20:
            assert states[order["orderid"]][0] in ("held", "excluded")
            assert order["orderid"] not in posted


def test_a_rerun_creates_nothing(day):
    stack = day["stack"]
    assert stack.netsuite.count_documents_by_external_id() == day["docs_after_first"]
    after = assert_invariants(stack)
    assert after == day["ledger_after_first"]


def test_erp_tax_equals_pos_vat_to_the_penny_and_variance_is_recorded(day):
    stack = day["stack"]
    docs = erp_documents(stack)
    by_order = {o["orderid"]: o for o in visible_orders(stack)}
    penny_checked = 0
    with connect_url(stack.database_url) as conn:
        variances = {
            (o, Decimal(r)): v
            for o, r, v in conn.execute(
                "select orderid, vat_rate, variance from sitoo_erp.receipt_tax_variance"
            )
        }
    for orderid, external_id in posted_orders(stack).items():
        order, doc = by_order[orderid], docs[external_id]
        assert money(doc["taxTotal"]) == abs(money(order["moneyfinal_vat"])), external_id
        assert money(doc["total"]) == abs(money(order["moneytotal_gross_all"])), external_id
        # The variance is what the ERP would have charged per line on the posted document (each tax
        # detail's basis x rate, rounded half-up), against the POS VAT it was given, per rate.
        pos: dict[Decimal, Decimal] = {}
        erp_line: dict[Decimal, Decimal] = {}
        for t in doc["taxDetails"]["items"]:
            rate = Decimal(str(t["taxRate"]))
            pos[rate] = pos.get(rate, Decimal(0)) + money(t["taxAmount"])
            per_line = (Decimal(str(t["taxBasis"])) * rate / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            erp_line[rate] = erp_line.get(rate, Decimal(0)) + per_line
        for rate in pos:
            recorded = variances.get((orderid, rate), Decimal("0.00"))
            assert recorded == pos[rate] - erp_line[rate], (orderid, rate)
        receipt_vat = receipt_vat_by_rate(order)
        line_vat = row_vat_by_rate(order)
        if any(money(receipt_vat[r][1]) != money(line_vat[r]) for r in receipt_vat):
            penny_checked += 1  # a basket whose receipt VAT differs from its rows' VAT
    assert penny_checked >= 3


def _first(stack, predicate) -> tuple[dict, dict]:
    docs = erp_documents(stack)
    by_order = {o["orderid"]: o for o in visible_orders(stack)}
    for orderid, external_id in sorted(posted_orders(stack).items()):
        if predicate(by_order[orderid]):
            return by_order[orderid], docs[external_id]
    raise AssertionError("no posted receipt of that kind in the seeded day")


def test_multi_rate_basket_has_one_tax_code_per_rate(day):
    order, doc = _first(day["stack"], lambda o: len({r["vatvalue"] for r in o["orderitems"]}) >= 2)
    codes = {t["taxCode"]["id"] for t in doc["taxDetails"]["items"]}
    assert codes == {TAX_CODE_BY_RATE[int(r["vatvalue"])] for r in order["orderitems"]}
    assert doc["taxDetailsOverride"] is True


def test_loyalty_is_a_document_discount_never_a_line_discount(day):
    """Sitoo's shape: the bonus cheque is in the row price with ``crm-bonuscheckid``; the ERP line posts
    at the original price and the cheque's net comes off at document level on the loyalty item."""

    def bonus_rows(o):
        return [r for r in o["orderitems"] if loyalty.bonus_cheque(r["additionaldata"])]

    order, doc = _first(
        day["stack"], lambda o: bool(bonus_rows(o)) and Decimal(o["moneytotal_gross_all"]) > 0
    )
    assert doc["discountItem"]["id"] == LOYALTY_DISCOUNT_ITEM_ID
    cheque_net = sum(money(r["moneydiscount"]) * r["quantity"] for r in bonus_rows(order))
    assert cheque_net > 0 and money(doc["discountRate"]) == -cheque_net
    for row in bonus_rows(order):
        line = doc["item"]["items"][row["orderitemid"]]
        assert money(line["rate"]) == money(row["moneyoriginalprice"]) > money(row["moneydiscountedprice"])
    for line in doc["item"]["items"]:
        assert "discount" not in {k.lower() for k in line}  # no line-level discount fields
    assert money(doc["total"]) == money(order["moneytotal_gross_all"])
    assert money(doc["taxTotal"]) == money(order["moneyfinal_vat"])


def test_campaign_price_stays_in_the_line_rate(day):
    order, doc = _first(day["stack"], lambda o: any(r.get("vouchercode") for r in o["orderitems"]))
    row = next(r for r in order["orderitems"] if r.get("vouchercode"))
    line = doc["item"]["items"][row["orderitemid"]]
    assert money(line["rate"]) == money(row["moneydiscountedprice"]) < money(row["moneyoriginalprice"])


def test_split_tender_puts_each_tender_on_its_own_account(day):
    stack = day["stack"]
    order, doc = _first(
        stack,
        lambda o: (
            len({p["name"] for p in o["payments"]}) >= 2
            and "Exchange" not in {p["name"] for p in o["payments"]}
            and Decimal(o["moneytotal_gross_all"]) > 0
        ),
    )
    assert doc["paymentMethod"]["id"] == SETTLEMENT_METHOD_ID
    for payment in order["payments"]:
        assert f"{payment['name']} {abs(Decimal(payment['moneyamount'])):.2f}" in doc["memo"]
    per_tender: dict[str, Decimal] = {}
    for p in order["payments"]:
        acct = TENDER_ACCOUNTS[p["name"]]
        per_tender[acct] = per_tender.get(acct, Decimal(0)) + money(p["moneyamount"])
    per_tender[SETTLEMENT_ACCOUNT_ID] = -money(order["moneytotal_gross_all"])
    assert tender_journal(stack, doc) == {a: v for a, v in per_tender.items() if v}


def test_gift_card_sold_is_a_liability_line_and_redemption_relieves_the_liability(day):
    stack = day["stack"]
    _, doc = _first(stack, lambda o: any(r["sku"] == "GIFTCARD" for r in o["orderitems"]))
    assert GIFT_CARD_ITEM_ID in {line["item"]["id"] for line in doc["item"]["items"]}
    order, doc = _first(
        stack,
        lambda o: (
            any(p["name"] == "Gift Card" for p in o["payments"]) and Decimal(o["moneytotal_gross_all"]) > 0
        ),
    )
    assert "Gift Card" in doc["memo"] and doc["paymentMethod"]["id"] == SETTLEMENT_METHOD_ID
    redeemed = sum(money(p["moneyamount"]) for p in order["payments"] if p["name"] == "Gift Card")
    assert tender_journal(stack, doc)[TENDER_ACCOUNTS["Gift Card"]] == redeemed  # debit: liability relieved


def test_cash_round_off_is_a_rounding_line(day):
    order, doc = _first(
        day["stack"],
        lambda o: Decimal(o["moneytotal_gross_roundoff"]) != 0 and Decimal(o["moneytotal_gross_all"]) > 0,
    )
    rounding = [line for line in doc["item"]["items"] if line["item"]["id"] == ROUNDING_ITEM_ID]
    assert len(rounding) == 1 and money(rounding[0]["amount"]) == money(order["moneytotal_gross_roundoff"])
    assert money(doc["total"]) == money(order["moneytotal_gross_all"])


def test_return_is_a_cash_refund_linked_to_its_sale(day):
    stack = day["stack"]
    order, doc = _first(
        stack, lambda o: o.get("creditorderid") and "pos-refundsales-orderid" not in o["additionaldata"]
    )
    assert doc["externalId"].startswith("SITOO-R-")
    original = posted_orders(stack)[order["creditorderid"]]
    original_doc = erp_documents(stack)[original]
    assert str(doc["createdFrom"]["id"]) == str(original_doc["id"])
    assert all(float(line["quantity"]) > 0 for line in doc["item"]["items"])  # positive on a refund


def test_exchange_posts_as_its_two_linked_documents(day):
    stack = day["stack"]
    refund, refund_doc = _first(stack, lambda o: "pos-refundsales-orderid" in o["additionaldata"])
    sale_id = int(refund["additionaldata"]["pos-refundsales-orderid"])
    sale_doc = erp_documents(stack)[posted_orders(stack)[sale_id]]
    assert refund_doc["externalId"].startswith("SITOO-R-") and sale_doc["externalId"].startswith("SITOO-S-")
    # The value moved between them goes through exchange clearing on both sides and nets to zero.
    assert "Exchange" in refund_doc["memo"] and "Exchange" in sale_doc["memo"]
    clearing = TENDER_ACCOUNTS["Exchange"]
    out, back = tender_journal(stack, refund_doc)[clearing], tender_journal(stack, sale_doc)[clearing]
    assert out < 0 < back and out + back == 0


def test_open_exceptions_name_order_field_and_rule(day):
    stack = day["stack"]
    exceptions = open_exceptions(stack)
    assert exceptions
    for kind, orderid, sku, message, _ in exceptions:
        if kind == "unknown_sku":
            assert sku and sku in message and str(orderid) in message
