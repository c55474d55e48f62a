"""The issue's penny cases (3 x 0.99 at 20 %) and the loyalty vocabulary, as explicit unit tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

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
        "loyalty_discount": loyalty.gross_amount(ad),
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
        }
        for i, (sku, q, r, n, v) in enumerate(rows)
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


def test_gross_only_loyalty_on_a_single_rate_receipt_posts_at_document_level():
    # 20.00 gross of goods at 20 % (net 16.67 / VAT 3.33), a bonus cheque of 6.00 gross: 5.00 + 1.00.
    rows = [("BREAD", 1, 20, "16.67", "3.33")]
    doc = build_document(
        _receipt(rows, "11.67", "2.33", "14.00", **{loyalty.GROSS_KEY: "6.00", "crm-bonuscheckid": "BC1"}),
        MAPPINGS,
    )
    assert doc.discount is not None and doc.discount.gross == D("6.00") and doc.discount.reference == "BC1"
    assert doc.discount.amount == D("-5.00") and doc.tax_by_rate() == {D("20"): D("2.33")}
    assert doc.gross_total == D("14.00")


def test_gross_only_loyalty_on_a_multi_rate_receipt_is_a_loyalty_error_not_a_vat_error():
    rows = [("BREAD", 1, 20, "10.00", "2.00"), ("MILK", 1, 5, "10.00", "0.50")]
    with pytest.raises(DocumentError) as err:
        build_document(_receipt(rows, "17.50", "2.00", "19.50", **{loyalty.GROSS_KEY: "3.00"}), MAPPINGS)
    assert err.value.rule == "loyalty.split_by_rate"
    assert err.value.field == "additionaldata.loyalty-moneydiscount-net-R"
    assert "VAT" not in err.value.rule


def test_loyalty_vocabulary_reads_gross_split_and_row_reference():
    ad = {"loyalty-moneydiscount-net-20": "5.00", "loyalty-moneydiscount-vat-20": "1.00"}
    assert loyalty.gross_amount(ad) == D("6.00")  # the split alone carries the gross
    assert loyalty.split_by_rate(ad, D("6.00"), [D("20.000")]) == {D("20"): (D("5.00"), D("1.00"))}
    assert loyalty.reference({}, [{}, {"crm-bonuscheckid": "BC9"}]) == "BC9"  # Sitoo documents it per row


@pytest.mark.parametrize(
    ("extra", "staged"),
    [
        ({"loyalty-moneydiscount": "6.00"}, "6.00"),  # the gross alone
        (
            {"loyalty-moneydiscount-net-20": "5.00", "loyalty-moneydiscount-vat-20": "1.00"},
            "6.00",
        ),  # split alone
        ({"loyalty-discount-amount": "6.00", "crm-bonuscheck-amount": "6.00"}, "0.00"),  # not the vocabulary
    ],
)
def test_staging_reads_the_loyalty_amount_in_the_one_vocabulary(extra, staged):
    from include.sandbox.generator import generate_dataset
    from include.sitoo_erp.sitoo.models import parse_order
    from include.sitoo_erp.staging.orders import loyalty_discount

    payload = next(iter(generate_dataset(seed=1, stores=1, days=1, receipts_per_store_day=3).iter_orders()))
    payload["additionaldata"] = {
        k: v for k, v in payload["additionaldata"].items() if "loyalty" not in k
    } | extra
    assert loyalty_discount(parse_order(payload)) == D(staged)
