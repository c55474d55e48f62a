"""Sitoo's own published API examples through the real SitooHook and models (no patching).

The sandbox's *published* mode serves the example payloads of Sitoo's OpenAPI spec exactly as
published (tests/fixtures/sitoo/README.md): this project's generator had no hand in their shape.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from include.sandbox.sitoo.published import PublishedSitooSandbox
from include.sitoo_erp.http_retry import RetryPolicy
from include.sitoo_erp.sitoo.hook import SitooHook
from include.sitoo_erp.sitoo.models import (
    SitooPayloadError,
    Store,
    Warehouse,
    WarehouseItem,
    WarehouseTransaction,
    ZReport,
    parse,
    parse_order,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sitoo"
FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05)


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def published():
    with PublishedSitooSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def hook(published, monkeypatch):
    port = int(published.url.rsplit(":", 1)[1])
    monkeypatch.setenv(
        "AIRFLOW_CONN_SITOO_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": port,
                "login": published.api_id,
                "password": published.password,
                "extra": {"timeout": 5},
            }
        ),
    )
    h = SitooHook(page_size=2, retry=FAST)
    yield h
    h.close()


def test_every_published_fixture_is_an_unchanged_spec_example():
    manifest = fixture("manifest.json")
    assert manifest["repository"] == "spysystem/sitoo-client" and len(manifest["commit"]) == 40
    assert sorted(manifest["files"]) == sorted(
        p.name for p in FIXTURES.glob("*.json") if p.name != "manifest.json"
    )


def test_published_orders_and_refund_parse_through_the_hook(hook):
    orders = {o.orderid: o for o in hook.iter_orders()}
    assert sorted(orders) == [11512, 11513, 11514]
    sale, refund, web = orders[11513], orders[11512], orders[11514]
    assert sale.moneytotal_gross_all == Decimal("15.00") and sale.payments[0].moneyamount == Decimal("15.00")
    assert sale.registerid == "{3CCB9848-155A-49E1-7CA8-5F7F78FC3067}" and sale.warehouseid == 1
    assert sale.orderitems[0].vatvalue == Decimal(6) and sale.receipt_id is None  # no additionaldata keys
    # The published refund: negative rows and totals, no creditorderid, and a payment that does not
    # match its total (the spec's own slip) -- parsed as sent, for the gate to judge.
    assert refund.moneytotal_gross_all == Decimal("-2990.00") and refund.creditorderid is None
    assert refund.orderitems[0].quantity == -1 and refund.payments[0].moneyamount == Decimal("-2900.00")
    assert refund.additionaldata["refundreasoncode-reasoncode"] == "RC123"
    # The open API/web order: no register, no warehouse, no payments.
    assert web.registerid is None and web.warehouseid is None and web.payments == []
    assert int(web.orderstateid) == 0 and len(web.orderitems) == 3


def test_published_order_shapes_parse_as_served(hook):
    """Each endpoint's own example: the site-level list has no eshopid, the single GET is richer."""
    for payload in fixture("orders_site_list.json")["items"]:
        assert "eshopid" not in payload
        assert parse_order(payload).eshopid is None
    single = parse_order(hook.get_order(11514))
    assert single.orderid == 11514 and single.creditorderid is None


def test_published_warehouse_items_take_their_warehouse_from_the_url(hook):
    """Sitoo's stock rows carry no warehouseid (it is in the URL); the hook supplies it."""
    assert all("warehouseid" not in item for item in fixture("warehouseitems_list.json")["items"])
    items = list(hook.iter_warehouse_items(1))
    assert [(i.warehouseid, i.sku, i.decimaltotal) for i in items] == [
        (1, "10038-3", Decimal("5.000")),
        (1, "10038-4", Decimal("5.000")),
    ]
    assert all(isinstance(i, WarehouseItem) and i.decimalavailable == Decimal("5.000") for i in items)
    assert list(hook.iter_warehouse_items(2)) == []


def test_a_stock_row_naming_another_warehouse_than_its_url_is_a_named_error():
    """Pure rule (no server): a row that contradicts its URL is not silently re-homed."""

    class OnePage(SitooHook):
        def iter_collection(self, endpoint, params=None):
            yield {"sku": "10038-3", "warehouseid": 9, "decimaltotal": "1.000"}

    with pytest.raises(SitooPayloadError) as err:
        list(OnePage().iter_warehouse_items(1))
    assert err.value.record == "warehouse item 1/10038-3" and err.value.field == "warehouseid"


