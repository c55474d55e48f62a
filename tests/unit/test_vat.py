"""The issue's penny cases (3 x 0.99 at 20 %) and the loyalty vocabulary, as explicit unit tests."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from include.sitoo_erp import loyalty
from include.sitoo_erp.posting import vat
from include.sitoo_erp.posting.documents import DocumentError, Mappings, ReceiptInput, build_document

D = Decimal

MAPPINGS = Mappings.from_rows(
    store_location=[
        {"store_externalid": "ST001", "location_id": "1", "customer_id": "2", "subsidiary_id": "1"}
    ],
    tender_payment=[{"tender": "Card", "payment_method_id": "2", "is_gift_card": "false"}],
    vat_tax_code=[{"vat_rate": str(r), "tax_code_id": f"4{r}", "tax_type_id": "7"} for r in (0, 5, 20)],
    document_item=[
        {"purpose": "loyalty_discount", "item_id": "900"},
        {"purpose": "cash_rounding", "item_id": "901"},
    ],
    sku_item=[{"sku": s, "item_id": str(i)} for i, s in enumerate(("MILK", "BREAD", "JAM"), start=100)],
)


def _receipt(rows, net, vat_total, gross, **ad):
    header = {
        "orderid": 501,
        "receipt_id": "R-501",
        "store_externalid": "ST001",
        "business_date": date(2026, 11, 16),
        "orderstateid": 10,
        "paymentstateid": 20,
        "money_net": D(net),
        "money_vat": D(vat_total),
        "money_gross": D(gross),
        "additionaldata": ad,
    }
    staged = [
        {
            "orderitemid": i,
            "sku": sku,
            "quantity": D(q),
            "vat_rate": D(r),
            "money_net": D(n),
            "money_vat": D(v),
            **(extra[0] if extra else {}),
        }
        for i, (sku, q, r, n, v, *extra) in enumerate(rows)
    ]
    return ReceiptInput.from_rows(header, staged, [{"payment_index": 0, "name": "Card", "amount": D(gross)}])


# 3 x 0.99 VAT-inclusive at 20 %: each row 0.99 -> VAT round(0.165) = 0.17, net 0.82; the receipt's VAT
# is derived once from its gross: round(2.97 / 6) = round(0.495) = 0.50, net 2.47.
PENNY_ROWS = [("JAM", 1, 20, "0.82", "0.17")] * 3


def test_three_times_099_vat_inclusive_posts_the_tills_050():
    doc = build_document(_receipt(PENNY_ROWS, "2.47", "0.50", "2.97"), MAPPINGS)
    assert doc.tax_by_rate() == {D("20"): D("0.50")}
    assert (doc.net_total, doc.tax_total, doc.gross_total) == (D("2.47"), D("0.50"), D("2.97"))
    # One line gives the VAT cent back to its net, so every line still sells at 0.99.
    assert sorted((ln.amount, ln.tax_amount) for ln in doc.lines) == [
        (D("0.82"), D("0.17")),
        (D("0.82"), D("0.17")),
        (D("0.83"), D("0.16")),
    ]
    assert all(ln.amount + ln.tax_amount == D("0.99") for ln in doc.lines)
    # The ERP alone would compute 0.17 + 0.16 + 0.16 = 0.49: the variance is recorded, not quarantined.
    assert doc.erp_line_tax_by_rate == {D("20"): D("0.49")}
    assert doc.tax_variance_by_rate == {D("20"): D("0.01")}


def test_three_times_099_rule_names_the_till_convention_and_tolerance():
    got = vat.receipt_vat({D(20): vat.RateLines(3, D("2.46"), D("0.51"))}, D("2.47"), D("0.50"))
    assert got.convention == vat.RECEIPT_GROSS and got.keeps_gross
    assert got.vat_by_rate == {D(20): D("0.50")} and got.net_by_rate == {D(20): D("2.47")}
    assert got.tolerance_by_rate == {D(20): D("0.023")}  # 0.005 x (1 + 3 x 1.2)


def test_same_basket_with_vat_from_each_line_posts_051():
    doc = build_document(_receipt(PENNY_ROWS, "2.46", "0.51", "2.97"), MAPPINGS)
    assert doc.tax_by_rate() == {D("20"): D("0.51")}
    assert [ln.amount for ln in doc.lines] == [D("0.82")] * 3


def test_same_basket_priced_net_posts_050_with_variance():
    # Net 0.83 a unit: rows 0.17 VAT each (0.166), the receipt round(2.49 x 0.2) = 0.50.
    rows = [("JAM", 1, 20, "0.83", "0.17")] * 3
    doc = build_document(_receipt(rows, "2.49", "0.50", "2.99"), MAPPINGS)
    assert doc.tax_by_rate() == {D("20"): D("0.50")}
    assert [ln.amount for ln in doc.lines] == [D("0.83")] * 3  # a net-priced till keeps its net
    assert doc.tax_variance_by_rate == {D("20"): D("0.50") - D("0.51")}


def test_vat_inclusive_receipt_mixing_rates_posts_each_rate():
    # 20 %: 3 x 0.99 as above; 5 %: 2 x 1.05 -> row VAT round(0.05) = 0.05, net 1.00; receipt 5 %:
    # round(2.10 / 21) = 0.10. Receipt gross 5.07, VAT 0.60, net 4.47 (rows: 4.46 / 0.61).
    rows = PENNY_ROWS + [("MILK", 1, 5, "1.00", "0.05")] * 2
    doc = build_document(_receipt(rows, "4.47", "0.60", "5.07"), MAPPINGS)
    assert doc.tax_by_rate() == {D("20"): D("0.50"), D("5"): D("0.10")}
    assert doc.gross_total == D("5.07")


@pytest.mark.parametrize(
    ("net", "vat_total", "gross", "rule", "field"),
    [
        ("2.46", "0.55", "3.01", "tax.vat_per_rate", "money_vat"),  # 0.04 off the rows, at most 0.023
        ("2.50", "0.50", "3.00", "tax.receipt_net", "money_net"),  # net neither the rows' nor gross - VAT
    ],
)
def test_a_genuinely_inconsistent_receipt_is_rejected_naming_field_and_rule(
    net, vat_total, gross, rule, field
):
    with pytest.raises(DocumentError) as err:
        build_document(_receipt(PENNY_ROWS, net, vat_total, gross), MAPPINGS)
    assert (err.value.orderid, err.value.field, err.value.rule) == (501, field, rule)


def _bonus(cheque: str, original: str, discount: str, key: str = "crm-bonuscheckid") -> dict:
    """Sitoo's row fields of a bonus cheque: net unit prices, the discount per unit, the cheque id."""
    return {
        "original_unit_price": D(original),
        "discount_unit": D(discount),
        "additionaldata": {key: cheque},
    }


