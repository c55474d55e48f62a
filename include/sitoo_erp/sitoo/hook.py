"""SitooHook: the Sitoo REST v2 API over the http provider's HttpHook.

Connection ``sitoo_default`` (type http): host + schema (+ port) of the API, login = the API id
(``{accountid}-{n}``), password = the API password. The account id is taken from the API id,
as Sitoo issues it; a host that already ends in ``/v2/accounts/{id}`` is used as is. Settings
that are not HTTP headers (page size) are hook arguments, never connection extras — the http
provider turns every unknown extra key into a request header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from include.sitoo_erp.http_retry import (
    ApiError,
    AuthError,
    RetryPolicy,
    TransientApiError,
    parse_retry_after,
    with_retries,
)
from include.sitoo_erp.sitoo.models import (
    Product,
    SitooPayloadError,
    Store,
    Warehouse,
    WarehouseItem,
    WarehouseTransaction,
    ZReport,
    parse,
    parse_order,
)

ORDER_FIELDS = (
    "orderid,eshopid,externalid,creditorderid,registerid,warehouseid,orderdate,orderstateid,"
    "paymentstateid,ordertypeid,currencycode,moneyfinal_net,moneyfinal_vat,moneytotal_gross_roundoff,"
    "moneytotal_gross_all,additionaldata,orderitems,payments"
)
MAX_Z_REPORTS_PER_CALL = 500


class SitooHook(HttpHook):
    """Pages Sitoo collections to the end, retries what is transient, yields typed records."""

    conn_name_attr = "sitoo_conn_id"
    default_conn_name = "sitoo_default"
    conn_type = "http"
    hook_name = "Sitoo POS"

    def __init__(
        self,
        sitoo_conn_id: str = default_conn_name,
        page_size: int = 500,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=sitoo_conn_id, **kwargs)
        self.sitoo_conn_id = sitoo_conn_id
        self.page_size = page_size
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session: requests.Session | None = None
        self._prefix = ""

    # -- transport -----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        """One keep-alive session per hook (``HttpHook.run`` would open one per request)."""
        if self._session is None:
            self._session = self.get_conn()
            conn = self.get_connection(self.sitoo_conn_id)
            if "/v2/accounts/" in self.base_url:
                self._prefix = ""
            else:
                account_id = (conn.login or "").split("-", 1)[0]
                if not account_id.isdigit():
                    raise AuthError(
                        f"connection '{self.sitoo_conn_id}': login must be the Sitoo API id "
                        "('{accountid}-{n}', e.g. 90316-1) or the host must end in /v2/accounts/{id}"
                    )
                self._prefix = f"/v2/accounts/{account_id}"
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> SitooHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated read (the first store), so a wrong API id, password or
        allow-list shows up before a DAG runs; the message never carries the password."""
        try:
            page = self.get_json("sites/1/stores.json", {"start": 0, "num": 1})
        except (ApiError, AuthError, requests.RequestException) as error:
            return False, str(error)
        finally:
            self.close()
        return True, f"Sitoo answered: {page.get('totalcount', 0)} store(s) visible to this API id"

    def get_json(self, endpoint: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``endpoint`` (relative to the account) with retries; returns the decoded JSON."""
        session = self.session()
        url = self.url_from_endpoint(self._prefix + "/" + endpoint.lstrip("/"))
        what = f"Sitoo GET /{endpoint.lstrip('/')}"

        def call() -> Any:
            response = session.get(url, params=params, timeout=self.timeout)
            self._raise_for_status(response, what)
            return response.json()

        return with_retries(call, self.retry, what)

    def _raise_for_status(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            text = str(response.json().get("errortext", ""))[:300]
        except (ValueError, AttributeError):
            text = response.text[:300]
        if status == 401:
            raise AuthError(
                f"{what}: Sitoo refused the credentials of connection '{self.sitoo_conn_id}' (401). "
                "Check the API id (login) and password, and that the worker IP is allow-listed.",
                status,
            )
        message = f"{what}: HTTP {status} {text}".strip()
        if status == 429 or status >= 500:
            raise TransientApiError(message, status, parse_retry_after(response))
        raise ApiError(message, status)

    # -- paging ----------------------------------------------------------------------------------

    def iter_collection(self, endpoint: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Page a ``{totalcount, items}`` collection with start/num until ``start >= totalcount``."""
        start = 0
        while True:
            page = self.get_json(endpoint, {**(params or {}), "start": start, "num": self.page_size})
            items = page.get("items") or []
            yield from items
            start += len(items)
            if not items or start >= int(page.get("totalcount", 0)):
                return

    def iter_order_payloads(
        self,
        orderid_from: int | None = None,
        orderid_to: int | None = None,
        orderdate_from: int | None = None,
        orderdate_to: int | None = None,
        **filters: Any,
    ) -> Iterator[dict]:
        """Raw order JSON in ascending ``orderid``, keyset-paged on ``orderidfrom``.

        Ascending keyset paging means a page never shifts under us while tills upload offline
        receipts (they get new, higher order ids). ``orderid_from`` is inclusive, ``orderid_to``
        exclusive, as in the API. Raw dicts, so a malformed order can still be stored and named.
        """
        params: dict[str, Any] = {"sort": "orderid", "fields": ORDER_FIELDS, "num": self.page_size}
        for key, value in {
            "orderidto": orderid_to,
            "orderdatefrom": orderdate_from,
            "orderdateto": orderdate_to,
            **filters,
        }.items():
            if value is not None:
                params[key] = ",".join(map(str, value)) if isinstance(value, list | tuple | set) else value
        next_from = orderid_from
        while True:
            page_params = dict(params)
            if next_from is not None:
                page_params["orderidfrom"] = next_from
            page = self.get_json("orders.json", page_params)
            items = page.get("items") or []
            yield from items
            if len(items) < self.page_size:
                return
            last = items[-1].get("orderid")
            if not isinstance(last, int):
                raise ApiError(
                    f"Sitoo GET /orders.json: page ends with an order without an integer orderid: {last!r}"
                )
            next_from = last + 1

    def iter_orders(self, **kwargs: Any) -> Iterator:
        """Typed orders; a malformed one raises ``SitooPayloadError`` naming the order and field."""
        for payload in self.iter_order_payloads(**kwargs):
            yield parse_order(payload)

    def get_order(self, orderid: int, eshopid: int = 1) -> dict:
        return self.get_json(f"sites/{eshopid}/orders/{orderid}.json")

    def iter_stores(self, eshopid: int = 1) -> Iterator[Store]:
        for item in self.iter_collection(f"sites/{eshopid}/stores.json"):
            yield parse(Store, item, f"store {item.get('storeid', '?')}")

    def iter_warehouses(self, eshopid: int = 1) -> Iterator[Warehouse]:
        for item in self.iter_collection(f"sites/{eshopid}/warehouses.json"):
            yield parse(Warehouse, item, f"warehouse {item.get('warehouseid', '?')}")

    def iter_products(self, eshopid: int = 1, **filters: Any) -> Iterator[Product]:
        for item in self.iter_collection(f"sites/{eshopid}/products.json", filters):
            yield parse(Product, item, f"product {item.get('productid', '?')}")

    def iter_warehouse_items(
        self, warehouseid: int, eshopid: int = 1, **filters: Any
    ) -> Iterator[WarehouseItem]:
        """Stock rows of one warehouse. Sitoo puts ``warehouseid`` in the URL only, not in the rows:
        the row gets it from the request (a row naming another warehouse is a payload error)."""
        endpoint = f"sites/{eshopid}/warehouses/{warehouseid}/warehouseitems.json"
        for item in self.iter_collection(endpoint, filters):
            record = f"warehouse item {warehouseid}/{item.get('sku', '?')}"
            body_wid = item.get("warehouseid")
            if body_wid is not None and body_wid != warehouseid:
                raise SitooPayloadError(
                    record,
                    "warehouseid",
                    "warehouseid.matches_url",
                    f"is {body_wid!r}, the URL asked for {warehouseid}",
                )
            yield parse(WarehouseItem, {**item, "warehouseid": warehouseid}, record)

    def iter_warehouse_transactions(self, eshopid: int = 1, **filters: Any) -> Iterator[WarehouseTransaction]:
        params = {"sort": "warehousetransactionid", **filters}
        for item in self.iter_collection(f"sites/{eshopid}/warehousetransactions.json", params):
            yield parse(
                WarehouseTransaction, item, f"warehouse transaction {item.get('warehousetransactionid', '?')}"
            )

    def iter_z_reports(
        self, dateadded_from: int, dateadded_to: int | None = None, **filters: Any
    ) -> Iterator[ZReport]:
        """``/pos-z-reports`` returns a bare array of at most 500, ascending ``dateadded``: re-query
        from the last ``dateadded`` (inclusive), skipping reports already yielded."""
        seen: set[tuple[str, int]] = set()
        cursor = dateadded_from
        while True:
            params = {"dateaddedfrom": cursor, **filters}
            if dateadded_to is not None:
                params["dateaddedto"] = dateadded_to
            batch = self.get_json("pos-z-reports", params)
            fresh = 0
            for item in batch:
                key = (str(item.get("registerid")), int(item.get("zreportid", -1)))
                if key in seen:
                    continue
                seen.add(key)
                fresh += 1
                yield parse(ZReport, item, f"z-report {key[0]}/{key[1]}")
            if len(batch) < MAX_Z_REPORTS_PER_CALL or not fresh:
                return
            cursor = int(batch[-1]["dateadded"])