def test_published_warehouse_transactions_parse_through_the_hook(hook):
    txs = list(hook.iter_warehouse_transactions())
    assert [(t.warehousetransactionid, t.transactiontype) for t in txs] == [
        (14, 40),
        (15, 30),
        (16, 50),
        (18, 10),
    ]
    stocktake = next(t for t in txs if t.warehousetransactionid == 16)
    assert stocktake.items[0].decimalquantity == Decimal("-1.000") and stocktake.items[
        0
    ].decimaltotal == Decimal(9)
    for name in ("warehousetransactions_warehouse_list.json", "warehousetransactions_site_list.json"):
        for payload in fixture(name)["items"]:
            parse(WarehouseTransaction, payload, "published transaction")
    parse(WarehouseTransaction, fixture("warehousetransaction_single.json"), "published transaction")


def test_published_z_reports_parse_through_the_hook_and_as_published(hook):
    (z,) = list(hook.iter_z_reports(dateadded_from=0))
    assert (z.zreportid, z.registerid, z.store_id) == (2, "{3CCB9848-155A-49E1-7CA8-5F7F78FC3067}", "200")
    assert z.moneysalestotal == Decimal("40463.75") and z.numsales == 3
    assert sum(g.moneytotalvat for g in z.vatgroupssales) == Decimal("8090.60")
    for payload in (*fixture("zreports_list.json")["items"], fixture("zreport_single.json")):
        assert "dateadded" not in payload  # the legacy route's shape: the model does not need it
        assert parse(ZReport, payload, "published z-report").dateadded is None


def test_published_stores_and_warehouses_parse_through_the_hook(hook):
    assert [w.warehouseid for w in hook.iter_warehouses()] == [1, 2, 4]
    assert [(s.storeid, s.externalid) for s in hook.iter_stores()] == [(1, None), (2, None), (3, "OUTLET-1")]
    parse(Warehouse, fixture("warehouse_single.json"), "published warehouse")
    parse(Store, fixture("store_single.json"), "published store")


def test_published_mode_serves_the_examples_byte_for_byte(published):
    """The sandbox adds nothing: each list endpoint answers with the published items themselves."""
    s = requests.Session()
    s.auth = (published.api_id, published.password)
    base = published.base_url
    items = s.get(f"{base}/sites/1/warehouses/1/warehouseitems.json", timeout=5).json()["items"]
    assert items == fixture("warehouseitems_list.json")["items"]
    site = s.get(f"{base}/sites/1/orders.json", params={"sort": "orderid"}, timeout=5).json()["items"]
    assert site[:2] == sorted(fixture("orders_site_list.json")["items"], key=lambda o: o["orderid"])
    assert site[2] == fixture("order_single.json")
    legacy = s.get(
        f"{base}/sites/1/cashregisters/{{3CCB9848-155A-49E1-7CA8-5F7F78FC3067}}/zreports.json", timeout=5
    )
    assert legacy.json()["items"] == fixture("zreports_list.json")["items"]


def test_published_open_web_order_is_excluded_not_pos_never_held_or_stalled(staging_conn):
    """Sitoo's open API/web order (no register, no payment) is not a POS sale: excluded with that
    reason from its first run, so it is neither held nor, days later, reported as stalled."""
    from datetime import timedelta

    from include.sitoo_erp.posting import states as S
    from include.sitoo_erp.posting.classify import classify
    from include.sitoo_erp.staging.orders import stage_orders

    web = fixture("order_single.json")
    paid_web = {**fixture("order_single.json"), "orderid": 11515, "orderstateid": 10, "paymentstateid": 15}
    pos_open = {**fixture("orders_account_list.json")["items"][0], "orderid": 11516, "orderstateid": 0}
    stage_orders(staging_conn, [web, paid_web, pos_open])
    summary = classify(staging_conn, stall_after=timedelta(hours=1))  # the 2019 web order is years old
    rows = staging_conn.execute("select orderid, state, reason from sitoo_erp.order_state").fetchall()
    states = {o: (s, r) for o, s, r in rows}
    assert states[11514] == (S.EXCLUDED, S.EXCLUDED_NOT_POS)
    assert states[11515] == (S.EXCLUDED, S.EXCLUDED_NOT_POS)
    assert states[11516] == (S.HELD, S.NOT_FINALISED_OPEN)  # an open sale on a till is still held
    stalled = staging_conn.execute(
        "select orderid from sitoo_erp.exception where kind = 'stalled' and status = 'open'"
    ).fetchall()
    assert stalled == [(11516,)] and summary["stalled"] == 1