def test_vat_inclusive_receipt_with_a_bonus_cheque_posts_the_cheque_at_document_level_to_the_penny():
    # A UK till, VAT from the receipt's gross: 3 x JAM 0.99 and BREAD 12.99 less a 5.00 bonus cheque = 7.99.
    # BREAD row: 7.99 -> VAT 1.33, net 6.66; original 12.99 -> net 10.82, so moneydiscount 4.16 (net).
    # Receipt at 20 %: gross 2.97 + 7.99 = 10.96, VAT round(10.96 / 6) = 1.83, net 9.13 (rows 9.12 / 1.84).
    rows = [*PENNY_ROWS, ("BREAD", 1, 20, "6.66", "1.33", _bonus("BC1", "10.82", "4.16"))]
    rcpt = _receipt(rows, "9.13", "1.83", "10.96", **{"crm-membernumber": "M0000042"})
    doc = build_document(rcpt, MAPPINGS)
    assert doc.discount is not None and doc.discount.item_id == "900" and doc.discount.reference == "BC1"
    # loyalty 4.16 net, VAT round(4.16 x 20 %) = 0.83: the BREAD line posts at 10.82 + 2.16
    assert doc.discount.amount == D("-4.16") and doc.discount.gross == D("4.99")
    assert [(t.basis, t.tax_amount) for t in doc.discount.taxes] == [(D("-4.16"), D("-0.83"))]
    bread = doc.lines[3]
    assert (bread.rate, bread.amount, bread.tax_amount) == (D("10.82"), D("10.82"), D("2.16"))
    assert doc.tax_by_rate() == {D("20"): D("1.83")}  # the POS VAT per rate, to the penny
    assert (doc.net_total, doc.tax_total, doc.gross_total) == (D("9.13"), D("1.83"), D("10.96"))
    assert all(ln.amount + ln.tax_amount in (D("0.99"), D("12.98")) for ln in doc.lines)  # shelf gross kept


