"""Parsing hostile payloads: a typed order or a ``SitooPayloadError`` naming order, field and rule.

Never any other exception, never a silent coercion of money or of a value the ledger cannot store.
"""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sitoo_erp.sitoo.models import SitooOrder, SitooPayloadError, parse_order
from tests.property.strategies import BAD_MONEY, hostile_orders, hostile_payloads, valid_orders

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_MONEY = re.compile(r"^-?\d{1,12}\.\d{2}$")


def _record(payload: object) -> str:
    oid = payload.get("orderid") if isinstance(payload, dict) else None
    return f"order {oid if oid is not None else '?'}"


@SETTINGS
@given(hostile_payloads())
def test_parse_returns_an_order_or_a_named_error(payload):
    try:
        order = parse_order(payload)
    except SitooPayloadError as err:
        assert err.record == _record(payload)
        assert err.field and err.rule and err.detail
        text = str(err)
        assert text.startswith(f"{err.record}: field '{err.field}' ")
        assert f"(rule: {err.rule})" in text
        return
    assert isinstance(order, SitooOrder)
    # What parsed must fit the ledger's columns exactly (no silent rounding or overflow later).
    for value in (order.moneyfinal_net, order.moneyfinal_vat, order.moneytotal_gross_all):
        assert _MONEY.match(f"{value:.2f}") and value == value.quantize(Decimal("0.01"))
    for item in order.orderitems:
        assert abs(item.quantity) < 10**11  # numeric(14, 3)
        assert 0 <= item.orderitemid < 2**31  # integer
        assert item.vatvalue == item.vatvalue.quantize(Decimal("0.001"))  # numeric(7, 3)
    assert 0 < order.orderid < 2**63
    ids = [i.orderitemid for i in order.orderitems]
    assert len(ids) == len(set(ids)), "duplicate orderitemid must not parse (primary key of the row table)"


@SETTINGS
@given(
    valid_orders(), st.sampled_from(BAD_MONEY), st.sampled_from(("moneytotal_gross_all", "moneyfinal_vat"))
)
def test_bad_money_is_never_coerced(order, bad, key):
    """'12,50' is not 12.50 nor 1250, '1.234' is not 1.23: money that is not a 2-decimal string is an error."""
    order = dict(order, **{key: bad})
    try:
        parse_order(order)
    except SitooPayloadError as err:
        assert err.field == key and err.record == f"order {order['orderid']}"
    else:
        raise AssertionError(f"{bad!r} parsed as money")


@SETTINGS
@given(hostile_orders(max_mutations=1), st.integers(min_value=-(2**80), max_value=2**80))
def test_out_of_range_integers_are_named_errors_not_overflows(order, big):
    order = dict(order, orderid=order.get("orderid"))
    for key in ("eshopid", "warehouseid", "creditorderid"):
        candidate = dict(order, **{key: big})
        try:
            parsed = parse_order(candidate)
        except SitooPayloadError as err:
            assert err.field in (key, *[f for f in (err.field,) if f])  # some other earlier problem is fine
            continue
        value = getattr(parsed, key)
        limit = 2**63 if key == "creditorderid" else 2**31
        assert -limit <= value < limit, (key, value)
