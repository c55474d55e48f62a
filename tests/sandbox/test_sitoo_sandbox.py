"""The Sitoo sandbox as a real HTTP server on 127.0.0.1: envelopes, paging, filters, auth, faults, clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests

from include.sandbox.catalogue import build_catalogue
from include.sandbox.generator import generate_dataset, is_finalised
from include.sandbox.sitoo import SitooFaults, SitooSandbox


@pytest.fixture(scope="module")
def sb():
    ds = generate_dataset(seed=42, stores=3, days=3, receipts_per_store_day=30)
    with SitooSandbox(ds) as sandbox:
        yield sandbox


@pytest.fixture
def http(sb):
    s = requests.Session()
    s.auth = (sb.api_id, sb.password)
    yield s
    s.close()


def get(http, sb, path, **params):
    r = http.get(f"{sb.base_url}/{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_orders_envelope_paging_and_totalcount(sb, http):
    total = len(sb.dataset)
    first = get(http, sb, "orders.json", num=7)
    assert first["totalcount"] == total and len(first["items"]) == 7
    ids: list[int] = []
    start = 0
    while start < total:
        page = get(http, sb, "orders.json", sort="orderid", start=start, num=100, fields="orderid")
        assert page["totalcount"] == total
        ids += [o["orderid"] for o in page["items"]]
        start += 100
    assert ids == sorted(ids) and len(set(ids)) == total
    assert list(first["items"][0]) != ["orderid"]  # fields applied only when asked


def test_default_sort_is_descending_and_json_suffix_optional(sb, http):
    desc = get(http, sb, "orders.json", num=5)["items"]
    assert [o["orderid"] for o in desc] == sorted((o["orderid"] for o in desc), reverse=True)
    assert desc[0]["orderid"] == sb.dataset.max_orderid
    asc = get(http, sb, "orders", num=5, sort="orderid")["items"]
    assert asc[0]["orderid"] == 10001 and [o["orderid"] for o in asc] == list(range(10001, 10006))
    assert get(http, sb, "orders", num=5, sort="-orderid")["items"] == desc


def test_order_filters(sb, http):
    ds = sb.dataset
    page = get(http, sb, "orders.json", orderidfrom=10010, orderidto=10020, sort="orderid", num=50)
    assert [o["orderid"] for o in page["items"]] == list(range(10010, 10020))
    some = get(http, sb, "orders.json", orderid="10003,10005", sort="orderid")["items"]
    rep = http.get(f"{sb.base_url}/orders.json?orderid=10003&orderid=10005&sort=orderid").json()["items"]
    assert [o["orderid"] for o in some] == [o["orderid"] for o in rep] == [10003, 10005]
    for param, field in (
        ("orderstate", "orderstateid"),
        ("paymentstate", "paymentstateid"),
        ("ordertype", "ordertypeid"),
    ):
        res = get(http, sb, "orders.json", num=1000, **{param: "0,110" if param == "ordertype" else "0"})
        vals = {0, 110} if param == "ordertype" else {0}
        assert res["totalcount"] == sum(r[field] in vals for r in ds) > 0
        assert all(o[field] in vals for o in res["items"])
    wh = get(http, sb, "orders.json", warehouseid=102, num=1000)
    assert wh["totalcount"] == sum(r["store"] == 2 for r in ds) and {
        o["warehouseid"] for o in wh["items"]
    } == {102}
    assert get(http, sb, "orders.json", eshopid=1)["totalcount"] == len(ds)
    assert get(http, sb, "orders.json", eshopid=2)["totalcount"] == 0
    ret = next(r for r in ds if r["kind"] == 1)
    credit = get(http, sb, "orders.json", creditorderid=ret["link"])["items"]
    assert ret["orderid"] in {o["orderid"] for o in credit} and all(
        o["creditorderid"] == ret["link"] for o in credit
    )
    one = ds.order(10042)
    by_receipt = get(http, sb, "orders.json", receiptid=one["additionaldata"]["pos-receiptid"])
    assert [o["orderid"] for o in by_receipt["items"]] == [10042]
    od = one["orderdate"]
    window = get(http, sb, "orders.json", orderdatefrom=od, orderdateto=od + 3600, num=1000)
    assert window["totalcount"] == sum(od <= r["orderdate"] <= od + 3600 for r in ds)
    assert all(od <= o["orderdate"] <= od + 3600 for o in window["items"])


def test_single_order_other_endpoints_and_errors(sb, http):
    o = get(http, sb, "sites/1/orders/10001.json")
    assert o["orderid"] == 10001 and o["orderlogitems"]
    assert http.get(f"{sb.base_url}/sites/1/orders/99999999.json").status_code == 404
    bad = http.get(f"{sb.base_url}/orders.json", params={"num": 1001})
    assert bad.status_code == 400 and bad.json()["statuscode"] == 400 and bad.json()["errortext"]
    assert get(http, sb, "sites.json")["items"][0]["eshopid"] == 1
    assert get(http, sb, "sites/1/stores.json")["totalcount"] == 3
    assert [w["warehouseid"] for w in get(http, sb, "sites/1/warehouses.json")["items"]] == [101, 102, 103]
    prods = get(http, sb, "sites/1/products.json", sku="SKU-000001,GIFTCARD")
    assert {p["sku"] for p in prods["items"]} == {"SKU-000001", "GIFTCARD"}
    items = get(http, sb, "sites/1/warehouses/101/warehouseitems.json", num=1000)
    assert items["totalcount"] == len(sb.dataset.catalogue.products)
    assert not any("warehouseid" in i for i in items["items"])  # Sitoo names it in the URL only
    txs = get(
        http,
        sb,
        "sites/1/warehousetransactions.json",
        sort="warehousetransactionid",
        num=1000,
        warehousetransactionidfrom=5,
        warehousetransactionidto=15,
    )
    assert [t["warehousetransactionid"] for t in txs["items"]] == list(range(5, 15))
    per_wh = get(http, sb, "sites/1/warehouses/102/warehousetransactions.json", transactiontype=30, num=1000)
    assert per_wh["totalcount"] > 0 and all(
        t["warehouseid"] == 102 and t["transactiontype"] == 30 for t in per_wh["items"]
    )
    ids = [t["warehousetransactionid"] for t in per_wh["items"]]
    assert ids == sorted(ids, reverse=True)
    zs = get(http, sb, "pos-z-reports", store_id="ST001")
    assert isinstance(zs, list) and len(zs) == 3 and {z["store_id"] for z in zs} == {"ST001"}
    mid = zs[1]["dateadded"]
    assert [z["dateadded"] for z in get(http, sb, "pos-z-reports", dateaddedfrom=mid, store_id="ST001")] == [
        z["dateadded"] for z in zs[1:]
    ]


def test_bad_credentials_get_401_json(sb):
    r = requests.get(f"{sb.base_url}/orders.json", auth=(sb.api_id, "wrong"), timeout=5)
    assert r.status_code == 401 and r.json() == {"statuscode": 401, "errortext": "Authorization failed"}
    assert requests.get(f"{sb.base_url}/orders.json", timeout=5).status_code == 401


def test_rate_limit_answers_429_with_retry_after():
    ds = generate_dataset(seed=3, stores=1, days=1, receipts_per_store_day=2)
    with SitooSandbox(ds, faults=SitooFaults(rate_limit_rps=1, rate_limit_burst=3)) as sb:
        codes, retry = [], None
        for _ in range(6):
            r = requests.get(f"{sb.base_url}/orders.json", auth=(sb.api_id, sb.password), timeout=5)
            codes.append(r.status_code)
            if r.status_code == 429:
                retry = r.headers["Retry-After"]
                assert r.json() == {"statuscode": 429, "errortext": "Too Many Requests"}
        assert codes[:3] == [200, 200, 200] and 429 in codes
        assert retry is not None and int(retry) >= 1
        assert sb.state()["counters"]["rate_limited"] == codes.count(429)


def test_injected_503_hang_and_http_control_surface(sb, http):
    sb.reset_counters()
    ctl = requests.post(f"{sb.url}/_sandbox/fail-next", json={"count": 2, "status": 503}, timeout=5)
    assert ctl.status_code == 200
    codes = [http.get(f"{sb.base_url}/orders.json").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    r = requests.post(f"{sb.url}/_sandbox/faults", json={"hang_rate": 1.0, "hang_seconds": 1.0}, timeout=5)
    assert r.json()["hang_rate"] == 1.0
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{sb.base_url}/orders.json", timeout=0.3)
    sb.set_faults(hang_rate=0.0, error_rate=1.0, seed=5)
    assert http.get(f"{sb.base_url}/orders.json").status_code in (500, 502, 503)
    sb.set_faults(error_rate=0.0)
    state = requests.get(f"{sb.url}/_sandbox/state", timeout=5).json()
    assert state["counters"]["failed_next"] == 2 and state["counters"]["hangs"] == 1
    assert state["counters"]["injected_5xx"] == 1
    assert requests.post(f"{sb.url}/_sandbox/faults", json={"nope": 1}, timeout=5).status_code == 400


def test_clock_hides_late_offline_receipt_then_reveals_it():
    ds = generate_dataset(seed=9, stores=2, days=1, receipts_per_store_day=3)
    made = ds.end_ts + 600
    late = ds.add_order(store=2, kind="sale", orderdate=made, dateadded=made + 3 * 3600)
    with SitooSandbox(ds, now=made + 60) as sb:
        s = requests.Session()
        s.auth = (sb.api_id, sb.password)
        listed = s.get(f"{sb.base_url}/orders.json", params={"orderidfrom": late}).json()
        assert listed["totalcount"] == 0
        assert s.get(f"{sb.base_url}/sites/1/orders/{late}.json").status_code == 404
        requests.post(f"{sb.url}/_sandbox/clock", json={"now": made + 3 * 3600}, timeout=5)
        listed = s.get(f"{sb.base_url}/orders.json", params={"orderidfrom": late}).json()
        assert [o["orderid"] for o in listed["items"]] == [late] and listed["items"][0]["orderdate"] == made


def test_parked_order_closes_two_hours_later_via_schedule():
    ds = generate_dataset(seed=11, stores=1, days=1, receipts_per_store_day=2)
    t0 = ds.end_ts + 100
    parked = ds.add_order(store=1, kind="parked", orderdate=t0, dateadded=t0 + 1)
    with SitooSandbox(ds, now=t0 + 10) as sb:
        s = requests.Session()
        s.auth = (sb.api_id, sb.password)
        r = requests.post(
            f"{sb.url}/_sandbox/orders/{parked}",
            timeout=5,
            json={"at": t0 + 7200, "orderstateid": 10, "paymentstateid": 20, "ordertypeid": 10},
        )
        assert r.json()["scheduled"] is True
        held = s.get(f"{sb.base_url}/orders.json", params={"ordertype": 110}).json()["items"]
        assert [o["orderid"] for o in held] == [parked]
        sb.advance(7200)
        o = s.get(f"{sb.base_url}/sites/1/orders/{parked}.json").json()
        assert is_finalised(o)
        assert s.get(f"{sb.base_url}/orders.json", params={"ordertype": 110}).json()["totalcount"] == 0
        txs = s.get(f"{sb.base_url}/sites/1/warehousetransactions.json", params={"num": 5}).json()["items"]
        assert txs[0]["orderdeliveryid"] == parked * 10 + 1 and txs[0]["datecreated"] == t0 + 7200
        added = requests.post(
            f"{sb.url}/_sandbox/orders", json={"store": 1, "kind": "open"}, timeout=5
        ).json()
        assert added == parked + 1


def test_z_report_endpoint_matches_receipts(sb, http):
    ds = sb.dataset
    zs = get(http, sb, "pos-z-reports", registerid=ds.catalogue.stores[0].registerid)
    z = zs[0]
    assert "businessday" not in z  # Sitoo's Z-report has no such field
    lo, hi = ds.day_bounds(ds.z_business_day(z))
    assert hi - lo in (23 * 3600, 24 * 3600, 25 * 3600)
    receipts = [ds.order(r["orderid"]) for r in ds if r["store"] == 1 and lo <= r["orderdate"] < hi]
    receipts = [o for o in receipts if is_finalised(o)]
    assert z["numreceipts"] == len(receipts)
    assert Decimal(z["moneysummarytotal"]) == sum(Decimal(o["moneytotal_gross_all"]) for o in receipts)
    assert ds.start + timedelta(days=0) == ds.z_business_day(z)


def _local_day(ts: int, tz: str) -> date:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).date()


def test_z_reports_follow_each_stores_own_timezone():
    """A Stockholm till closes on Stockholm days: every receipt on its report is on that local day,
    and the report opens and closes on that day's Stockholm clock (not London's)."""
    catalogue = build_catalogue(seed=5, stores=2, skus=60, timezone="Europe/Stockholm")
    ds = generate_dataset(seed=5, days=2, receipts_per_store_day=40, catalogue=catalogue)
    assert ds.timezone == "Europe/London"  # the dataset's own clock differs from the stores'
    with SitooSandbox(ds) as sandbox, requests.Session() as s:
        s.auth = (sandbox.api_id, sandbox.password)
        store = catalogue.stores[0]
        zs = s.get(
            f"{sandbox.base_url}/pos-z-reports", params={"store_id": store.externalid}, timeout=10
        ).json()
    assert [_local_day(z["dateopened"], "Europe/Stockholm") for z in zs] == [
        ds.start,
        ds.start + timedelta(days=1),
    ]
    stockholm = ZoneInfo("Europe/Stockholm")
    assert datetime.fromtimestamp(zs[0]["dateopened"], stockholm).time() == dt_time(8, 30)
    for z in zs:
        day = _local_day(z["dateopened"], "Europe/Stockholm")
        receipts = [
            o
            for o in (ds.order(r["orderid"]) for r in ds if r["store"] == store.storeid)
            if is_finalised(o) and _local_day(o["orderdate"], "Europe/Stockholm") == day
        ]
        assert receipts and z["numreceipts"] == len(receipts)
        assert Decimal(z["moneysummarytotal"]) == sum(Decimal(o["moneytotal_gross_all"]) for o in receipts)


def test_paging_by_orderid_walks_every_order_once(sb, http):
    """Pages of 1,000 sorted by orderid cover the dataset exactly once, in order (how fast is bench's
    job: bench/extract_orders.py)."""
    seen: list[int] = []
    start = 0
    while start < len(sb.dataset):
        page = get(http, sb, "orders.json", sort="orderid", start=start, num=1000)
        seen += [o["orderid"] for o in page["items"]]
        start += 1000
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == len(sb.dataset)
