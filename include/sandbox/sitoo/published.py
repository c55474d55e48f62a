"""Sitoo sandbox, *published* mode: serves Sitoo's own API examples, exactly as published.

The generated sandbox is built by this project and can agree with its code by construction. This
mode serves the response examples of Sitoo's OpenAPI spec (``tests/fixtures/sitoo``, see its
README) with no field added or filled in: the site-level order list has no ``eshopid``, warehouse
items have no ``warehouseid`` (it lives in the URL), the open web order has ``registerid: null``
and no payments, the published refund pays ``-2900.00`` against ``-2990.00``. Only what an
endpoint does is emulated: auth, envelopes, paging, the documented filters, ``fields``, and the
``dateadded`` that ``/pos-z-reports`` (and only that route) documents on each Z-report.

>>> with PublishedSitooSandbox() as sb:
...     requests.get(f"{sb.base_url}/orders.json", auth=(sb.api_id, sb.password))
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from include.sandbox.sitoo.app import (
    ApiError,
    _envelope,
    _fields,
    _int,
    _ints,
    _json,
    _multi,
    _page_list,
    _paging,
    _sort,
)
from include.sandbox.sitoo.state import MAX_ZREPORTS, SitooSandbox

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "sitoo"
Z_UPLOAD_DELAY = 60  # /pos-z-reports documents ``dateadded`` (backend receipt); the legacy route has none


class PublishedExamples:
    """The published examples, indexed the way the endpoints need them (read-only)."""

    def __init__(self, folder: Path | str = FIXTURES) -> None:
        self.folder = Path(folder)
        self.manifest = self._load("manifest.json")
        self.account_orders = self._load("orders_account_list.json")["items"]
        self.site_orders = self._load("orders_site_list.json")["items"]
        self.single_order = self._load("order_single.json")
        self.warehouse_items = self._load("warehouseitems_list.json")["items"]
        txs: dict[int, dict] = {}
        for name in ("warehousetransactions_site_list.json", "warehousetransactions_warehouse_list.json"):
            for t in self._load(name)["items"]:
                txs.setdefault(t["warehousetransactionid"], t)
        single = self._load("warehousetransaction_single.json")
        txs.setdefault(single["warehousetransactionid"], single)
        self.transactions = [txs[k] for k in sorted(txs)]
        zs: dict[tuple[str, int], dict] = {}
        for z in [*self._load("zreports_list.json")["items"], self._load("zreport_single.json")]:
            zs.setdefault((z["registerid"], z["zreportid"]), z)
        self.z_reports = sorted(zs.values(), key=lambda z: (z["datecreated"], z["registerid"]))
        self.warehouses = self._load("warehouses_list.json")["items"]
        extra = self._load("warehouse_single.json")
        if all(w["warehouseid"] != extra["warehouseid"] for w in self.warehouses):
            self.warehouses.append(extra)
        self.stores = self._load("stores_list.json")["items"]
        store = self._load("store_single.json")
        if all(s["storeid"] != store["storeid"] for s in self.stores):
            self.stores.append(store)
        self.cashregisters = self._load("cashregisters_list.json")["items"]
        # The published stock rows belong to a warehouse the examples do not name: the store's own.
        self.stock_warehouseid = next(w["warehouseid"] for w in self.warehouses if w.get("storeid"))

    def _load(self, name: str) -> Any:
        return json.loads((self.folder / name).read_text(encoding="utf-8"))

    def orders(self, site_level: bool) -> list[dict]:
        """Every published order, ascending orderid, in the shape of that list endpoint."""
        listed = self.site_orders if site_level else self.account_orders
        out = {o["orderid"]: o for o in listed}
        out.setdefault(self.single_order["orderid"], self.single_order)
        return [copy.deepcopy(out[k]) for k in sorted(out)]

    def order(self, orderid: int) -> dict | None:
        if orderid == self.single_order["orderid"]:
            return copy.deepcopy(self.single_order)
        return next((copy.deepcopy(o) for o in self.account_orders if o["orderid"] == orderid), None)

    # The SitooSandbox control surface reads these.
    def __len__(self) -> int:
        return len(self.orders(site_level=False))

    @property
    def max_orderid(self) -> int:
        return max(o["orderid"] for o in self.orders(site_level=False))

    @property
    def end_ts(self) -> int:
        stamps = [o["orderdate"] for o in self.orders(site_level=False)]
        stamps += [t["datecreated"] for t in self.transactions] + [z["datecreated"] for z in self.z_reports]
        return max(stamps)

    def visible_count(self, now: int) -> int:
        return sum(1 for o in self.orders(site_level=False) if o["orderdate"] <= now)


class PublishedSitooSandbox(SitooSandbox):
    """``SitooSandbox`` (auth, faults, clock, server) over ``PublishedExamples``."""

    def __init__(self, examples: PublishedExamples | None = None, **kwargs: Any) -> None:
        examples = examples or PublishedExamples()
        kwargs.setdefault("now", examples.end_ts + 86_400)
        super().__init__(examples, **kwargs)  # type: ignore[arg-type]  # duck-types what the sandbox reads
        self.examples = examples

    @property
    def app(self):
        if self._app is None:
            self._app = create_published_app(self)
        return self._app


def _filter_orders(request: Request, orders: list[dict], now: int) -> list[dict]:
    out = [o for o in orders if o["orderdate"] <= now]
    for param, key, keep in (
        ("orderidfrom", "orderid", lambda v, x: x >= v),
        ("orderidto", "orderid", lambda v, x: x < v),
        ("orderdatefrom", "orderdate", lambda v, x: x >= v),
        ("orderdateto", "orderdate", lambda v, x: x <= v),
    ):
        value = _int(request, param)
        if value is not None:
            out = [o for o in out if keep(value, o[key])]
    for param, key in (
        ("orderid", "orderid"),
        ("orderstate", "orderstateid"),
        ("paymentstate", "paymentstateid"),
        ("ordertype", "ordertypeid"),
        ("warehouseid", "warehouseid"),
        ("eshopid", "eshopid"),
    ):
        values = _ints(request, param)
        if values is not None:
            out = [o for o in out if o.get(key) in set(values)]
    creditorderid = _int(request, "creditorderid")
    if creditorderid is not None:
        out = [o for o in out if o.get("creditorderid") == creditorderid]
    externalids = _multi(request, "externalid")
    if externalids is not None:
        out = [o for o in out if o.get("externalid") in set(externalids)]
    return out


def create_published_app(sb: PublishedSitooSandbox) -> Any:
    """The same routes as the generated sandbox, answered from the published examples."""
    from include.sandbox.sitoo.app import create_app

    ex = sb.examples
    base = create_app(sb)  # the generated app's middleware (auth, faults, counters) and control surface
    app: FastAPI = base.app
    prefix = "/v2/accounts/{accountid}"
    # Drop the generated routes that read a SitooDataset; keep /_sandbox/* (clock, faults, state).
    # (adding and changing orders, and the generator's expectations, need a SitooDataset too).
    app.router.routes = [
        r
        for r in app.router.routes
        if getattr(r, "path", "").startswith("/_sandbox")
        and not getattr(r, "path", "").startswith(("/_sandbox/expected", "/_sandbox/orders"))
    ]

    def _site(siteid: str) -> None:
        if siteid != "1":
            raise ApiError(404, f"Unknown site {siteid}")

    def _orders(request: Request, site_level: bool) -> Response:
        desc = _sort(request, "-orderid", {"orderid"})
        start, num = _paging(request)
        with sb.lock:
            rows = _filter_orders(request, ex.orders(site_level), sb.now)
        if desc:
            rows = rows[::-1]
        return _envelope(request, rows[start : start + num], len(rows))

    @app.get(prefix + "/orders")
    def list_orders(request: Request) -> Response:
        return _orders(request, site_level=False)

    @app.get(prefix + "/sites/{siteid}/orders")
    def list_site_orders(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _orders(request, site_level=True)

    @app.get(prefix + "/sites/{siteid}/orders/{orderid}")
    def get_order(request: Request, siteid: str, orderid: int) -> Response:
        _site(siteid)
        order = ex.order(orderid)
        if order is None or order["orderdate"] > sb.now:
            raise ApiError(404, f"Order {orderid} not found")
        return _json(_fields(request, [order])[0])

    @app.get(prefix + "/sites/{siteid}/stores")
    def stores(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _page_list(request, copy.deepcopy(ex.stores))

    @app.get(prefix + "/sites/{siteid}/warehouses")
    def warehouses(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _page_list(request, copy.deepcopy(ex.warehouses))

    @app.get(prefix + "/sites/{siteid}/products")
    def products(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _page_list(request, [])  # the spec's product examples are not part of these fixtures

    @app.get(prefix + "/sites/{siteid}/cashregisters")
    def cashregisters(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _page_list(request, copy.deepcopy(ex.cashregisters))

    def _warehouse(wid: int) -> None:
        if all(w["warehouseid"] != wid for w in ex.warehouses):
            raise ApiError(404, f"Warehouse {wid} not found")

    @app.get(prefix + "/sites/{siteid}/warehouses/{warehouseid}/warehouseitems")
    def warehouse_items(request: Request, siteid: str, warehouseid: int) -> Response:
        _site(siteid)
        _warehouse(warehouseid)
        items = copy.deepcopy(ex.warehouse_items) if warehouseid == ex.stock_warehouseid else []
        skus = _multi(request, "sku")
        if skus is not None:
            items = [i for i in items if i["sku"] in set(skus)]
        mfrom, mto = _int(request, "datelastmodifiedfrom"), _int(request, "datelastmodifiedto")
        if mfrom is not None:
            items = [i for i in items if i["datelastmodified"] >= mfrom]
        if mto is not None:
            items = [i for i in items if i["datelastmodified"] <= mto]
        return _page_list(request, items)

    def _transactions(request: Request, warehouseid: int | None) -> Response:
        desc = _sort(request, "-warehousetransactionid", {"warehousetransactionid"})
        start, num = _paging(request)
        txs = [copy.deepcopy(t) for t in ex.transactions if t["datecreated"] <= sb.now]
        wids = [warehouseid] if warehouseid is not None else _ints(request, "warehouseid")
        if wids is not None:
            txs = [t for t in txs if t["warehouseid"] in set(wids)]
        for param, key in (
            ("warehousetransactionid", "warehousetransactionid"),
            ("transactiontype", "transactiontype"),
        ):
            values = _ints(request, param)
            if values is not None:
                txs = [t for t in txs if t[key] in set(values)]
        for param, key, keep in (
            ("warehousetransactionidfrom", "warehousetransactionid", lambda v, x: x >= v),
            ("warehousetransactionidto", "warehousetransactionid", lambda v, x: x < v),
            ("datecreatedfrom", "datecreated", lambda v, x: x >= v),
            ("datecreatedto", "datecreated", lambda v, x: x <= v),
        ):
            value = _int(request, param)
            if value is not None:
                txs = [t for t in txs if keep(value, t[key])]
        if desc:
            txs = txs[::-1]
        return _envelope(request, txs[start : start + num], len(txs))

    @app.get(prefix + "/sites/{siteid}/warehousetransactions")
    def transactions(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _transactions(request, None)

    @app.get(prefix + "/sites/{siteid}/warehouses/{warehouseid}/warehousetransactions")
    def warehouse_transactions(request: Request, siteid: str, warehouseid: int) -> Response:
        _site(siteid)
        _warehouse(warehouseid)
        return _transactions(request, warehouseid)

    @app.get(prefix + "/sites/{siteid}/cashregisters/{registerid}/zreports")
    def legacy_z_reports(request: Request, siteid: str, registerid: str) -> Response:
        """The route the examples were published for: as published, no ``dateadded``."""
        _site(siteid)
        items = [copy.deepcopy(z) for z in ex.z_reports if z["registerid"] == registerid]
        dfrom, dto = _int(request, "datecreatedfrom"), _int(request, "datecreatedto")
        items = [
            z
            for z in items
            if z["datecreated"] <= sb.now
            and (dfrom is None or z["datecreated"] >= dfrom)
            and (dto is None or z["datecreated"] <= dto)
        ]
        return _page_list(request, items)

    @app.get(prefix + "/pos-z-reports")
    def z_reports(request: Request) -> Response:
        """The preferred route: a bare array, ascending ``dateadded``, which it documents per report."""
        reports = []
        for z in ex.z_reports:
            added = z["datecreated"] + Z_UPLOAD_DELAY
            if added <= sb.now:
                reports.append({**copy.deepcopy(z), "dateadded": added})
        dfrom, dto = _int(request, "dateaddedfrom"), _int(request, "dateaddedto")
        stores_, regs, eshops = (
            _multi(request, "store_id"),
            _multi(request, "registerid"),
            _ints(request, "eshopid"),
        )
        out = [
            z
            for z in reports
            if (dfrom is None or z["dateadded"] >= dfrom)
            and (dto is None or z["dateadded"] <= dto)
            and (stores_ is None or z["store_id"] in stores_)
            and (regs is None or z["registerid"] in regs)
            and (eshops is None or z["eshopid"] in eshops)
        ]
        return _json(_fields(request, out[:MAX_ZREPORTS]))

    return base
