"""Tax follows the till, whichever way it computes (issue 11 point 1, invariant 4).

The basket maker below is a till written from first principles, not from the code under test: it
prices a basket net or VAT-inclusive, derives VAT per row or once per receipt, applies line
discounts and a cash round-off, and writes the receipt the way Sitoo stores it (rows with net and
VAT, header moneyfinal_net / _vat / roundoff / gross). Every such receipt must post with the ERP's
tax per rate = the till's VAT per rate to the penny, no quarantine; a receipt whose VAT is off by
more than rounding can explain must be rejected naming the order, the field and the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sitoo_erp.posting.documents import DocumentError, Mappings, ReceiptInput, build_document

D = Decimal
CENT = D("0.01")
RATES = (0, 5, 12, 20, 25)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MAPPINGS = Mappings.from_rows(
    store_location=[
        {"store_externalid": "ST001", "location_id": "1", "customer_id": "2", "subsidiary_id": "1"}
    ],
    tender_payment=[{"tender": "Card", "payment_method_id": "2", "is_gift_card": "false"}],
    vat_tax_code=[{"vat_rate": str(r), "tax_code_id": f"4{r}", "tax_type_id": "7"} for r in RATES],
    document_item=[
        {"purpose": "loyalty_discount", "item_id": "900"},
        {"purpose": "cash_rounding", "item_id": "901"},
        {"purpose": "gift_card", "item_id": "902"},
    ],
    sku_item=[{"sku": f"SKU-{i}", "item_id": str(100 + i)} for i in range(20)],
)


def pennies(x: Decimal) -> Decimal:
    """A till rounds money to the penny, half away from zero."""
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Item:
    shelf_cents: int  # shelf price per unit: net or VAT-inclusive, as the till is priced
    qty: int
    rate: int
    discount_pct: int  # campaign discount on the unit price (stays in the line)


@dataclass
class Till:
    """How a store's till computes a receipt."""

    priced: str  # "net" or "gross" (VAT-inclusive shelf prices)
    vat_per: str  # "line" (sum of row VAT) or "receipt" (once per rate on the receipt)
    cash_rounding: bool = False  # round the amount due to 0.05 (cash)

    def ring_up(self, items: list[Item]) -> tuple[dict, list[dict], dict[Decimal, Decimal]]:
        rows, net_by, gross_by, rowvat_by = [], {}, {}, {}
        for i, it in enumerate(items):
            unit = pennies(D(it.shelf_cents) / 100 * (100 - it.discount_pct) / 100)
            r = D(it.rate)
            if self.priced == "net":
                net = unit * it.qty
                vat = pennies(net * r / 100)
            else:
                gross = unit * it.qty
                vat = pennies(gross * r / (100 + r))
                net = gross - vat
            rows.append(
                {
                    "orderitemid": i,
                    "sku": f"SKU-{i}",
                    "productname": f"Item {i}",
                    "quantity": D(it.qty),
                    "vat_rate": r,
                    "net_unit_price": unit if self.priced == "net" else pennies(net / it.qty),
                    "money_net": net,
                    "money_vat": vat,
                    "additionaldata": {},
                }
            )
            net_by[r] = net_by.get(r, D(0)) + net
            rowvat_by[r] = rowvat_by.get(r, D(0)) + vat
            gross_by[r] = gross_by.get(r, D(0)) + net + vat
        if self.vat_per == "line":
            vat_by = dict(rowvat_by)
            money_net = sum(net_by.values(), D(0))
        elif self.priced == "net":  # the net is the price; VAT once per rate from the net
            vat_by = {r: pennies(n * r / 100) for r, n in net_by.items()}
            money_net = sum(net_by.values(), D(0))
        else:  # the gross is the price; VAT once per rate from the gross, net = gross - VAT
            vat_by = {r: pennies(g * r / (100 + r)) for r, g in gross_by.items()}
            money_net = sum(gross_by.values(), D(0)) - sum(vat_by.values(), D(0))
        money_vat = sum(vat_by.values(), D(0))
        due = money_net + money_vat
        roundoff = (
            (due * 20).quantize(D(1), rounding=ROUND_HALF_UP) / 20 - due if self.cash_rounding else D(0)
        )
        header = {
            "orderid": 7001,
            "receipt_id": "R-7001",
            "store_externalid": "ST001",
            "business_date": date(2026, 11, 16),
            "orderdate": datetime(2026, 11, 16, 10, 0, tzinfo=UTC),
            "orderstateid": 10,
            "paymentstateid": 20,
            "money_net": money_net,
            "money_vat": money_vat,
            "money_roundoff": pennies(roundoff),
            "money_gross": due + pennies(roundoff),
            "additionaldata": {},
        }
        return header, rows, {r: v for r, v in vat_by.items() if r}


def as_refund(header: dict, rows: list[dict], till_vat: dict) -> tuple[dict, list[dict], dict]:
    """The same basket taken back: Sitoo negates quantities, row and receipt money; unit prices stay."""
    header = dict(
        header, **{k: -header[k] for k in ("money_net", "money_vat", "money_roundoff", "money_gross")}
    )
    rows = [dict(r, **{k: -r[k] for k in ("quantity", "money_net", "money_vat")}) for r in rows]
    return header, rows, {r: -v for r, v in till_vat.items()}


def _post(header: dict, rows: list[dict]):
    payments = [{"payment_index": 0, "name": "Card", "amount": header["money_gross"]}]
    return build_document(ReceiptInput.from_rows(header, rows, payments), MAPPINGS)


