"""Sitoo payload parsing: money as Decimal, and errors that name the order, the field and the rule."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from include.sitoo_erp.domain import OrderState
from include.sitoo_erp.sitoo.models import SitooPayloadError, WarehouseItem, parse, parse_order


def order(**overrides):
    base = {
        "orderid": 11512,
        "orderdate": 1463041119,
        "orderstateid": 10,
        "paymentstateid": 20,
        "ordertypeid": 10,
        "moneyfinal_net": "100.00",
        "moneyfinal_vat": "20.00",
        "moneytotal_gross_roundoff": "0.00",
        "moneytotal_gross_all": "120.00",
        "additionaldata": {"pos-receiptid": "R-1", "store-externalid": "ST001"},
        "orderitems": [
            {
                "orderitemid": 0,
                "sku": "SKU-1",
                "quantity": 2,
                "vatvalue": 20,
                "moneyitemtotal_net": "100.00",
                "moneyitemtotal_vat": "20.00",
                "unknownextra": 1,
            }
        ],
        "payments": [{"name": "Card", "moneyamount": "120.00"}],
    }
    base.update(overrides)
    return base


def test_valid_order_parses_money_as_decimal_and_dates_as_utc():
    parsed = parse_order(order())
    assert parsed.moneytotal_gross_all == Decimal("120.00")
    assert isinstance(parsed.orderitems[0].moneyitemtotal_net, Decimal)
    assert parsed.orderdate == datetime.fromtimestamp(1463041119, tz=UTC)
    assert parsed.orderstateid is OrderState.CLOSED
    assert parsed.receipt_id == "R-1" and parsed.store_externalid == "ST001"


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (order(moneyfinal_vat=None), "moneyfinal_vat", "decimal string"),
        ({k: v for k, v in order().items() if k != "orderdate"}, "orderdate", "Field required"),
        (order(moneytotal_gross_all="12,50"), "moneytotal_gross_all", "'12,50'"),
        (order(moneytotal_gross_all="12.505"), "moneytotal_gross_all", "'12.505'"),
        (order(moneytotal_gross_all=12.5), "moneytotal_gross_all", "got float"),
        (order(orderstateid=99), "orderstateid", "10"),
        (
            order(
                orderitems=[
                    {
                        "orderitemid": 0,
                        "quantity": 1,
                        "vatvalue": 20,
                        "moneyitemtotal_net": "abc",
                        "moneyitemtotal_vat": "0.00",
                    }
                ]
            ),
            "orderitems[0].moneyitemtotal_net",
            "'abc'",
        ),
    ],
)
def test_malformed_order_names_order_field_and_rule(payload, field, fragment):
    with pytest.raises(SitooPayloadError) as info:
        parse_order(payload)
    err = info.value
    assert err.record == "order 11512"
    assert err.field == field
    assert err.rule
    assert fragment in str(err)
    assert str(err).startswith(f"order 11512: field '{field}'")


def test_order_without_orderid_is_still_named():
    payload = order()
    del payload["orderid"]
    with pytest.raises(SitooPayloadError, match=r"^order \?: field 'orderid'"):
        parse_order(payload)


def test_stock_quantities_are_three_decimal_strings():
    item = parse(WarehouseItem, {"warehouseid": 101, "sku": "A", "decimaltotal": "-1.000"}, "wi")
    assert item.decimaltotal == Decimal("-1.000")
    with pytest.raises(SitooPayloadError, match="decimaltotal"):
        parse(WarehouseItem, {"warehouseid": 101, "sku": "A", "decimaltotal": "1.0001"}, "wi")