def test_net_priced_multi_rate_receipt_with_a_custom_crm_cheque_and_a_promotion():
    # Net till: BREAD 2 x 10.00 @20 % with a custom-CRM bonus cheque of 1.25 a unit (paid 8.75);
    # MILK 1 x 4.00 @5 % with a CRM promotion of 1.00 (a member price: stays in the line).
    rows = [
        ("BREAD", 2, 20, "17.50", "3.50", _bonus("CC7", "10.00", "1.25", "customcrm-bonuscheckid")),
        ("MILK", 1, 5, "4.00", "0.20", _bonus("PROMO1", "5.00", "1.00", "crm-promotionid")),
    ]
    doc = build_document(_receipt(rows, "21.50", "3.70", "25.20"), MAPPINGS)
    assert [(t.vat_rate, t.basis, t.tax_amount) for t in doc.discount.taxes] == [
        (D("20"), D("-2.50"), D("-0.50"))
    ]
    assert [(ln.rate, ln.amount, ln.tax_amount) for ln in doc.lines] == [
        (D("10.00"), D("20.00"), D("4.00")),  # the cheque's line at its original price
        (D("4.00"), D("4.00"), D("0.20")),  # the promotion stays in the price paid
    ]
    assert doc.tax_by_rate() == {D("20"): D("3.50"), D("5"): D("0.20")}
    assert doc.gross_total == D("25.20") and doc.tax_variance_by_rate == {
        D("20"): D("0.00"),
        D("5"): D("0.00"),
    }


def test_the_invented_receipt_level_keys_are_not_read():
    # A receipt carrying the keys an earlier version invented: no till writes them, Sitoo defines no
    # amount key, so they change nothing (reading them would take a discount the rows already carry).
    ad = {"loyalty-moneydiscount": "6.00", "loyalty-moneydiscount-net-20": "5.00", "crm-bonuscheckid": "BC1"}
    doc = build_document(
        _receipt([("BREAD", 1, 20, "11.67", "2.33")], "11.67", "2.33", "14.00", **ad), MAPPINGS
    )
    assert doc.discount is None and doc.gross_total == D("14.00")


def test_loyalty_vocabulary_reads_sitoos_row_keys():
    assert loyalty.bonus_cheque({"crm-bonuscheckid": "BC9"}) == "BC9"
    assert loyalty.bonus_cheque({"customcrm-bonuscheckid": "C1"}) == "C1"
    assert loyalty.bonus_cheque({"crm-promotionid": "P1", "crm-bonuscheckid": ""}) is None  # a campaign
    assert loyalty.reference({}, [{}, {"crm-bonuscheckid": "BC9"}, {"crm-bonuscheckid": "BC9"}]) == "BC9"
    assert loyalty.row_loyalty({"crm-bonuscheckid": "B"}, D(-2), D("1.25"), D("10.00"), D(20)) == (
        D("-2.50"),
        D("-0.50"),
    )  # a return gives the cheque back: POS sign


def test_staging_stores_the_bonus_cheques_of_the_rows_incl_vat():
    from include.sandbox.generator import generate_dataset
    from include.sitoo_erp.sitoo.models import parse_order
    from include.sitoo_erp.staging.orders import loyalty_discount

    payload = next(iter(generate_dataset(seed=1, stores=1, days=1, receipts_per_store_day=3).iter_orders()))
    assert loyalty_discount(parse_order(payload)) == D("0.00")
    payload["additionaldata"]["loyalty-moneydiscount"] = "6.00"  # not Sitoo's: ignored
    assert loyalty_discount(parse_order(payload)) == D("0.00")
    row = payload["orderitems"][0]
    unit = D(row["moneynetpriceperunit"])
    row.update(moneyoriginalprice=str(unit + D("2.00")), moneydiscountedprice=str(unit), moneydiscount="2.00")
    row["additionaldata"]["crm-bonuscheckid"] = "BC1"
    net = D("2.00") * row["quantity"]
    assert loyalty_discount(parse_order(payload)) == net + (net * D(row["vatvalue"]) / 100).quantize(
        D("0.01"), ROUND_HALF_UP
    )


def test_a_till_that_rounds_vat_per_unit_is_within_tolerance_counting_units():
    # Sitoo's row total is unit x quantity: 3 x 0.99 in ONE row carries 3 x 0.17 = 0.51 (three
    # roundings), plus 1 x 0.99 (0.17). Receipt gross 3.96 -> VAT round(3.96 / 6) = 0.66, net 3.30:
    # 0.02 off the rows, within 0.005 x (1 + 4 units x 1.2) = 0.029 (2 rows alone would allow 0.017).
    rows = [("JAM", 3, 20, "2.46", "0.51"), ("JAM", 1, 20, "0.82", "0.17")]
    doc = build_document(_receipt(rows, "3.30", "0.66", "3.96"), MAPPINGS)
    assert doc.tax_by_rate() == {D("20"): D("0.66")} and doc.net_total == D("3.30")
    assert vat.tolerance(D(20), 4) == D("0.029") and vat.tolerance(D(20), 2) < D("0.02")