items = st.builds(
    Item,
    shelf_cents=st.integers(1, 20000) | st.sampled_from([99, 199, 333, 1, 5, 49, 2999]),
    qty=st.integers(1, 7),
    rate=st.sampled_from(RATES),
    discount_pct=st.sampled_from([0, 0, 10, 15, 25, 33]),
)
tills = st.builds(
    Till,
    priced=st.sampled_from(["net", "gross"]),
    vat_per=st.sampled_from(["line", "receipt"]),
    cash_rounding=st.booleans(),
)
baskets = st.lists(items, min_size=1, max_size=12)


@SETTINGS
@given(till=tills, basket=baskets, refund=st.booleans())
def test_every_consistent_receipt_posts_with_the_tills_vat_per_rate(
    till: Till, basket: list[Item], refund: bool
):
    header, rows, till_vat = till.ring_up(basket)
    if refund:
        header, rows, till_vat = as_refund(header, rows, till_vat)
    doc = _post(header, rows)  # no DocumentError: nothing quarantined
    s = D(doc.sign)  # document sign: a refund document carries positive amounts

    assert doc.is_return == (header["money_gross"] < 0)  # a refund rounded to 0.00 cash is no return
    assert doc.tax_total == s * header["money_vat"]
    assert doc.gross_total == s * header["money_gross"]
    assert doc.net_total == s * (header["money_net"] + header["money_roundoff"])
    posted = {r: s * v for r, v in doc.tax_by_rate().items() if r}
    assert set(posted) == set(till_vat)
    # The ERP's tax per rate is the till's VAT per rate to the penny. One case is not observable on
    # a Sitoo receipt (it records no VAT per rate): a per-receipt till on a multi-rate basket whose
    # per-rate values add up to exactly the rows' VAT; there only the total is the till's, and each
    # rate is the rows' VAT (within the rounding tolerance of the till's own figure).
    row_vat: dict[Decimal, Decimal] = {}
    for row in rows:
        row_vat[row["vat_rate"]] = row_vat.get(row["vat_rate"], D(0)) + row["money_vat"]
    observable = till.vat_per == "line" or len(till_vat) <= 1 or sum(row_vat.values()) != header["money_vat"]
    if observable:
        assert posted == till_vat
    else:
        assert posted == {r: v for r, v in row_vat.items() if r}
        assert all(abs(posted[r] - till_vat[r]) <= D("0.01") * len(rows) for r in till_vat)
    # The difference to the ERP's own per-line computation is the recorded variance.
    for r, pos in doc.pos_tax_by_rate.items():  # document sign on both sides
        erp = sum((pennies(ln.amount * r / 100) for ln in doc.lines if ln.vat_rate == r), D(0))
        assert doc.tax_variance_by_rate[r] == pos - erp
    # A VAT-inclusive till's lines keep their shelf gross; a net-priced till's lines their net.
    for ln, row in zip(doc.lines, rows, strict=False):
        if till.priced == "gross" and till.vat_per == "receipt":
            assert ln.amount + ln.tax_amount == s * (row["money_net"] + row["money_vat"])
        else:
            assert ln.amount == s * row["money_net"]


def _units(row: dict) -> int:
    """Roundings a row's VAT may carry: its units (``posting/vat.py``: a till may round per unit)."""
    return max(1, math.ceil(abs(row["quantity"])))


@SETTINGS
@given(till=tills, basket=baskets, data=st.data())
def test_vat_off_by_more_than_rounding_explains_is_rejected(till: Till, basket: list[Item], data):
    header, rows, till_vat = till.ring_up(basket)
    taxable_rows = [r for r in rows if r["vat_rate"]]
    # What rounding can explain on the whole receipt: half a penny per unit (a till may round VAT per
    # unit; x 1.25 at most for a VAT-inclusive unit) and half a penny per rate for the receipt's own.
    explainable = sum(D("0.00625") * _units(r) for r in taxable_rows) + D("0.005") * len(till_vat)
    off = (explainable / CENT).to_integral_value(rounding="ROUND_CEILING") * CENT + CENT
    off *= data.draw(st.sampled_from([1, -1]))
    header["money_vat"] += off  # net + VAT + round-off = gross still holds: only the VAT is wrong
    header["money_gross"] += off
    with pytest.raises(DocumentError) as err:
        _post(header, rows)
    assert err.value.orderid == 7001 and "order 7001" in str(err.value)
    assert err.value.field in ("money_vat", "money_net")
    assert err.value.rule in ("tax.vat_per_rate", "tax.receipt_vat_by_rate", "tax.receipt_net")


@SETTINGS
@given(basket=baskets.filter(lambda b: any(i.rate for i in b)), data=st.data())
def test_a_row_whose_vat_does_not_match_its_price_is_rejected(basket: list[Item], data):
    till = Till(priced=data.draw(st.sampled_from(["net", "gross"])), vat_per="line")
    header, rows, _ = till.ring_up(basket)
    row = data.draw(st.sampled_from([r for r in rows if r["vat_rate"]]))
    # More than rounding can explain on the whole receipt (half a penny per unit, x 1.25 at most for a
    # VAT-inclusive unit, and half a penny per rate).
    rates = {r["vat_rate"] for r in rows if r["vat_rate"]}
    explainable = D("0.00625") * sum(_units(r) for r in rows if r["vat_rate"]) + D("0.005") * len(rates)
    off = (explainable / CENT).to_integral_value(rounding="ROUND_CEILING") * CENT + CENT
    # The row's VAT is wrong and the header carries the till's honest total: the rows do not add up.
    row["money_vat"] += off
    with pytest.raises(DocumentError) as err:
        _post(header, rows)
    assert err.value.field in ("money_vat", "money_net") and err.value.rule.startswith("tax.")
