"""The seeded Sitoo data generator: determinism, invariants, scenario coverage, stock, Z-reports."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from include.sandbox.catalogue import GIFT_CARD_SKU, UNMAPPED_TENDER
from include.sandbox.generator import (
    ORDERID_BASE,
    generate_dataset,
    is_finalised,
    receipt_vat_by_rate,
    row_vat_by_rate,
)

D = Decimal


@pytest.fixture(scope="module")
def ds():
    return generate_dataset(seed=42, stores=5, days=7, receipts_per_store_day=40)


@pytest.fixture(scope="module")
def orders(ds):
    return list(ds.iter_orders())


def _is_money(v) -> bool:
    return isinstance(v, str) and v.lstrip("-").count(".") == 1 and len(v.split(".")[1]) == 2 and v != "-0.00"


def test_same_seed_same_payloads_other_seed_differs():
    a = generate_dataset(seed=7, stores=2, days=2, receipts_per_store_day=15)
    b = generate_dataset(seed=7, stores=2, days=2, receipts_per_store_day=15)
    c = generate_dataset(seed=8, stores=2, days=2, receipts_per_store_day=15)
    dump = lambda d: json.dumps([d.order(ORDERID_BASE + i) for i in range(len(d))], sort_keys=True)  # noqa: E731
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)
    assert json.dumps(a.z_reports()) == json.dumps(b.z_reports())


def test_money_totals_and_payments_add_up_on_every_order(orders):
    for o in orders:
        pay = sum(D(p["moneyamount"]) for p in o["payments"])
        gross = D(o["moneytotal_gross_all"])
        assert (
            pay
            == gross
            == D(o["moneyfinal_net"]) + D(o["moneyfinal_vat"]) + D(o["moneytotal_gross_roundoff"])
        )
        per_rate = receipt_vat_by_rate(o)
        assert sum(n for n, _ in per_rate.values()) == D(o["moneyfinal_net"])
        assert sum(v for _, v in per_rate.values()) == D(o["moneyfinal_vat"])
        money_fields = [k for k in o if k.startswith("money")]
        assert all(_is_money(o[k]) for k in money_fields), o["orderid"]
        for r in o["orderitems"]:
            assert all(_is_money(r[k]) for k in r if k.startswith("money")), o["orderid"]
            assert r["decimalquantitytotal"] == f"{r['quantity']}.000"
            assert D(r["moneyitemtotal_net"]) == D(r["moneynetpriceperunit"]) * r["quantity"]
            assert D(r["moneyoriginalprice"]) - D(r["moneydiscountedprice"]) == D(r["moneydiscount"])
        assert o["currencycode"] == "GBP" and isinstance(o["orderdate"], int)
        ad = o["additionaldata"]
        assert {"pos-receiptid", "pos-timezone", "store-externalid", "store-name"} <= set(ad)


def test_returns_and_exchanges_link_to_existing_earlier_sales(ds, orders):
    by_id = {o["orderid"]: o for o in orders}
    refunds = [o for o in orders if o["creditorderid"]]
    assert refunds
    for r in refunds:
        sale = by_id[r["creditorderid"]]
        assert sale["orderid"] < r["orderid"] and is_finalised(sale)
        assert r["additionaldata"]["pos-originalsales-orderid"] == str(sale["orderid"])
        assert D(r["moneytotal_gross_all"]) < 0
        sale_rows = {row["orderitemid"]: row for row in sale["orderitems"]}
        for row in r["orderitems"]:
            orig = sale_rows[int(row["additionaldata"]["pos-originalsales-orderitemid"])]
            assert orig["sku"] == row["sku"] and 0 < -row["quantity"] <= orig["quantity"]
        assert all(D(p["moneyamount"]) <= 0 for p in r["payments"])
    exch = [o for o in orders if "pos-refundsales-orderid" in o["additionaldata"]]
    assert exch
    for r in exch:
        sale = by_id[int(r["additionaldata"]["pos-refundsales-orderid"])]
        assert sale["additionaldata"]["pos-refund-orderid"] == str(r["orderid"])
        assert sale["additionaldata"]["pos-refund-receiptid"] == r["additionaldata"]["pos-receiptid"]
        v_ref = [p for p in r["payments"] if p["additionaldata"].get("virtual-payment") == "true"]
        v_sale = [p for p in sale["payments"] if p["additionaldata"].get("virtual-payment") == "true"]
        assert (
            D(v_ref[0]["moneyamount"]) == -D(v_sale[0]["moneyamount"]) > 0 or D(v_sale[0]["moneyamount"]) > 0
        )


def test_dataset_contains_every_scenario_kind(ds, orders):
    exp = ds.expected
    for key in (
        "kind_sale",
        "kind_return",
        "kind_exchange_refund",
        "kind_open",
        "kind_parked",
        "kind_booking",
        "kind_cancelled",
        "kind_abandoned",
        "offline",
        "sales_unknown_sku",
        "sales_penny_rounding",
        "sales_loyalty",
        "sales_campaign",
        "sales_giftcard_sold",
        "sales_cash_roundoff",
        "sales_split_tender",
        "sales_giftcard_redeemed",
        "sales_foreign_tender",
    ):
        assert exp[key] > 0, key
    states = Counter((o["orderstateid"], o["paymentstateid"], o["ordertypeid"]) for o in orders)
    assert states[(0, 0, 110)] == exp["kind_parked"] and states[(0, 15, 100)] == exp["kind_booking"]
    assert states[(20, 30, 10)] == exp["kind_cancelled"] and states[(-1, 0, 10)] == exp["kind_abandoned"]
    assert states[(0, 10, 10)] == exp["kind_open"]
    assert sum(is_finalised(o) for o in orders) == exp["finalised"]
    sales = [ds.order(r["orderid"]) for r in ds if r["kind"] == 0]
    unknown = {p.sku for p in ds.catalogue.products if not p.in_erp}
    assert sum(any(r["sku"] in unknown for r in o["orderitems"]) for o in sales) == exp["sales_unknown_sku"]
    penny = [
        o
        for o in sales
        if any(
            row_vat_by_rate(o)[v] != vat
            for v, (_, vat) in receipt_vat_by_rate(o).items()
            if "crm-bonuscheckid" not in o["additionaldata"]
        )
    ]
    assert len(penny) == exp["sales_penny_rounding"]
    loyalty = [o for o in sales if "crm-bonuscheckid" in o["additionaldata"]]
    assert len(loyalty) == exp["sales_loyalty"]
    for o in loyalty:
        ad = o["additionaldata"]
        rows_vat, rates = row_vat_by_rate(o), receipt_vat_by_rate(o)
        parts = D(0)
        for v in rates:
            lvat = D(ad.get(f"loyalty-moneydiscount-vat-{v}", "0"))
            parts += D(ad.get(f"loyalty-moneydiscount-net-{v}", "0")) + lvat
            assert rows_vat[v] - lvat == rates[v][1]
        assert parts == D(ad["loyalty-moneydiscount"]) > 0
    cash = [o for o in sales if [p["name"] for p in o["payments"]] == ["Cash"]]
    assert len(cash) == exp["sales_cash_roundoff"]
    assert all(
        D(o["moneytotal_gross_roundoff"]) != 0 and D(o["moneytotal_gross_all"]) % D("0.05") == 0 for o in cash
    )
    assert sum(o["payments"][0]["name"] == UNMAPPED_TENDER for o in sales) == exp["sales_foreign_tender"]
    assert (
        sum([p["name"] for p in o["payments"]] == ["Card", "Cash"] for o in sales)
        == exp["sales_split_tender"]
    )
    assert (
        sum(any(p["name"] == "Gift Card" for p in o["payments"]) for o in sales)
        == exp["sales_giftcard_redeemed"]
    )
    gc_rows = [r for o in sales for r in o["orderitems"] if r["sku"] == GIFT_CARD_SKU]
    assert len(gc_rows) == exp["sales_giftcard_sold"]
    assert all(r["vatvalue"] == 0 and r["additionaldata"]["giftcard-cardnumber"] for r in gc_rows)
    campaign = [r for o in sales for r in o["orderitems"] if r["vouchercode"]]
    assert campaign and all(D(r["moneydiscount"]) > 0 for r in campaign)


def test_orderids_follow_arrival_so_offline_receipts_get_higher_ids(ds):
    rows = list(ds)
    assert [r["dateadded"] for r in rows] == sorted(r["dateadded"] for r in rows)
    offline = [r for r in rows if r["dateadded"] - r["orderdate"] > 3600]
    assert offline
    late = offline[0]
    assert any(r["orderid"] < late["orderid"] and r["orderdate"] > late["orderdate"] for r in rows)


def test_small_dataset_and_planted_scenarios():
    ds = generate_dataset(seed=1, stores=1, days=1, receipts_per_store_day=2)
    assert 2 <= len(ds) <= 3
    parked = ds.add_order(store=1, kind="parked", orderdate=ds.end_ts + 60, dateadded=ds.end_ts + 65)
    assert ds.order(parked)["ordertypeid"] == 110
    closed = ds.update_order(parked, orderstateid=10, paymentstateid=20, ordertypeid=10)
    assert is_finalised(closed) and closed["orderid"] == parked
    assert ds.row(parked)["ordertypeid"] == 10
    raw = {**closed, "additionaldata": {**closed["additionaldata"], "note": "planted"}}
    rid = ds.add_order(store=1, payload=raw)
    assert ds.order(rid)["additionaldata"]["note"] == "planted" and rid == parked + 1


def test_stock_levels_are_initial_plus_transactions(ds, orders):
    txs = ds.warehouse_transactions()
    types = Counter(t["transactiontype"] for t in txs)
    assert {10, 20, 30, 40, 50} <= set(types)
    assert [t["warehousetransactionid"] for t in txs] == list(range(1, len(txs) + 1))
    assert [t["datecreated"] for t in txs] == sorted(t["datecreated"] for t in txs)
    sales_tx = {t["orderdeliveryid"] for t in txs if t["transactiontype"] in (30, 40)}
    fin_with_goods = [
        o for o in orders if is_finalised(o) and any(r["sku"] != GIFT_CARD_SKU for r in o["orderitems"])
    ]
    assert sales_tx == {o["orderid"] * 10 + 1 for o in fin_with_goods}
    wid, store = 101, 1
    delta: Counter[str] = Counter()
    for t in txs:
        if t["warehouseid"] == wid:
            for it in t["items"]:
                delta[it["sku"]] += int(D(it["decimalquantity"]))
    for item in ds.warehouse_items(wid):
        expect = ds.initial_on_hand(store, item["sku"]) + delta[item["sku"]]
        assert D(item["decimaltotal"]) == expect, item["sku"]
    assert ds.initial_on_hand("ST001", "SKU-000001") == ds.initial_on_hand(1, "SKU-000001")


def test_z_reports_equal_the_receipts_of_their_day(ds, orders):
    zs = ds.z_reports()
    assert len(zs) == 5 * 7
    assert [z["dateadded"] for z in zs] == sorted(z["dateadded"] for z in zs)
    store_by_ext = {s.externalid: s.storeid for s in ds.catalogue.stores}
    for z in zs:
        lo, hi = ds.day_bounds(date.fromisoformat(z["businessday"]))
        day_orders = [
            o
            for o in orders
            if is_finalised(o)
            and lo <= o["orderdate"] < hi
            and o["additionaldata"]["store-externalid"] == z["store_id"]
        ]
        assert store_by_ext[z["store_id"]]
        assert z["numreceipts"] == len(day_orders) > 0
        assert D(z["moneysummarytotal"]) == sum(D(o["moneytotal_gross_all"]) for o in day_orders)
        assert D(z["moneysummaryroundoff"]) == sum(D(o["moneytotal_gross_roundoff"]) for o in day_orders)
        vat = sum(D(g["moneytotalvat"]) for g in z["vatgroupssales"]) - sum(
            D(g["moneytotalvat"]) for g in z["vatgroupsrefund"]
        )
        assert vat == sum(D(o["moneyfinal_vat"]) for o in day_orders)
        pays = sum(D(p["moneytotal"]) for p in z["paymentssales"]) - sum(
            D(p["moneytotal"]) for p in z["paymentsrefund"]
        )
        assert pays == D(z["moneysummarytotal"])
        assert D(z["moneysalestotal"]) == sum(D(g["moneytotal"]) for g in z["vatgroupssales"])
