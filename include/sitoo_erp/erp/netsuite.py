"""NetSuiteHook: NetSuite REST records + SuiteQL, the reference ``ErpAdapter``.

Connection ``netsuite_default`` (type http):

- host (+ schema, port): the account's REST host, e.g. ``https://1234567-sb1.suitetalk.api.netsuite.com``;
- login: the OAuth 2.0 M2M integration's client id;
- password: the PEM private key whose certificate is mapped under *OAuth 2.0 Client Credentials*;
- extra ``{"netsuite": {"certificate_id": "...", "algorithm": "PS256"}}``. The settings sit under one
  nested key that this hook removes before the http provider would turn it into a header.

Tokens are cached until a minute before expiry and refreshed once on a 401. Upserts use
``PUT /record/v1/{type}/eid:{externalId}``, so a retry after a timeout (even one that came after
the ERP committed) can never create a second document.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, overload

import jwt
import requests
from airflow.providers.http.hooks.http import HttpHook

from include.sitoo_erp.erp import netsuite_ledger
from include.sitoo_erp.erp.adapter import (
    DocumentKind,
    ErpCell,
    ErpDocument,
    ErpItem,
    ErpReceiptRow,
    ErpRejected,
    MasterKind,
    MasterRecord,
    OnHand,
    PostResult,
    StockAdjustment,
)
from include.sitoo_erp.erp.netsuite_documents import RECORD_TYPES
from include.sitoo_erp.http_retry import (
    ApiError,
    AuthError,
    RetryPolicy,
    TransientApiError,
    parse_retry_after,
    with_retries,
)

if TYPE_CHECKING:
    from include.sitoo_erp.posting.documents import DayTenderJournal, LedgerDocument

# SuiteQL ``transaction.type`` of each record type (what the ERP says when asked by externalId).
TRANSACTION_TYPES: dict[str, DocumentKind] = {
    "CashSale": DocumentKind.SALE,
    "CashRfnd": DocumentKind.REFUND,
    "CustCred": DocumentKind.CREDIT_MEMO,
    "InvAdjst": DocumentKind.STOCK_ADJUSTMENT,
}
# SuiteQL of each master kind: table, name column, and the columns a mapping must agree with.
MASTER_QUERIES: dict[MasterKind, str] = {
    MasterKind.ITEM: "SELECT id, itemid AS name, isinactive, itemtype FROM item",
    MasterKind.LOCATION: "SELECT id, name, isinactive, subsidiary FROM location",
    MasterKind.CUSTOMER: "SELECT id, entityid AS name, isinactive, subsidiary FROM customer",
    MasterKind.SUBSIDIARY: "SELECT id, name, isinactive FROM subsidiary",
    MasterKind.PAYMENT_METHOD: "SELECT id, name, isinactive FROM paymentmethod",
    MasterKind.ACCOUNT: "SELECT id, name, isinactive FROM account",
    MasterKind.TAX_CODE: "SELECT id, itemid AS name, isinactive, rate, taxtype FROM salestaxitem",
    MasterKind.TAX_TYPE: "SELECT id, name FROM taxtype",
}
EXTRA_KEY = "netsuite"
SUITEQL_PAGE = 1000
SKU_LOOKUP_CHUNK = 1000
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path, not a secret


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _BearerAuth(requests.auth.AuthBase):
    def __init__(self, hook: NetSuiteHook) -> None:
        self.hook = hook

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not (request.url or "").endswith(TOKEN_PATH):
            request.headers["Authorization"] = f"Bearer {self.hook.access_token()}"
        return request


class NetSuiteHook(HttpHook):
    """NetSuite over REST: token caching, idempotent upserts, SuiteQL paging, sorted errors."""

    conn_name_attr = "netsuite_conn_id"
    default_conn_name = "netsuite_default"
    conn_type = "http"
    hook_name = "NetSuite (REST + SuiteQL)"
    name = "netsuite"

    def __init__(
        self,
        netsuite_conn_id: str = default_conn_name,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        **kwargs: Any,
    ) -> None:
        if "adapter" not in kwargs:
            # Posting workers share one session: keep a connection per worker (requests' default
            # pool of 10 would open a fresh connection per request beyond 10 workers).
            from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

            kwargs["adapter"] = TCPKeepAliveAdapter(
                idle=120, count=20, interval=30, pool_connections=4, pool_maxsize=max_connections
            )
        super().__init__(method="GET", http_conn_id=netsuite_conn_id, **kwargs)
        self.netsuite_conn_id = netsuite_conn_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self.token_requests = 0

    # -- session and token ----------------------------------------------------------------------

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """HttpHook's session, with the M2M bearer token as its auth (``auth_type``, the provider's
        public hook for it: the connection's login/password are the client id and the PEM key, never
        sent as Basic auth) and without our settings key, which HttpHook would send as a header."""
        self.auth_type = lambda *_: _BearerAuth(self)
        session = super().get_conn(headers, extra_options)
        session.headers.pop(EXTRA_KEY, None)  # our settings, not an HTTP header
        return session

    def session(self) -> requests.Session:
        with self._session_lock:
            if self._session is None:
                self._session = self.get_conn()
            return self._session

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def __enter__(self) -> NetSuiteHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """A fresh M2M token and one SuiteQL read: proves the certificate, the role's REST and
        SuiteQL permissions and the account URL at once (the message never carries the key)."""
        try:
            self.access_token(force=True)
            rows = (
                self.request(
                    "POST",
                    "/query/v1/suiteql?limit=1&offset=0",
                    "NetSuite SuiteQL",
                    json={"q": "SELECT id FROM location"},
                    headers={"Prefer": "transient", "Content-Type": "application/json"},
                )
                .json()
                .get("items", [])
            )
        except (ApiError, AuthError, requests.RequestException) as error:
            return False, str(error)
        finally:
            self.close()
        return True, f"NetSuite answered: token issued, SuiteQL read {len(rows)} location row(s)"

    def _settings(self) -> dict[str, Any]:
        return dict(self.get_connection(self.netsuite_conn_id).extra_dejson.get(EXTRA_KEY) or {})

    def _client_assertion(self, token_url: str) -> str:
        conn = self.get_connection(self.netsuite_conn_id)
        settings = self._settings()
        if not conn.login or not conn.password or not settings.get("certificate_id"):
            raise AuthError(
                f"connection '{self.netsuite_conn_id}' needs login (client id), password (PEM private key) "
                f'and extra {{"{EXTRA_KEY}": {{"certificate_id": ...}}}}'
            )
        now = int(time.time())
        claims = {
            "iss": conn.login,
            "scope": settings.get("scope", "rest_webservices"),
            "aud": token_url,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
        algorithm = settings.get("algorithm", "PS256")
        try:
            return jwt.encode(
                claims,
                conn.password,
                algorithm=algorithm,
                headers={"kid": settings["certificate_id"], "typ": "JWT"},
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(
                f"connection '{self.netsuite_conn_id}': cannot sign the client assertion with {algorithm} "
                f"({type(exc).__name__}); the password must be the PEM private key"
            ) from None

    def access_token(self, force: bool = False) -> str:
        with self._token_lock:
            if not force and self._token and time.time() < self._token_expires - 60:
                return self._token
            session = self.session()
            token_url = self.url_from_endpoint(TOKEN_PATH)
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._client_assertion(token_url),
            }

            def call() -> dict[str, Any]:
                response = session.post(token_url, data=form, timeout=self.timeout)
                if response.status_code in (400, 401, 403):
                    raise AuthError(
                        f"NetSuite refused the M2M token request for connection '{self.netsuite_conn_id}' "
                        f"(HTTP {response.status_code}): {self._error_text(response)}",
                        response.status_code,
                    )
                self._raise_for_status(response, "NetSuite token")
                return response.json()

            payload = with_retries(call, self.retry, "NetSuite token")
            self.token_requests += 1
            self._token = payload["access_token"]
            self._token_expires = time.time() + float(payload.get("expires_in", 3600))
            return self._token

    # -- transport ------------------------------------------------------------------------------

    @staticmethod
    def _error_text(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:300]
        details = body.get("o:errorDetails") or []
        if details:
            return "; ".join(
                f"{d.get('o:errorCode', '')}: {d.get('detail', '')}".strip(": ") for d in details
            )[:600]
        return str(body.get("title") or body.get("error") or body)[:300]

    def _raise_for_status(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        text = self._error_text(response)
        if status == 429 or status >= 500:
            raise TransientApiError(f"{what}: HTTP {status} {text}", status, parse_retry_after(response))
        if status == 401:
            raise AuthError(f"{what}: HTTP 401 {text}", status)
        if status in (400, 403, 409):
            try:
                detail = (response.json().get("o:errorDetails") or [{}])[0]
            except (ValueError, AttributeError, IndexError):
                detail = {}
            raise ErpRejected(
                f"{what}: rejected by NetSuite (HTTP {status}): {text}",
                status,
                code=str(detail.get("o:errorCode", "")),
                detail=str(detail.get("detail", text)),
            )
        raise ApiError(f"{what}: HTTP {status} {text}", status)

    @overload
    def request(
        self,
        method: str,
        path: str,
        what: str,
        ok_404: Literal[False] = False,
        tally: list[int] | None = None,
        **kwargs: Any,
    ) -> requests.Response: ...

    @overload
    def request(
        self, method: str, path: str, what: str, ok_404: bool, tally: list[int] | None = None, **kwargs: Any
    ) -> requests.Response | None: ...

    def request(
        self,
        method: str,
        path: str,
        what: str,
        ok_404: bool = False,
        tally: list[int] | None = None,
        **kwargs: Any,
    ) -> requests.Response | None:
        """One call with retries; a 401 refreshes the token once. ``path`` starts at /services/rest.

        ``tally``, if given, gets one entry per attempt (the posting log records attempts).
        None only for a 404 under ``ok_404``.
        """
        url = self.url_from_endpoint("/services/rest" + path)
        refreshed = False

        def call() -> requests.Response | None:
            nonlocal refreshed
            if tally is not None:
                tally.append(1)
            response = self.session().request(method, url, timeout=self.timeout, **kwargs)
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self.access_token(force=True)
                response = self.session().request(method, url, timeout=self.timeout, **kwargs)
            if ok_404 and response.status_code == 404:
                return None
            self._raise_for_status(response, what)
            return response

        return with_retries(call, self.retry, what)

    # -- ErpAdapter -------------------------------------------------------------------------------

    def upsert_document(self, kind: DocumentKind, external_id: str, body: Mapping[str, Any]) -> PostResult:
        record = RECORD_TYPES[kind]
        tally: list[int] = []
        response = self.request(
            "PUT",
            f"/record/v1/{record}/eid:{external_id}",
            f"NetSuite PUT {record} {external_id}",
            tally=tally,
            json=dict(body),
            headers={"Content-Type": "application/json"},
        )
        location = response.headers.get("Location", "") if response is not None else ""
        erp_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not erp_id or erp_id.startswith("eid:"):
            found = self.find_document(kind, external_id)
            if not found:
                raise ApiError(
                    f"NetSuite PUT {record} {external_id}: no Location header and no document found"
                )
            erp_id = str(found["id"])
        return PostResult(external_id=external_id, erp_id=erp_id, attempts=len(tally))

    def post_document(self, document: LedgerDocument, created_from_erp_id: str | None = None) -> PostResult:
        """Render an ERP-neutral ledger document as a NetSuite record and upsert it by externalId.

        A split-tender receipt is two records, each upserted under its own externalId: the cash
        sale/refund on the POS settlement method, then its tender journal. A retry re-PUTs both.
        """
        from include.sitoo_erp.erp.netsuite_documents import render_netsuite, render_tender_journal

        main = self.upsert_document(
            document.kind, document.external_id, render_netsuite(document, created_from_erp_id)
        )
        if document.tender_journal is None:
            return main
        journal = self.upsert_document(
            DocumentKind.TENDER_JOURNAL,
            document.tender_journal.external_id,
            render_tender_journal(document),
        )
        return PostResult(
            external_id=main.external_id,
            erp_id=main.erp_id,
            attempts=main.attempts + journal.attempts,
            related=(journal,),
        )

    def post_tender_journal(self, journal: DayTenderJournal) -> PostResult:
        """Upsert a business day's tender journal (many summary documents' tenders) by externalId."""
        from include.sitoo_erp.erp.netsuite_documents import render_day_tender_journal

        return self.upsert_document(
            DocumentKind.TENDER_JOURNAL, journal.external_id, render_day_tender_journal(journal)
        )

    def post_stock_adjustment(self, adjustment: StockAdjustment) -> PostResult:
        """Upsert a store-day's ``inventoryAdjustment`` by externalId."""
        from include.sitoo_erp.erp.netsuite_documents import render_stock_adjustment

        return self.upsert_document(
            DocumentKind.STOCK_ADJUSTMENT, adjustment.external_id, render_stock_adjustment(adjustment)
        )

    def find_document(self, kind: DocumentKind, external_id: str) -> dict[str, Any] | None:
        record = RECORD_TYPES[kind]
        response = self.request(
            "GET",
            f"/record/v1/{record}/eid:{external_id}",
            f"NetSuite GET {record} {external_id}",
            ok_404=True,
        )
        return None if response is None else response.json()

    def find_external_ids(self, external_ids: Iterable[str]) -> dict[tuple[DocumentKind, str], str]:
        """SuiteQL ``transaction`` by externalId, 1,000 keys a query: ``{(kind, external_id): erp_id}``."""
        found: dict[tuple[DocumentKind, str], str] = {}
        unique = sorted({e for e in external_ids if e})
        for start in range(0, len(unique), SKU_LOOKUP_CHUNK):
            chunk = unique[start : start + SKU_LOOKUP_CHUNK]
            sql = (
                "SELECT t.id, t.externalid, t.type FROM transaction t WHERE t.externalid IN ("
                + ", ".join(_sql_literal(e) for e in chunk)
                + ") ORDER BY t.id"
            )
            for row in self.query(sql):
                kind = TRANSACTION_TYPES.get(str(row.get("type", "")))
                if kind is not None:
                    found[(kind, str(row["externalid"]))] = str(row["id"])
        return found

    def query(self, sql: str) -> Iterator[dict[str, Any]]:
        """SuiteQL, all pages (``limit`` 1000, ``offset`` until ``hasMore`` is false)."""
        offset = 0
        while True:
            response = self.request(
                "POST",
                f"/query/v1/suiteql?limit={SUITEQL_PAGE}&offset={offset}",
                "NetSuite SuiteQL",
                json={"q": sql},
                headers={"Prefer": "transient", "Content-Type": "application/json"},
            )
            page = response.json()
            items = page.get("items") or []
            for row in items:
                row.pop("links", None)
                yield row
            if not page.get("hasMore") or not items:
                return
            offset += len(items)

    # The reconciliation's reads: SuiteQL in ``netsuite_ledger``, paged by ``query``.
    def ledger_totals(
        self,
        days: Sequence[date],
        location_ids: Sequence[str] | None,
        rows_per_day: int,
        days_per_query: int | None = None,
    ) -> tuple[list[ErpCell], dict[tuple[str, date], int], int]:
        per_query = days_per_query or netsuite_ledger.days_per_page(rows_per_day, 1, SUITEQL_PAGE)
        return netsuite_ledger.fetch_totals(self.query, days, location_ids, per_query)

    def ledger_receipt_rows(
        self, days: Sequence[date], location_ids: Sequence[str] | None
    ) -> tuple[list[ErpReceiptRow], int]:
        return netsuite_ledger.fetch_receipt_rows(self.query, days, location_ids)

    def ledger_documents(self, day: date, location_id: str) -> list[ErpDocument]:
        return netsuite_ledger.fetch_documents(self.query, day, location_id)

    def lookup_items(self, skus: Iterable[str]) -> dict[str, ErpItem]:
        found: dict[str, ErpItem] = {}
        unique = sorted({s for s in skus if s})
        for start in range(0, len(unique), SKU_LOOKUP_CHUNK):
            chunk = unique[start : start + SKU_LOOKUP_CHUNK]
            sql = (
                "SELECT id, itemid, isinactive FROM item WHERE itemid IN ("
                + ", ".join(_sql_literal(s) for s in chunk)
                + ") ORDER BY id"
            )
            for row in self.query(sql):
                found[str(row["itemid"])] = ErpItem(
                    sku=str(row["itemid"]), item_id=str(row["id"]), is_inactive=row.get("isinactive") == "T"
                )
        return found

    def iter_on_hand(self, location_ids: Iterable[str]) -> Iterator[OnHand]:
        for location_id in location_ids:
            if not str(location_id).isdigit():
                raise ValueError(f"location id must be numeric, got {location_id!r}")
            sql = (
                "SELECT iil.item AS item_id, i.itemid AS sku, iil.location AS location_id, "
                "iil.quantityonhand AS on_hand, iil.quantityavailable AS available "
                "FROM inventoryitemlocations iil JOIN item i ON i.id = iil.item "
                f"WHERE iil.location = {int(location_id)} ORDER BY iil.item"
            )
            for row in self.query(sql):
                yield OnHand(
                    location_id=str(row["location_id"]),
                    item_id=str(row["item_id"]),
                    sku=str(row["sku"]),
                    on_hand=Decimal(str(row.get("on_hand") or 0)),
                    available=Decimal(str(row.get("available") or 0)),
                )

    def lookup_master(self, kind: MasterKind, ids: Iterable[str]) -> dict[str, MasterRecord]:
        """Master records by internal id through SuiteQL (ids are numeric in NetSuite; others are absent)."""
        wanted = sorted({str(i).strip() for i in ids if str(i).strip().isdigit()}, key=int)
        found: dict[str, MasterRecord] = {}
        for start in range(0, len(wanted), SKU_LOOKUP_CHUNK):
            chunk = wanted[start : start + SKU_LOOKUP_CHUNK]
            sql = f"{MASTER_QUERIES[kind]} WHERE id IN ({', '.join(chunk)}) ORDER BY id"
            for row in self.query(sql):
                rate = row.get("rate")
                found[str(row["id"])] = MasterRecord(
                    kind=kind,
                    id=str(row["id"]),
                    name=str(row.get("name") or ""),
                    is_inactive=row.get("isinactive") == "T",
                    subsidiary_id=str(row["subsidiary"]) if row.get("subsidiary") not in (None, "") else None,
                    rate=Decimal(str(rate)) if rate not in (None, "") else None,
                    tax_type_id=str(row["taxtype"]) if row.get("taxtype") not in (None, "") else None,
                    item_type=str(row["itemtype"]) if row.get("itemtype") else None,
                )
        return found
