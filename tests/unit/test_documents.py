"""Ledger documents (ERP-neutral) and their NetSuite rendering: one test (or more) per rule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.sitoo_erp.domain import parse_receipt_external_id, receipt_key, sanitise_key
from include.sitoo_erp.erp.adapter import DocumentKind
from include.sitoo_erp.erp.netsuite_documents import DISCOUNT_TAX_REFERENCE, record_type, render_netsuite
from include.sitoo_erp.posting.documents import (
    DocumentError,
    DocumentOptions,
    LineKind,
    MappingMissing,
    Mappings,
    ReceiptInput,
    allocate_tax,
    build_document,
    external_id_for,
    pos_vat_by_rate,
)

D = Decimal
C = D("0.01")


def r2(x: Decimal) -> Decimal:
    return x.quantize(C, ROUND_HALF_UP)


MAPPINGS = Mappings.from_rows(
    store_location=[
        {"store_externalid": "ST001", "location_id": "1001", "customer_id": "5001", "subsidiary_id": "1"},
        {"store_externalid": "ST002", "location_id": "1002", "customer_id": "5002", "subsidiary_id": "1"},
    ],
    tender_payment=[
        {"tender": "Cash", "payment_method_id": "1", "is_gift_card": "false", "account_id": "1220"},
        {"tender": "Card", "payment_method_id": "2", "is_gift_card": "false", "account_id": "1210"},
        {"tender": "Gift Card", "payment_method_id": "3", "is_gift_card": "true", "account_id": "2400"},
        {
            "tender": "Exchange",
            "payment_method_id": "5",
            "is_gift_card": "false",
            "account_id": "1260",
            "via_journal": "true",
        },
        {"tender": "Klarna", "payment_method_id": "4", "is_gift_card": "false"},  # no account: direct only
    ],
    vat_tax_code=[
        {"vat_rate": "20.000", "tax_code_id": "41", "tax_type_id": "7"},
        {"vat_rate": "5.000", "tax_code_id": "42", "tax_type_id": "7"},
        {"vat_rate": "0.000", "tax_code_id": "43", "tax_type_id": "7"},
    ],
    document_item=[
        {"purpose": "loyalty_discount", "item_id": "900"},
        {"purpose": "cash_rounding", "item_id": "901"},
        {"purpose": "gift_card", "item_id": "902"},
        {"purpose": "pos_settlement_method", "item_id": "6"},
        {"purpose": "pos_settlement_account", "item_id": "1250"},
    ],
    sku_item=[{"sku": "SKU-B", "item_id": "222"}],
    erp_items=[
        {"sku": "SKU-A", "item_id": "111", "is_inactive": False},
        {"sku": "SKU-B", "item_id": "999", "is_inactive": False},  # overridden by sku_item
        {"sku": "SKU-C", "item_id": "333", "is_inactive": False},
        {"sku": "SKU-Z", "item_id": "777", "is_inactive": True},
    ],
)


def receipt(
    rows: list[tuple],
    payments: list[tuple[str, str]] | None = None,
    *,
    roundoff: str = "0.00",
    sign: int = 1,
    vat_override: str | None = None,
    **header,
):
    """Rows ``(sku, qty, unit, rate[, line_vat[, extra]])`` -> staging dicts, totals per the POS rule.

    ``sign=-1`` makes a return (negative quantities and totals, positive unit prices). ``unit`` is the
    net unit price paid; ``extra["discount_unit"]`` a net discount per unit already in it, as Sitoo
    keeps it (``moneyoriginalprice`` = unit + discount).
    """
    row_dicts = []
    nets: dict[int, Decimal] = {}
    for i, spec in enumerate(rows):
        sku, qty, unit, rate = spec[:4]
        net = r2(D(unit) * qty) * sign
        vat = D(spec[4]) * sign if len(spec) > 4 and spec[4] is not None else r2(net * rate / 100)
        extra = spec[5] if len(spec) > 5 else {}
        nets[rate] = nets.get(rate, D(0)) + net
        row_dicts.append(
            {
                "orderitemid": i,
                "sku": sku,
                "productname": f"Product {sku}",
                "quantity": D(qty * sign).quantize(D("0.001")),
                "vat_rate": D(rate).quantize(D("0.001")),
                "net_unit_price": D(unit),
                "original_unit_price": D(unit) + D(extra.get("discount_unit", "0.00")),
                "discount_unit": D(extra.get("discount_unit", "0.00")),
                "money_net": net,
                "money_vat": vat,
                "vouchercode": extra.get("vouchercode"),
                "giftcard_number": extra.get("giftcard_number"),
                "additionaldata": json.dumps(extra.get("additionaldata", {})),
            }
        )
    ad = {"pos-receiptid": header.get("receipt_id", "R-1")}
    net = sum(nets.values(), D(0))
    vat = sum((r2(n * r / 100) for r, n in nets.items()), D(0))
    gross = net + vat + D(roundoff)
    h = {
        "orderid": 10042,
        "receipt_id": "R-1",
        "store_externalid": "ST001",
        "store_timezone": "Europe/London",
        "business_date": date(2026, 11, 16),
        "orderdate": datetime(2026, 11, 16, 10, 0, tzinfo=UTC),
        "orderstateid": 10,
        "paymentstateid": 20,
        "ordertypeid": 10,
        "money_net": net,
        "money_vat": D(vat_override) if vat_override else vat,
        "money_roundoff": D(roundoff),
        "money_gross": gross,
        "loyalty_discount": D("0.00"),
        "additionaldata": ad,
    }
    h.update(header)
    pays = payments if payments is not None else [("Card", str(gross))]
    pay_dicts = [
        {"payment_index": i, "name": n, "amount": D(a), "is_virtual": n == "Exchange"}
        for i, (n, a) in enumerate(pays)
    ]
    return ReceiptInput.from_rows(h, row_dicts, pay_dicts)


def build(rcpt, **opts):
    return build_document(rcpt, MAPPINGS, DocumentOptions(**opts))


# ---------------------------------------------------------------------------------------------- externalId
def test_external_id_scheme_for_sale_and_return():
    assert build(receipt([("SKU-A", 1, "10.00", 20)])).external_id == "SITOO-S-ST001-R-1"
    ret = build(receipt([("SKU-A", 1, "10.00", 20)], sign=-1, creditorderid=10001, refund_of_orderid=10001))
    assert ret.external_id == "SITOO-R-ST001-R-1"


def test_external_id_is_sanitised_and_falls_back_to_orderid():
    assert sanitise_key("a b|c/d_e-f.1") == "a-b-c-d_e-f-1"
    doc = build(receipt([("SKU-A", 1, "10.00", 20)], receipt_id="SBX 1|7/8"))
    assert doc.external_id == "SITOO-S-ST001-SBX-1-7-8"
    assert build(receipt([("SKU-A", 1, "10.00", 20)], receipt_id=None)).external_id == "SITOO-S-ST001-10042"
    with pytest.raises(DocumentError) as err:
        external_id_for(DocumentKind.SALE, "ST001", "x" * 300, 1)
    assert err.value.rule == "external_id.length"


@given(
    store=st.text(min_size=1, max_size=12),
    receipt_id=st.one_of(st.none(), st.text(max_size=40)),
    orderid=st.integers(min_value=1, max_value=10**12),
    kind=st.sampled_from([DocumentKind.SALE, DocumentKind.REFUND, DocumentKind.CREDIT_MEMO]),
)
@settings(max_examples=300, deadline=None)
def test_the_reconciliation_reads_back_the_receipt_key_staging_stored(store, receipt_id, orderid, kind):
    """An ERP document nobody logged is traced to its receipt by the key staging stores on the order
    (``sitoo_order.receipt_key``): parsing the externalId must give exactly that key back, whatever the
    till put in the receipt id or the store id (spaces, slashes, dashes, nothing at all)."""
    eid = external_id_for(kind, store, receipt_id, orderid)
    assert parse_receipt_external_id(eid, store) == receipt_key(receipt_id, orderid)
    assert parse_receipt_external_id(eid.replace("SITOO-", "SITOO-D", 1), store) is None


# ---------------------------------------------------------------------------------------------- kinds
def test_sale_receipt_is_one_sale_document():
    doc = build(receipt([("SKU-A", 2, "10.00", 20), ("SKU-B", 1, "3.33", 5)]))
    assert doc.kind == DocumentKind.SALE and doc.sign == 1 and not doc.is_return
    assert [ln.item_id for ln in doc.lines] == ["111", "222"]  # sku_item override wins over erp_item
    assert [ln.line_no for ln in doc.lines] == [1, 2]
    assert doc.created_from_external_id is None


def test_return_has_positive_quantities_and_references_the_original_sale():
    rcpt = receipt(
        [("SKU-A", 2, "10.00", 20)],
        sign=-1,
        creditorderid=10001,
        refund_of_orderid=10001,
        receipt_id="R-9",
    )
    assert rcpt.money_gross == D("-24.00")
    rcpt = ReceiptInput.from_rows(
        {**_header_of(rcpt)},
        _rows_of(rcpt),
        [{"payment_index": 0, "name": "Card", "amount": D("-24.00")}],
        original={"orderid": 10001, "receipt_id": "R-1", "store_externalid": "ST002"},
    )
    doc = build(rcpt)
    assert doc.kind == DocumentKind.REFUND and doc.sign == -1
    (ln,) = doc.lines
    assert (ln.quantity, ln.rate, ln.amount, ln.tax_amount) == (D("2.000"), D("10.00"), D("20.00"), D("4.00"))
    assert doc.gross_total == D("24.00") and doc.tax_total == D("4.00")
    assert doc.payments[0].amount == D("24.00") and doc.memo == "Sitoo receipt R-9 | Card 24.00"
    assert doc.created_from_external_id == "SITOO-S-ST002-R-1" and doc.created_from_orderid == 10001
    assert build(rcpt, return_document="credit_memo").kind == DocumentKind.CREDIT_MEMO


def test_return_without_the_original_header_keeps_only_its_orderid():
    doc = build(receipt([("SKU-A", 1, "10.00", 20)], sign=-1, creditorderid=10001, refund_of_orderid=10001))
    assert doc.created_from_external_id is None and doc.created_from_orderid == 10001


def test_positive_receipt_linked_to_an_original_is_an_error():
    with pytest.raises(DocumentError) as err:
        build(receipt([("SKU-A", 1, "10.00", 20)], refund_of_orderid=10001))
    assert err.value.rule == "return.negative_total" and err.value.orderid == 10042
    # linked to an original that is a sale (positive): still an error
    sale_header = {"orderid": 10001, "receipt_id": "R-0", "store_externalid": "ST001", "money_gross": "12.00"}
    rcpt = receipt([("SKU-A", 1, "10.00", 20)], creditorderid=10001, refund_of_orderid=10001)
    with pytest.raises(DocumentError) as err:
        build(ReceiptInput(**{**rcpt.__dict__, "original_money_gross": D(sale_header["money_gross"])}))
    assert err.value.rule == "return.negative_total"


def test_return_of_a_return_is_a_sale_linked_to_that_return():
    """A positive receipt whose creditorderid is a refund: the goods go out again (issue 11, 4)."""
    refund_header = {
        "orderid": 10040,
        "receipt_id": "R-9",
        "store_externalid": "ST002",
        "money_gross": "-12.00",
    }
    rcpt = receipt([("SKU-A", 1, "10.00", 20)], creditorderid=10040, refund_of_orderid=10040)
    rcpt = ReceiptInput(
        **{
            **rcpt.__dict__,
            "original_money_gross": D("-12.00"),
            "original_receipt_id": refund_header["receipt_id"],
            "original_store_externalid": refund_header["store_externalid"],
            "original_orderid": 10040,
        }
    )
    doc = build(rcpt)
    assert doc.kind == DocumentKind.SALE and doc.sign == 1
    assert doc.external_id == "SITOO-S-ST001-R-1"
    assert doc.created_from_external_id == "SITOO-R-ST002-R-9" and doc.created_from_orderid == 10040
    assert doc.memo.startswith("Sitoo receipt R-1 (reverses return R-9)")
    assert doc.gross_total == D("12.00")


def test_exchange_is_two_documents_with_the_clearing_tender():
    refund = receipt(
        [("SKU-A", 1, "10.00", 20)],
        [("Exchange", "-12.00")],
        sign=-1,
        creditorderid=10001,
        refund_of_orderid=10001,
        exchange_orderid=10050,
        receipt_id="R-2",
    )
    sale = receipt(
        [("SKU-C", 1, "15.00", 20)],
        [("Exchange", "12.00"), ("Card", "6.00")],
        orderid=10050,
        exchange_orderid=10049,
        receipt_id="R-3",
    )
    d1, d2 = build(refund), build(sale)
    assert (d1.kind, d2.kind) == (DocumentKind.REFUND, DocumentKind.SALE)
    assert d1.external_id != d2.external_id
    # Exchange is never a payment method: both go on the POS settlement method + a tender journal.
    assert d1.payment_method_id == "6" and d2.payment_method_id == "6"
    assert d2.memo == "Sitoo receipt R-3 | Exchange 12.00; Card 6.00"
    assert d1.payments[0].is_virtual
    assert d1.tender_journal.balance_by_account() == {"1260": D("-12.00"), "1250": D("12.00")}
    assert d2.tender_journal.balance_by_account() == {
        "1260": D("12.00"),
        "1210": D("6.00"),
        "1250": D("-18.00"),
    }
    clearing = d1.tender_journal.balance_by_account()["1260"] + d2.tender_journal.balance_by_account()["1260"]
    assert clearing == 0  # exchange clearing nets to zero over the pair
    assert d1.tender_journal.external_id == "SITOO-TJ-R-ST001-R-2"
    assert d2.tender_journal.external_id == "SITOO-TJ-S-ST001-R-3"


def test_only_finalised_receipts_are_documents():
    with pytest.raises(DocumentError) as err:
        build(receipt([("SKU-A", 1, "10.00", 20)], orderstateid=0, paymentstateid=10))
    assert err.value.rule == "finalised_only"


# ---------------------------------------------------------------------------------------------- lines, tax
def test_campaign_price_stays_in_the_line_rate():
    extra = {"vouchercode": "CAMP20", "discount_unit": "2.50"}
    doc = build(receipt([("SKU-A", 3, "10.00", 20, None, extra)]))
    (ln,) = doc.lines
    assert ln.rate == D("10.00") and ln.amount == D("30.00")
    body = render_netsuite(doc)
    assert body["item"]["items"][0]["rate"] == 10.0
    assert not any("discount" in k.lower() for k in body["item"]["items"][0])


def test_pos_vat_per_rate_follows_the_till_and_must_stay_within_rounding():
    # Three lines of 3.33 at 20 %: per line 0.67 each (2.01), receipt rule round(9.99 * 0.2) = 2.00.
    rows = [
        ("SKU-A", 1, "3.33", 20, "0.67"),
        ("SKU-B", 1, "3.33", 20, "0.67"),
        ("SKU-C", 1, "3.33", 20, "0.67"),
    ]
    rcpt = receipt(rows)
    assert pos_vat_by_rate(rcpt) == {D("20"): D("2.00")}
    assert rcpt.money_vat == D("2.00")
    # A till that sums its line VAT (2.01) is just as consistent: the ERP gets 2.01.
    doc = build(receipt(rows, vat_override="2.01", money_gross=D("12.00")))
    assert doc.tax_by_rate() == {D("20"): D("2.01")} and doc.net_total == D("9.99")
    # 3 lines at 20 %: rounding explains at most 0.005 x (1 + 3 x 1.2) = 0.023; 2.04 is 0.03 off.
    with pytest.raises(DocumentError) as err:
        build(receipt(rows, vat_override="2.04", money_gross=D("12.03")))
    assert err.value.rule == "tax.vat_per_rate" and err.value.field == "money_vat"
    assert "order 10042" in str(err.value) and "tolerance 0.023" in str(err.value)


def test_penny_basket_moves_the_cent_onto_the_largest_remainder_and_records_variance():
    rows = [
        ("SKU-A", 1, "3.33", 20, "0.67"),
        ("SKU-B", 1, "3.31", 20, "0.66"),
        ("SKU-C", 1, "3.35", 20, "0.67"),
        ("SKU-A", 1, "4.00", 5, "0.20"),
    ]
    # 20 %: net 9.99 -> POS 2.00; per line 0.67 + 0.66 + 0.67 = 2.00 -> no move needed
    doc = build(receipt(rows))
    assert [ln.tax_amount for ln in doc.lines] == [D("0.67"), D("0.66"), D("0.67"), D("0.20")]
    rows[1] = ("SKU-B", 1, "3.33", 20, "0.67")  # 10.01 -> POS 2.00, lines 2.01: take 1 cent back
    doc = build(receipt(rows))
    # exact taxes 0.666, 0.666, 0.670: remainders -0.004, -0.004, 0.000 -> first most over-rounded line
    assert [ln.tax_amount for ln in doc.lines] == [D("0.66"), D("0.67"), D("0.67"), D("0.20")]
    assert doc.tax_by_rate() == {D("20"): D("2.00"), D("5"): D("0.20")}
    assert doc.pos_tax_by_rate == {D("20"): D("2.00"), D("5"): D("0.20")}
    assert doc.erp_line_tax_by_rate == {D("20"): D("2.01"), D("5"): D("0.20")}
    assert doc.tax_variance_by_rate == {D("20"): D("-0.01"), D("5"): D("0.00")}
    assert doc.total_variance == D("-0.01")


def test_allocation_examples():
    amounts = [D("3.33"), D("3.33"), D("3.33")]
    assert allocate_tax(amounts, [D("0.67")] * 3, D(20), D("2.00")) == [D("0.66"), D("0.67"), D("0.67")]
    assert allocate_tax(amounts, [D("0.66")] * 3, D(20), D("2.00")) == [D("0.67"), D("0.67"), D("0.66")]
    # more cents than lines: round-robin
    assert allocate_tax([D(1), D(1)], [D(0), D(0)], D(20), D("0.05")) == [D("0.03"), D("0.02")]
    assert allocate_tax([], [], D(20), D(0)) == []
    with pytest.raises(ValueError):
        allocate_tax([], [], D(20), D("0.01"))
    with pytest.raises(ValueError):
        allocate_tax([D(1)], [D(0)], D(20), D("0.005"))


cents = st.integers(min_value=-5_000, max_value=50_000).map(lambda c: D(c) / 100)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(cents, st.integers(-3, 3)), min_size=1, max_size=12),
    rate=st.sampled_from([D(20), D(5), D(0), D("12.5")]),
    diff=st.integers(min_value=-30, max_value=30),
)
def test_allocation_property(lines, rate, diff):
    amounts = [a for a, _ in lines]
    start = [r2(a * rate / 100) + D(j) / 100 for a, j in lines]  # POS per-line VAT, a few cents off
    target = sum(start, D(0)) + D(diff) / 100
    out = allocate_tax(amounts, start, rate, target)
    assert sum(out, D(0)) == target  # exact per rate
    bound = -(-abs(diff) // len(lines))  # ceil(|cents| / lines)
    moves = [(o - s) / C for o, s in zip(out, start, strict=True)]
    assert all(abs(m) <= bound for m in moves)
    assert all(m * diff >= 0 for m in moves)  # every move has the sign of the difference
    assert sum(abs(m) for m in moves) == abs(diff)
    assert allocate_tax(amounts, start, rate, target) == out  # deterministic
    # permutation-invariant up to ties: reversing the lines gives the same multiset of moves
    rev = allocate_tax(amounts[::-1], start[::-1], rate, target)
    assert sorted((o - s) for o, s in zip(rev, start[::-1], strict=True)) == sorted(
        (o - s) for o, s in zip(out, start, strict=True)
    )


# ---------------------------------------------------------------------------------------------- loyalty
def _bonus(cheque: str, discount_unit: str, key: str = "crm-bonuscheckid") -> dict:
    return {"discount_unit": discount_unit, "additionaldata": {key: cheque}}


def loyalty_receipt(**kw):
    """Sitoo's shape: the bonus cheque is in the row price (2 x 25.00 net less 2.50 a unit, @20 %);
    the 5 % row has a campaign (voucher code, no cheque) that stays in its price."""
    campaign = {"discount_unit": "2.22", "vouchercode": "CAMP10"}
    rows = [("SKU-A", 2, "22.50", 20, None, _bonus("BC1", "2.50")), ("SKU-B", 1, "20.00", 5, None, campaign)]
    return receipt(rows, **kw)


def test_a_bonus_cheque_row_posts_at_its_original_price_and_the_cheque_at_document_level():
    rcpt = loyalty_receipt()
    assert (rcpt.money_net, rcpt.money_vat) == (D("65.00"), D("10.00"))  # 45.00 + 9.00 @20, 20.00 + 1.00 @5
    doc = build(rcpt)
    assert doc.discount is not None and doc.discount.item_id == "900" and doc.discount.reference == "BC1"
    # the cheque: 2.50 x 2 net, VAT round(5.00 x 20 %) = 1.00; gross 6.00
    assert doc.discount.amount == D("-5.00") and doc.discount.gross == D("6.00")
    assert [(t.vat_rate, t.basis, t.tax_amount) for t in doc.discount.taxes] == [
        (D("20"), D("-5.00"), D("-1.00"))
    ]
    # the bonus line at its original price, the campaign line at the price paid
    assert [(ln.rate, ln.amount, ln.tax_amount) for ln in doc.lines] == [
        (D("25.00"), D("50.00"), D("10.00")),
        (D("20.00"), D("20.00"), D("1.00")),
    ]
    assert doc.tax_by_rate() == {D("20"): D("9.00"), D("5"): D("1.00")}  # = the till's rows per rate
    assert (doc.net_total, doc.tax_total, doc.gross_total) == (
        rcpt.money_net,
        rcpt.money_vat,
        rcpt.money_gross,
    )
    assert doc.tax_variance_by_rate == {D("20"): D("0.00"), D("5"): D("0.00")}
    body = render_netsuite(doc)
    assert body["discountItem"] == {"id": "900"} and body["discountRate"] == -5.00
    disc = [t for t in body["taxDetails"]["items"] if t["taxDetailsReference"] == DISCOUNT_TAX_REFERENCE]
    assert [(t["taxBasis"], t["taxAmount"], t["taxCode"]["id"]) for t in disc] == [(-5.00, -1.00, "41")]
    for line in body["item"]["items"]:
        assert not any("discount" in k.lower() for k in line)  # never a line discount


@pytest.mark.parametrize("key", ["crm-promotionid", "customcrm-promotionid"])
def test_a_crm_promotion_is_a_campaign_and_stays_in_the_line_price(key):
    doc = build(receipt([("SKU-A", 1, "20.00", 20, None, _bonus("P7", "5.00", key))]))
    assert doc.discount is None
    assert [(ln.rate, ln.amount, ln.tax_amount) for ln in doc.lines] == [(D("20.00"), D("20.00"), D("4.00"))]


def test_custom_crm_bonus_cheque_on_a_return_gives_the_cheque_back_at_document_level():
    rows = [("SKU-A", 1, "22.50", 20, None, _bonus("BC2", "2.50", "customcrm-bonuscheckid"))]
    rcpt = receipt(rows, sign=-1)
    doc = build(rcpt)
    assert doc.is_return and doc.discount.amount == D("-2.50") and doc.discount.gross == D("3.00")
    assert [(ln.amount, ln.tax_amount) for ln in doc.lines] == [(D("25.00"), D("5.00"))]
    assert doc.gross_total == -rcpt.money_gross == D("27.00")
    assert doc.tax_by_rate() == {D("20"): D("4.50")}


@pytest.mark.parametrize("discount", ["-1.00", "30.00"])
def test_a_bonus_row_whose_discount_cannot_be_split_off_is_a_loyalty_error(discount):
    row = {
        "orderitemid": 0,
        "sku": "SKU-A",
        "quantity": "1.000",
        "vat_rate": "20.000",
        "net_unit_price": "20.00",
        "original_unit_price": "20.00" if discount == "30.00" else "19.00",
        "discount_unit": discount,
        "money_net": "20.00",
        "money_vat": "4.00",
        "additionaldata": {"crm-bonuscheckid": "BC3"},
    }
    rcpt = ReceiptInput.from_rows(
        {**_header_of(receipt([("SKU-A", 1, "20.00", 20)])), "orderid": 10042},
        [row],
        [{"payment_index": 0, "name": "Card", "amount": D("24.00")}],
    )
    with pytest.raises(DocumentError) as err:
        build(rcpt)
    assert (err.value.rule, err.value.field) == ("loyalty.row_discount", "sitoo_order_row.discount_unit")


# ---------------------------------------------------------------------------------------------- gift card, rounding
def test_gift_card_sold_is_a_zero_vat_line_on_the_gift_card_item():
    gc = {"giftcard_number": "GC1", "additionaldata": {"product-group-type": "30"}}
    doc = build(receipt([("SKU-A", 1, "10.00", 20), ("GIFTCARD", 1, "25.00", 0, None, gc)]))
    ln = doc.lines[1]
    assert (ln.kind, ln.item_id, ln.vat_rate, ln.tax_code_id, ln.tax_amount) == (
        LineKind.GIFT_CARD,
        "902",
        D("0"),
        "43",
        D("0.00"),
    )
    assert doc.gross_total == D("37.00")
    with pytest.raises(DocumentError) as err:
        build(receipt([("GIFTCARD", 1, "25.00", 20, None, gc)]))
    assert err.value.rule == "gift_card.zero_vat"


def test_cash_round_off_is_a_zero_vat_line_on_the_rounding_item():
    rcpt = receipt([("SKU-A", 1, "10.01", 20)], [("Cash", "12.00")], roundoff="-0.01")
    assert rcpt.money_gross == D("12.00")
    doc = build(rcpt)
    ln = doc.lines[-1]
    assert (ln.kind, ln.item_id, ln.amount, ln.quantity, ln.tax_code_id, ln.tax_amount) == (
        LineKind.ROUNDING,
        "901",
        D("-0.01"),
        D(1),
        "43",
        D("0.00"),
    )
    assert doc.gross_total == D("12.00") and doc.tax_total == D("2.00")
    assert doc.payment_method_id == "1"
    ret = build(
        receipt(
            [("SKU-A", 1, "10.01", 20)], [("Cash", "-12.00")], roundoff="0.01", sign=-1, refund_of_orderid=1
        )
    )
    assert ret.lines[-1].amount == D("-0.01") and ret.gross_total == D("12.00")


# ---------------------------------------------------------------------------------------------- tenders
def test_split_tender_goes_on_the_settlement_method_and_a_journal_puts_each_tender_on_its_account():
    rows = [("SKU-A", 1, "10.00", 20), ("SKU-C", 1, "5.00", 20)]
    doc = build(receipt(rows, [("Card", "8.00"), ("Gift Card", "10.00")]))
    assert doc.payment_method_id == "6"
    assert doc.memo == "Sitoo receipt R-1 | Card 8.00; Gift Card 10.00"
    assert [t.is_gift_card for t in doc.payments] == [False, True]
    # gift card liability relieved by exactly the redeemed amount, card on its own account
    assert doc.tender_journal.balance_by_account() == {
        "1210": D("8.00"),
        "2400": D("10.00"),
        "1250": D("-18.00"),
    }
    split = build(receipt(rows, [("Cash", "9.00"), ("Card", "9.00")]))
    assert split.payment_method_id == "6"
    assert split.tender_journal.balance_by_account() == {
        "1220": D("9.00"),
        "1210": D("9.00"),
        "1250": D("-18.00"),
    }
    # one bank tender (even in two payments): its own method, no journal
    one = build(receipt(rows, [("Card", "9.00"), ("Card", "9.00")]))
    assert one.payment_method_id == "2" and one.tender_journal is None
    # a gift card alone still goes by journal: a liability is never a payment method's deposit account
    gift = build(receipt(rows, [("Gift Card", "18.00")]))
    assert gift.payment_method_id == "6"
    assert gift.tender_journal.balance_by_account() == {"2400": D("18.00"), "1250": D("-18.00")}


def test_split_refund_reverses_the_journal_and_credit_memo_has_none():
    rows = [("SKU-A", 1, "10.00", 20)]
    ret = build(receipt(rows, [("Card", "-8.00"), ("Cash", "-4.00")], sign=-1, refund_of_orderid=1))
    assert ret.payment_method_id == "6"
    assert ret.tender_journal.balance_by_account() == {
        "1210": D("-8.00"),
        "1220": D("-4.00"),
        "1250": D("12.00"),
    }
    memo = build(
        receipt(rows, [("Card", "-8.00"), ("Cash", "-4.00")], sign=-1, refund_of_orderid=1),
        return_document="credit_memo",
    )
    assert memo.tender_journal is None and memo.payment_method_id is None


def test_split_tender_needs_tender_accounts_settlement_and_payments_that_add_up():
    rows = [("SKU-A", 1, "10.00", 20)]
    with pytest.raises(MappingMissing) as err:
        build(receipt(rows, [("Card", "6.00"), ("Klarna", "6.00")]))
    assert (err.value.field, err.value.key) == ("tender_account", "Klarna")
    bare = Mappings(**{**MAPPINGS.__dict__, "document_items": {"gift_card": "902"}})
    with pytest.raises(MappingMissing) as err:
        build_document(receipt(rows, [("Card", "6.00"), ("Cash", "6.00")]), bare)
    assert err.value.key == "pos_settlement_method"
    with pytest.raises(DocumentError) as err:
        build(receipt(rows, [("Card", "6.00"), ("Cash", "5.00")]))
    assert err.value.rule == "tenders.sum" and err.value.field == "sitoo_payment.amount"


def test_unmapped_tender_sku_store_rate_and_document_item_raise_mapping_missing():
    cases = [
        (receipt([("SKU-A", 1, "10.00", 20)], [("Foreign Currency", "12.00")]), "tender", "Foreign Currency"),
        (receipt([("SKU-X", 1, "10.00", 20)]), "sku", "SKU-X"),
        (receipt([("SKU-Z", 1, "10.00", 20)]), "sku", "SKU-Z"),  # inactive in the ERP
        (receipt([("SKU-A", 1, "10.00", 20)], store_externalid="ST999"), "store", "ST999"),
        (receipt([("SKU-A", 1, "10.00", 12)]), "vat_rate", "12"),
    ]
    for rcpt, field, key in cases:
        with pytest.raises(MappingMissing) as err:
            build(rcpt)
        assert (err.value.field, err.value.key, err.value.orderid) == (field, key, 10042)
        assert err.value.rule == f"mapping.{field}"
    no_rounding = Mappings(**{**MAPPINGS.__dict__, "document_items": {"gift_card": "902"}})
    with pytest.raises(MappingMissing) as err:
        build_document(
            receipt([("SKU-A", 1, "10.01", 20)], [("Cash", "12.00")], roundoff="-0.01"), no_rounding
        )
    assert (err.value.field, err.value.key) == ("document_item", "cash_rounding")


# ---------------------------------------------------------------------------------------------- dates, totals
def test_tran_date_is_the_business_date_else_the_local_orderdate():
    late = datetime(2026, 6, 16, 23, 30, tzinfo=UTC)  # 00:30 on the 17th in London (BST)
    assert build(receipt([("SKU-A", 1, "10.00", 20)], business_date=date(2026, 6, 16))).tran_date == date(
        2026, 6, 16
    )
    assert build(receipt([("SKU-A", 1, "10.00", 20)], business_date=None, orderdate=late)).tran_date == date(
        2026, 6, 17
    )
    assert build(receipt([("SKU-A", 1, "10.00", 20)], business_date="2026-06-15")).tran_date == date(
        2026, 6, 15
    )


def test_totals_that_do_not_add_up_are_an_error_not_a_post():
    rcpt = receipt([("SKU-A", 1, "10.00", 20)], money_gross=D("12.50"))
    with pytest.raises(DocumentError) as err:
        build(rcpt)
    assert err.value.rule == "totals.money_gross" and "order 10042" in str(err.value)


# ---------------------------------------------------------------------------------------------- NetSuite body
def test_render_netsuite_exact_body_for_a_sale():
    doc = build(receipt([("SKU-A", 2, "10.00", 20), ("SKU-B", 1, "3.33", 5)], [("Card", "27.50")]))
    assert record_type(doc) == "cashSale"
    body = render_netsuite(doc)
    assert body == {
        "externalId": "SITOO-S-ST001-R-1",
        "entity": {"id": "5001"},
        "subsidiary": {"id": "1"},
        "location": {"id": "1001"},
        "tranDate": "2026-11-16",
        "memo": "Sitoo receipt R-1 | Card 27.50",
        "taxDetailsOverride": True,
        "paymentMethod": {"id": "2"},
        "item": {
            "items": [
                {
                    "item": {"id": "111"},
                    "quantity": 2,
                    "rate": 10.0,
                    "amount": 20.0,
                    "location": {"id": "1001"},
                    "taxDetailsReference": "L1",
                    "description": "Product SKU-A",
                },
                {
                    "item": {"id": "222"},
                    "quantity": 1,
                    "rate": 3.33,
                    "amount": 3.33,
                    "location": {"id": "1001"},
                    "taxDetailsReference": "L2",
                    "description": "Product SKU-B",
                },
            ]
        },
        "taxDetails": {
            "items": [
                {
                    "taxDetailsReference": "L1",
                    "taxType": {"id": "7"},
                    "taxCode": {"id": "41"},
                    "taxBasis": 20.0,
                    "taxRate": 20,
                    "taxAmount": 4.0,
                },
                {
                    "taxDetailsReference": "L2",
                    "taxType": {"id": "7"},
                    "taxCode": {"id": "42"},
                    "taxBasis": 3.33,
                    "taxRate": 5,
                    "taxAmount": 0.17,
                },
            ]
        },
    }
    assert json.loads(json.dumps(body)) == body  # plain JSON, no Decimal


def test_render_netsuite_returns_created_from_and_credit_memo_without_payment_method():
    rcpt = receipt([("SKU-A", 1, "10.00", 20)], sign=-1, refund_of_orderid=10001, creditorderid=10001)
    refund = build(rcpt)
    body = render_netsuite(refund, created_from_erp_id="10007")
    assert record_type(refund) == "cashRefund" and body["externalId"].startswith("SITOO-R-")
    assert body["createdFrom"] == {"id": "10007"} and body["paymentMethod"] == {"id": "2"}
    assert body["item"]["items"][0]["quantity"] == 1 and body["item"]["items"][0]["amount"] == 10.0
    assert "createdFrom" not in render_netsuite(refund)
    memo = build(rcpt, return_document="credit_memo")
    assert record_type(memo) == "creditMemo" and "paymentMethod" not in render_netsuite(memo)
    sale = build(receipt([("SKU-A", 1, "10.00", 20)]))
    assert "createdFrom" not in render_netsuite(sale, created_from_erp_id="1")


def test_discount_reference_matches_the_emulator_convention():
    from include.sandbox.netsuite import DISCOUNT_TAX_REFERENCE as EMULATOR_REF

    assert DISCOUNT_TAX_REFERENCE == EMULATOR_REF


# ---------------------------------------------------------------------------------------------- helpers
def _header_of(rcpt: ReceiptInput) -> dict:
    return {
        "orderid": rcpt.orderid,
        "receipt_id": rcpt.receipt_id,
        "store_externalid": rcpt.store_externalid,
        "business_date": rcpt.business_date,
        "orderstateid": rcpt.orderstateid,
        "paymentstateid": rcpt.paymentstateid,
        "creditorderid": rcpt.creditorderid,
        "refund_of_orderid": rcpt.refund_of_orderid,
        "money_net": rcpt.money_net,
        "money_vat": rcpt.money_vat,
        "money_roundoff": rcpt.money_roundoff,
        "money_gross": rcpt.money_gross,
        "loyalty_discount": rcpt.loyalty_discount,
        "additionaldata": dict(rcpt.additionaldata),
    }


def _rows_of(rcpt: ReceiptInput) -> list[dict]:
    return [
        {
            "orderitemid": r.orderitemid,
            "sku": r.sku,
            "productname": r.productname,
            "quantity": str(r.quantity),
            "vat_rate": r.vat_rate,
            "net_unit_price": r.net_unit_price,
            "original_unit_price": r.original_unit_price,
            "discount_unit": r.discount_unit,
            "money_net": str(r.money_net),
            "money_vat": r.money_vat,
            "additionaldata": dict(r.additionaldata),
        }
        for r in rcpt.rows
    ]
