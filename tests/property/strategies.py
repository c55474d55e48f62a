"""Hypothesis strategies for hostile and malformed Sitoo order payloads.

A payload starts as a well-formed POS receipt (the shape the Sitoo REST v2 API returns) and is then
bent by zero or more *mutations*: a field dropped or given the wrong type, money with commas or three
decimals, huge or negative quantities, zero-line receipts, a negative sale, clock-skewed dates, extra
fields, and hostile text (SQL, HTML, NUL and other control characters, RTL marks, emoji) in every
free-text field (receipt id, store id, SKU, product name, tender name, additionaldata).
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

SQL_INJECTIONS = (
    "'); drop table sitoo_erp.sitoo_order; --",
    "x' or '1'='1",
    "1; delete from sitoo_erp.exception where true; --",
    "$$; truncate sitoo_erp.order_state; $$",
    "\\'; select pg_sleep(5); --",
    "%s %(orderid)s {batch} :orderid",
)
HTML_INJECTIONS = (
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">click</a>',
    "</td></tr></table><h1>owned</h1>",
    "{{ 7*7 }}{% raw %}",
    "&lt;not-a-tag&gt; &amp; &#60;script&#62;",
)
CONTROL = ("\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\r\n", "\t", "\u2028", "\u202e")
UNICODE = ("Ærøskøbing", "東京店", "café 🧾", "\u200bzero\u200dwidth", "ﬁ ligature", "שלום", "Ω≈ç√")

HOSTILE_FRAGMENTS = SQL_INJECTIONS + HTML_INJECTIONS + CONTROL + UNICODE

#: Free-text fields a POS user (or a compromised till) controls.
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_FRAGMENTS),
    st.lists(st.sampled_from(HOSTILE_FRAGMENTS), min_size=1, max_size=3).map("".join),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
)

BAD_MONEY = (
    "12,50",
    "1.234",
    "1,234.50",
    "12.5.0",
    " 12.50",
    "12.50 ",
    "12.50\n",
    "",
    "-",
    "NaN",
    "Infinity",
    "1e3",
    "0x10",
    "\u0661\u0662.\u0665\u0660",  # Arabic-Indic digits
    "9999999999999.00",  # 13 integer digits: beyond the ledger's numeric(14, 2)
    "£12.50",
)
WRONG_TYPES = (None, True, 1.5, [], {}, [1, 2], {"a": 1}, "text", -1, 2**70)

HEADER_REQUIRED = (
    "orderid",
    "orderdate",
    "orderstateid",
    "paymentstateid",
    "ordertypeid",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneytotal_gross_all",
)
HEADER_MONEY = ("moneyfinal_net", "moneyfinal_vat", "moneytotal_gross_roundoff", "moneytotal_gross_all")
ITEM_REQUIRED = ("orderitemid", "quantity", "vatvalue", "moneyitemtotal_net", "moneyitemtotal_vat")
ITEM_MONEY = ("moneyitemtotal_net", "moneyitemtotal_vat", "moneynetpriceperunit", "moneydiscount")
ITEM_INTS = ("orderitemid", "orderitemtype", "productid", "quantity")
HEADER_INTS = ("orderid", "eshopid", "warehouseid", "creditorderid")


def _m(value: Decimal) -> str:
    return f"{value:.2f}"


@st.composite
def valid_orders(draw: st.DrawFn, orderid: int | None = None) -> dict[str, Any]:
    """A well-formed, finalised POS sale (totals consistent, one payment)."""
    oid = orderid if orderid is not None else draw(st.integers(min_value=1, max_value=10**9))
    n_items = draw(st.integers(min_value=1, max_value=3))
    items = []
    net_total = vat_total = Decimal("0.00")
    for i in range(n_items):
        qty = draw(st.integers(min_value=1, max_value=5))
        unit = Decimal(draw(st.integers(min_value=1, max_value=20_000))) / 100
        rate = draw(st.sampled_from((Decimal(0), Decimal(5), Decimal(20))))
        net = (unit * qty).quantize(Decimal("0.01"))
        vat = (net * rate / 100).quantize(Decimal("0.01"))
        net_total += net
        vat_total += vat
        items.append(
            {
                "orderitemid": i,
                "orderitemtype": 10,
                "productid": 1000 + i,
                "sku": f"SKU-{draw(st.integers(min_value=0, max_value=999)):06d}",
                "productname": f"Product {i}",
                "quantity": qty,
                "vatvalue": int(rate),
                "moneynetpriceperunit": _m(unit),
                "moneyitemtotal_net": _m(net),
                "moneyitemtotal_vat": _m(vat),
                "moneydiscount": "0.00",
                "additionaldata": {"product-group-name": f"VAT {rate}%"},
            }
        )
    gross = net_total + vat_total
    return {
        "orderid": oid,
        "eshopid": 1,
        "creditorderid": None,
        "registerid": "{51700001-0000-4000-8000-000000000001}",
        "warehouseid": 101,
        "orderdate": draw(st.integers(min_value=1_700_000_000, max_value=1_900_000_000)),
        "orderstateid": 10,
        "paymentstateid": 20,
        "ordertypeid": 10,
        "currencycode": "GBP",
        "moneyfinal_net": _m(net_total),
        "moneyfinal_vat": _m(vat_total),
        "moneytotal_gross_roundoff": "0.00",
        "moneytotal_gross_all": _m(gross),
        "additionaldata": {
            "pos-receiptid": f"R{oid:012d}",
            "pos-timezone": "Europe/London",
            "store-externalid": "ST001",
        },
        "orderitems": items,
        "payments": [
            {"name": "Card", "moneyamount": _m(gross), "additionaldata": {"payment-method": "card"}}
        ],
    }


# ---------------------------------------------------------------------------------------- mutations
def _item(draw: st.DrawFn, order: dict) -> dict | None:
    items = order.get("orderitems")
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        return None
    return items[draw(st.integers(min_value=0, max_value=len(items) - 1))]


def _drop_field(draw: st.DrawFn, order: dict) -> None:
    if draw(st.booleans()) and (item := _item(draw, order)) is not None:
        item.pop(draw(st.sampled_from(ITEM_REQUIRED)), None)
    else:
        order.pop(draw(st.sampled_from(HEADER_REQUIRED)), None)


def _wrong_type(draw: st.DrawFn, order: dict) -> None:
    value = draw(st.sampled_from(WRONG_TYPES))
    if draw(st.booleans()) and (item := _item(draw, order)) is not None:
        item[draw(st.sampled_from((*ITEM_REQUIRED, "sku", "productname", "additionaldata")))] = value
    else:
        order[draw(st.sampled_from((*HEADER_REQUIRED, "additionaldata", "orderitems", "payments")))] = value


def _bad_money(draw: st.DrawFn, order: dict) -> None:
    value = draw(st.sampled_from(BAD_MONEY))
    where = draw(st.sampled_from(("header", "item", "payment")))
    if where == "item" and (item := _item(draw, order)) is not None:
        item[draw(st.sampled_from(ITEM_MONEY))] = value
    elif where == "payment" and isinstance(order.get("payments"), list) and order["payments"]:
        if isinstance(order["payments"][0], dict):
            order["payments"][0]["moneyamount"] = value
    else:
        order[draw(st.sampled_from(HEADER_MONEY))] = value


def _huge_int(draw: st.DrawFn, order: dict) -> None:
    value = draw(
        st.one_of(
            st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
            st.integers(min_value=2**63 - 2, max_value=2**63 + 2),
            st.integers(min_value=10**9, max_value=10**30),
            st.integers(min_value=-(10**30), max_value=-1),
        )
    )
    if draw(st.booleans()) and (item := _item(draw, order)) is not None:
        item[draw(st.sampled_from(ITEM_INTS))] = value
    else:
        order[draw(st.sampled_from(HEADER_INTS))] = value


def _zero_lines(draw: st.DrawFn, order: dict) -> None:
    order["orderitems"] = []
    if draw(st.booleans()):
        order["payments"] = []


def _negative_sale(draw: st.DrawFn, order: dict) -> None:
    """Every amount negated, no link to an original sale: a refund without a receipt."""

    def neg(text: Any) -> Any:
        return f"-{text}" if isinstance(text, str) and text[:1].isdigit() and text.strip("0.") else text

    for key in HEADER_MONEY:
        order[key] = neg(order.get(key))
    for item in _listed(order.get("orderitems")):
        if isinstance(item, dict):
            item["quantity"] = -abs(item["quantity"]) if isinstance(item.get("quantity"), int) else -1
            for key in ITEM_MONEY:
                if key != "moneynetpriceperunit":
                    item[key] = neg(item.get(key))
    for pay in _listed(order.get("payments")):
        if isinstance(pay, dict):
            pay["moneyamount"] = neg(pay.get("moneyamount"))


def _listed(value: Any) -> list:
    """A field an earlier mutation may have turned into a non-list (``True``, a number): nothing to walk."""
    return value if isinstance(value, list) else []


def _clock_skew(draw: st.DrawFn, order: dict) -> None:
    order["orderdate"] = draw(
        st.one_of(
            st.sampled_from((0, 1, -1, 32_503_679_999, 32_503_680_000, 2**62, 86_400)),
            st.integers(min_value=-(10**12), max_value=10**13),
            st.sampled_from(("2026-11-16T10:00:00Z", 1.7e9, "1794840041")),
        )
    )


def _extra_fields(draw: st.DrawFn, order: dict) -> None:
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    )
    target = order
    if draw(st.booleans()) and (item := _item(draw, order)) is not None:
        target = item
    target[draw(st.text(min_size=1, max_size=12))] = draw(json_value)


def _hostile_text(draw: st.DrawFn, order: dict) -> None:
    text = draw(hostile_text)
    where = draw(st.sampled_from(("receipt", "store", "sku", "productname", "tender", "addkey", "register")))
    ad = order.get("additionaldata") if isinstance(order.get("additionaldata"), dict) else None
    if where == "receipt" and ad is not None:
        ad["pos-receiptid"] = text
    elif where == "store" and ad is not None:
        ad["store-externalid"] = text
    elif where in ("sku", "productname") and (item := _item(draw, order)) is not None:
        item[where] = text
    elif where == "tender" and isinstance(order.get("payments"), list) and order["payments"]:
        if isinstance(order["payments"][0], dict):
            order["payments"][0]["name"] = text
    elif where == "addkey" and ad is not None:
        ad[text] = text
    else:
        order["registerid"] = text


def _duplicate_item_ids(draw: st.DrawFn, order: dict) -> None:
    items = order.get("orderitems")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        items.append(copy.deepcopy(items[0]))


MUTATIONS = (
    _drop_field,
    _wrong_type,
    _bad_money,
    _huge_int,
    _zero_lines,
    _negative_sale,
    _clock_skew,
    _extra_fields,
    _hostile_text,
    _hostile_text,
    _duplicate_item_ids,
)


@st.composite
def hostile_orders(draw: st.DrawFn, orderid: int | None = None, max_mutations: int = 3) -> dict[str, Any]:
    order = draw(valid_orders(orderid=orderid))
    for mutate in draw(st.lists(st.sampled_from(MUTATIONS), max_size=max_mutations)):
        mutate(draw, order)
    return order


@st.composite
def hostile_payloads(draw: st.DrawFn) -> Any:
    """Mostly orders; sometimes not even an object (a list, a string, null)."""
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        return draw(st.sampled_from((None, [], "order", 42, [{"orderid": 1}])))
    return draw(hostile_orders())


@st.composite
def hostile_batches(draw: st.DrawFn, max_size: int = 8) -> list[Any]:
    """A page of payloads: distinct orderids mostly, with replays (same orderid) and shared receipt ids."""
    ids = draw(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=max_size))
    batch: list[Any] = []
    for oid in ids:
        if draw(st.integers(min_value=0, max_value=14)) == 0:
            batch.append(draw(hostile_payloads()))
        else:
            batch.append(draw(hostile_orders(orderid=oid)))
    if len(batch) > 1 and draw(st.booleans()):  # two different orders sharing one receipt id
        a, b = batch[0], batch[-1]
        if all(isinstance(x, dict) and isinstance(x.get("additionaldata"), dict) for x in (a, b)):
            b["additionaldata"]["pos-receiptid"] = a["additionaldata"].get("pos-receiptid")
            b["additionaldata"]["store-externalid"] = a["additionaldata"].get("store-externalid")
    return batch


def fixed_order(orderid: int, receipt: str | None = None, store: str = "ST001") -> dict[str, Any]:
    """A plain, well-formed finalised sale (no randomness): 2 x 10.00 net at 20 % VAT, paid by card."""
    return {
        "orderid": orderid,
        "eshopid": 1,
        "registerid": "{51700001-0000-4000-8000-000000000001}",
        "warehouseid": 101,
        "orderdate": 1_794_840_041,
        "orderstateid": 10,
        "paymentstateid": 20,
        "ordertypeid": 10,
        "currencycode": "GBP",
        "moneyfinal_net": "20.00",
        "moneyfinal_vat": "4.00",
        "moneytotal_gross_roundoff": "0.00",
        "moneytotal_gross_all": "24.00",
        "additionaldata": {
            "pos-receiptid": receipt or f"R{orderid:012d}",
            "pos-timezone": "Europe/London",
            "store-externalid": store,
        },
        "orderitems": [
            {
                "orderitemid": 0,
                "orderitemtype": 10,
                "productid": 1001,
                "sku": "SKU-000001",
                "productname": "Product 1",
                "quantity": 2,
                "vatvalue": 20,
                "moneynetpriceperunit": "10.00",
                "moneyitemtotal_net": "20.00",
                "moneyitemtotal_vat": "4.00",
            }
        ],
        "payments": [{"name": "Card", "moneyamount": "24.00", "additionaldata": {"payment-method": "card"}}],
    }
