"""FastAPI app emulating the Sitoo REST API v2 over a ``SitooSandbox`` (see reference/sitoo-api.md).

API under ``/v2/accounts/{accountid}/`` (paths with or without ``.json``), HTTP Basic auth,
``{"totalcount", "items"}`` envelopes (``/pos-z-reports`` is a bare array), errors as
``{"statuscode", "errortext"}``, ``num`` capped at 1000 (more answers 400).
Control surface (no auth): ``/_sandbox/state``, ``/_sandbox/clock``, ``/_sandbox/faults``,
``/_sandbox/fail-next``, ``/_sandbox/orders`` (add), ``/_sandbox/orders/{orderid}`` (update or
schedule), ``/_sandbox/counters/reset``, ``/_sandbox/expected``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from dataclasses import asdict
from typing import Any, overload

import msgspec
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from include.sandbox.generator import ORDERID_BASE, SitooDataset
from include.sandbox.sitoo.state import MAX_NUM, MAX_ZREPORTS, SitooSandbox


class ApiError(Exception):
    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or {}


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(obj), status_code=status, media_type="application/json", headers=headers
    )


def _error(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"statuscode": status, "errortext": text}, status, headers)


REASONS = {
    400: "Bad Request",
    401: "Authorization failed",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# ---------------------------------------------------------------------------- query helpers
def _multi(request: Request, name: str) -> list[str] | None:
    """Multi-value param: comma-separated and/or repeated (also ``name[]``)."""
    raw = request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")
    if not raw:
        return None
    return [v.strip() for item in raw for v in item.split(",") if v.strip()]


def _ints(request: Request, name: str) -> list[int] | None:
    vals = _multi(request, name)
    if vals is None:
        return None
    try:
        return [int(v) for v in vals]
    except ValueError:
        raise ApiError(400, f"Invalid value for {name}") from None


@overload
def _int(request: Request, name: str, default: int) -> int: ...
@overload
def _int(request: Request, name: str, default: None = None) -> int | None: ...
def _int(request: Request, name: str, default: int | None = None) -> int | None:
    v = request.query_params.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise ApiError(400, f"Invalid value for {name}") from None


def _paging(request: Request) -> tuple[int, int]:
    start, num = _int(request, "start", 0), _int(request, "num", 10)
    if start < 0 or num < 0:
        raise ApiError(400, "start and num must be >= 0")
    if num > MAX_NUM:
        raise ApiError(400, f"num must be <= {MAX_NUM}")
    return start, num


def _fields(request: Request, items: list[dict]) -> list[dict]:
    wanted = _multi(request, "fields")
    if not wanted:
        return items
    keep = set(wanted)
    return [{k: v for k, v in it.items() if k in keep} for it in items]


def _envelope(request: Request, items: list[dict], total: int | None = None) -> Response:
    return _json({"totalcount": len(items) if total is None else total, "items": _fields(request, items)})


def _page_list(request: Request, items: list[dict]) -> Response:
    start, num = _paging(request)
    return _envelope(request, items[start : start + num], len(items))


# ---------------------------------------------------------------------------- order selection
def select_orders(ds: SitooDataset, now: int, request: Request) -> np.ndarray:
    """Positions (ascending orderid) of the visible orders matching the list filters."""
    idx = ds.idx
    lo, hi = 0, len(ds)
    ofrom, oto = _int(request, "orderidfrom"), _int(request, "orderidto")
    if ofrom is not None:
        lo = max(lo, ofrom - ORDERID_BASE)
    if oto is not None:
        hi = min(hi, oto - ORDERID_BASE)
    if hi <= lo:
        return np.zeros(0, dtype=np.int64)
    sl = slice(lo, hi)
    mask = idx["dateadded"][sl] <= now
    receiptid = request.query_params.get("receiptid")
    creditorderid = _int(request, "creditorderid")
    if receiptid:
        key, num = receiptid[:-7], receiptid[-7:]
        store = ds.store_by_registerkey.get(key)
        if store is None or not num.isdigit():
            return np.zeros(0, dtype=np.int64)
        mask &= (idx["store"][sl] == store) & (idx["receiptno"][sl] == int(num))
    elif creditorderid is not None:
        mask &= (idx["link"][sl] == creditorderid) & (creditorderid > 0)
    else:
        ids = _ints(request, "orderid")
        if ids is not None:
            mask &= np.isin(idx["orderid"][sl], ids)
    for param, col in (
        ("orderstate", "orderstateid"),
        ("paymentstate", "paymentstateid"),
        ("ordertype", "ordertypeid"),
    ):
        vals = _ints(request, param)
        if vals is not None:
            mask &= np.isin(idx[col][sl], vals)
    wids = _ints(request, "warehouseid")
    if wids is not None:
        stores = [ds.store_by_warehouse[w] for w in wids if w in ds.store_by_warehouse]
        mask &= np.isin(idx["store"][sl], stores)
    eshops = _ints(request, "eshopid")
    if eshops is not None and 1 not in eshops:
        return np.zeros(0, dtype=np.int64)
    if _multi(request, "externalid") is not None or request.query_params.get("email"):
        return np.zeros(0, dtype=np.int64)  # POS orders carry neither
    dfrom, dto = _int(request, "orderdatefrom"), _int(request, "orderdateto")
    if dfrom is not None:
        mask &= idx["orderdate"][sl] >= dfrom
    if dto is not None:
        mask &= idx["orderdate"][sl] <= dto
    return lo + np.flatnonzero(mask)


def _sort(request: Request, default: str, allowed: set[str]) -> bool:
    """True for descending."""
    s = request.query_params.get("sort") or default
    if s.lstrip("-") not in allowed:
        raise ApiError(400, f"Invalid sort field {s}")
    return s.startswith("-")


# ---------------------------------------------------------------------------- app
def create_app(sb: SitooSandbox) -> Any:
    app = FastAPI(title="Sitoo REST API v2 sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    ds = sb.dataset
    prefix = "/v2/accounts/{accountid}"

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.text, exc.headers)

    @app.middleware("http")
    async def gate(request: Request, call_next):
        path = request.url.path
        if path.startswith("/_sandbox"):
            return await call_next(request)
        sb.counters["requests"] += 1
        response = await _gate(request, path)
        if response is None:
            delay = sb.latency_seconds()
            if delay:
                await asyncio.sleep(delay)
            response = await call_next(request)
        sb.counters[f"status_{response.status_code}"] += 1
        return response

    async def _gate(request: Request, path: str) -> Response | None:
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "v2" or parts[2] != "accounts":
            return _error(404, "Unknown resource")
        if parts[3] != str(sb.account_id):
            return _error(404, f"Unknown account {parts[3]}")
        if not _authorised(request.headers.get("authorization", "")):
            sb.counters["auth_failures"] += 1
            return _error(401, "Authorization failed", {"WWW-Authenticate": 'Basic realm="Sitoo"'})
        fault = sb.decide_fault()
        if fault is None:
            return None
        kind, value = fault
        if kind == "429":
            return _error(429, "Too Many Requests", {"Retry-After": str(value)})
        if kind == "hang":
            await asyncio.sleep(value)
            return _error(504, REASONS[504])
        return _error(value, REASONS.get(value, "Server error"))

    def _authorised(header: str) -> bool:
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, sb.api_id) & secrets.compare_digest(pw, sb.password)

    def _site(siteid: str) -> None:
        if siteid not in ("1",):
            raise ApiError(404, f"Unknown site {siteid}")

    # ---------------------------------------------------------------- orders
    @app.get(prefix + "/orders")
    def list_orders(request: Request) -> Response:
        desc = _sort(request, "-orderid", {"orderid"})
        start, num = _paging(request)
        with sb.lock:
            sb._apply_due()
            pos = select_orders(ds, sb.now, request)
            total = len(pos)
            page = pos[::-1][start : start + num] if desc else pos[start : start + num]
            items = [ds.order(ORDERID_BASE + int(p)) for p in page]
        return _envelope(request, items, total)

    @app.get(prefix + "/sites/{siteid}/orders")
    def list_site_orders(request: Request, siteid: str) -> Response:
        _site(siteid)
        return list_orders(request)

    @app.get(prefix + "/sites/{siteid}/orders/{orderid}")
    def get_order(request: Request, siteid: str, orderid: int) -> Response:
        _site(siteid)
        with sb.lock:
            sb._apply_due()
            try:
                p = ds.pos(orderid)
            except KeyError:
                raise ApiError(404, f"Order {orderid} not found") from None
            if int(ds.idx["dateadded"][p]) > sb.now:
                raise ApiError(404, f"Order {orderid} not found")
            o = ds.order(orderid, logitems=True)
        return _json(_fields(request, [o])[0])

    # ---------------------------------------------------------------- catalogue / stores
    @app.get(prefix + "/sites")
    def sites(request: Request) -> Response:
        return _envelope(
            request,
            [
                {
                    "siteid": "{5170A000-0000-4000-8000-000000000001}",
                    "eshopid": 1,
                    "protocol": "https",
                    "server": "sandbox.local",
                    "abspath": "/",
                    "siteurl": "https://sandbox.local/",
                }
            ],
        )

    @app.get(prefix + "/sites/{siteid}/products")
    def products(request: Request, siteid: str) -> Response:
        _site(siteid)
        items = ds.products()
        skus, pids = _multi(request, "sku"), _ints(request, "productid")
        if skus is not None:
            items = [p for p in items if p["sku"] in set(skus)]
        if pids is not None:
            items = [p for p in items if p["productid"] in set(pids)]
        modified = _int(request, "datelastmodified")
        if modified is not None:
            items = [p for p in items if p["datemodified"] > modified]
        return _page_list(request, items)

    @app.get(prefix + "/sites/{siteid}/stores")
    def stores(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _page_list(request, ds.stores())

    @app.get(prefix + "/sites/{siteid}/warehouses")
    def warehouses(request: Request, siteid: str) -> Response:
        _site(siteid)
        return _page_list(request, ds.warehouses())

    def _warehouse(wid: int) -> None:
        if wid not in ds.store_by_warehouse:
            raise ApiError(404, f"Warehouse {wid} not found")

    @app.get(prefix + "/sites/{siteid}/warehouses/{warehouseid}/warehouseitems")
    def warehouse_items(request: Request, siteid: str, warehouseid: int) -> Response:
        _site(siteid)
        _warehouse(warehouseid)
        with sb.lock:
            # As Sitoo: the warehouse is named by the URL, not repeated in each row.
            items = [
                {k: v for k, v in i.items() if k != "warehouseid"}
                for i in ds.warehouse_items(warehouseid, sb.now)
            ]
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
        with sb.lock:
            txs = ds.warehouse_transactions(sb.now)
        wids = [warehouseid] if warehouseid is not None else _ints(request, "warehouseid")
        if wids is not None:
            txs = [t for t in txs if t["warehouseid"] in set(wids)]
        ids = _ints(request, "warehousetransactionid")
        if ids is not None:
            txs = [t for t in txs if t["warehousetransactionid"] in set(ids)]
        types = _ints(request, "transactiontype")
        if types is not None:
            txs = [t for t in txs if t["transactiontype"] in set(types)]
        for param, key, op in (
            ("warehousetransactionidfrom", "warehousetransactionid", "ge"),
            ("warehousetransactionidto", "warehousetransactionid", "lt"),
            ("datecreatedfrom", "datecreated", "ge"),
            ("datecreatedto", "datecreated", "le"),
        ):
            v = _int(request, param)
            if v is None:
                continue
            if op == "ge":
                txs = [t for t in txs if t[key] >= v]
            elif op == "lt":
                txs = [t for t in txs if t[key] < v]
            else:
                txs = [t for t in txs if t[key] <= v]
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

    @app.get(prefix + "/pos-z-reports")
    def z_reports(request: Request) -> Response:
        with sb.lock:
            reports = [z for z in sb.z_reports() if z["dateadded"] <= sb.now]
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

    # ---------------------------------------------------------------- control surface
    async def _body(request: Request) -> dict:
        raw = await request.body()
        return msgspec.json.decode(raw) if raw else {}

    @app.get("/_sandbox/state")
    def state() -> Response:
        return _json(sb.state())

    @app.get("/_sandbox/expected")
    def expected() -> Response:
        return _json(ds.expected)

    @app.post("/_sandbox/clock")
    async def clock(request: Request) -> Response:
        body = await _body(request)
        if "now" in body:
            sb.set_clock(int(body["now"]))
        elif "advance" in body:
            sb.advance(int(body["advance"]))
        return _json({"now": sb.now})

    @app.post("/_sandbox/faults")
    async def faults(request: Request) -> Response:
        try:
            f = sb.set_faults(**await _body(request))
        except (ValueError, TypeError) as exc:
            raise ApiError(400, str(exc)) from None
        return _json(asdict(f))

    @app.post("/_sandbox/fail-next")
    async def fail_next(request: Request) -> Response:
        body = await _body(request)
        sb.fail_next(int(body.get("count", 1)), int(body.get("status", 503)))
        return _json(True)

    @app.post("/_sandbox/counters/reset")
    def reset() -> Response:
        sb.reset_counters()
        return _json(True)

    @app.post("/_sandbox/orders")
    async def add_order(request: Request) -> Response:
        try:
            return _json(sb.add_order(**await _body(request)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(400, f"bad order: {exc}") from None

    @app.post("/_sandbox/orders/{orderid}")
    async def update_order(request: Request, orderid: int) -> Response:
        body = await _body(request)
        at = body.pop("at", None)
        try:
            out = sb.update_order(orderid, at=at, **body)
        except KeyError:
            raise ApiError(404, f"Order {orderid} not found") from None
        return _json({"scheduled": out is None, "order": out})

    return _StripJson(app)


class _StripJson:
    """ASGI wrapper: ``/orders.json`` and ``/orders`` route the same."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(".json"):
            scope = dict(scope)
            scope["path"] = scope["path"][:-5]
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)
