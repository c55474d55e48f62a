"""The operations page: a FastAPI app mounted in Airflow's API server, behind Airflow's own auth.

Every route depends on ``airflow.api_fastapi.core_api.security.requires_access_dag`` for the
``sitoo_sales_hourly`` DAG: reading needs GET on that DAG (a *viewer* may look), changing a mapping
or an exception needs PUT on it (whoever may run/edit the sales DAG may fix what stops it). The
user comes from Airflow's JWT (the ``_token`` cookie the Airflow UI sets at login, or an
``Authorization: Bearer`` header) through ``get_user``; a request without one gets 401, a bad
token 403, an authenticated user without the permission 403. The actor written to the audit log
is that user's name.

Server-rendered HTML (Jinja2, autoescape on): no build step, one round trip, and the page is
embedded in the Airflow UI's navigation (``external_views``, destination ``nav``).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import psycopg
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from include.sitoo_erp.operations import actions, queries
from include.sitoo_erp.operations.mapping_check import MappingChange

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
URL_PREFIX = "/sitoo-erp-ops"
SALES_DAG_ID = "sitoo_sales_hourly"
CONN_ID = "sitoo_erp_db"
SOURCE = "ui"

CanRead = Depends(requires_access_dag("GET", param_dag_id=SALES_DAG_ID))
CanEdit = Depends(requires_access_dag("PUT", param_dag_id=SALES_DAG_ID))

# Editable mapping tables on the page: table -> (label, key label, [(field, label)]).
MAPPING_FORMS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "map_sku_item": ("SKU → ERP item", "SKU", [("item_id", "ERP item id")]),
    "map_store_location": (
        "Store → ERP location",
        "Store (external id)",
        [
            ("location_id", "Location id"),
            ("customer_id", "Customer id"),
            ("subsidiary_id", "Subsidiary id"),
            ("timezone", "Timezone"),
        ],
    ),
    "map_tender_payment": (
        "Tender → payment method",
        "Tender name",
        [
            ("payment_method_id", "Payment method id"),
            ("is_gift_card", "Gift card (true/false)"),
            ("account_id", "Ledger account id (split tenders)"),
            ("via_journal", "Only via tender journal (true/false)"),
        ],
    ),
    "map_vat_tax_code": (
        "VAT rate → tax code",
        "VAT rate (%)",
        [("tax_code_id", "Tax code id"), ("tax_type_id", "Tax type id")],
    ),
    "map_document_item": (
        "Document item (loyalty, rounding, gift card, settlement)",
        "Purpose",
        [("item_id", "ERP item / account / method id")],
    ),
}
REQUIRED_FIELDS = {
    "item_id",
    "location_id",
    "customer_id",
    "subsidiary_id",
    "payment_method_id",
    "tax_code_id",
    "tax_type_id",
}
ERP_CONN_ID = "netsuite_default"
# Exception subject keys name the cause: ``…:sku=SKU-1``, ``…:vat_rate=12.5``, ``stock:store:ST01``.
CAUSE_TABLE = {
    "sku": "map_sku_item",
    "store": "map_store_location",
    "tender": "map_tender_payment",
    "vat_rate": "map_vat_tax_code",
    "document_item": "map_document_item",
}
_CAUSE = re.compile(r"(?:^|:)(sku|store|tender|vat_rate|document_item)[=:]([^:]+)$")


class _Pool:
    """A few autocommit connections to the staging DB, reused across requests (thread-safe)."""

    def __init__(self, size: int = 4) -> None:
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._size = size
        self._lock = threading.Lock()

    def _new(self) -> psycopg.Connection:
        from include.sitoo_erp.staging.db import connect_airflow

        return connect_airflow(CONN_ID)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._new()
        broken = False
        try:
            yield conn
        except psycopg.OperationalError:
            broken = True
            raise
        finally:
            if broken or conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.close()
            elif self._idle.qsize() < self._size:
                self._idle.put(conn)
            else:
                conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


POOL = _Pool()


class _TtlCache:
    """Aggregates that may be seconds old (counts over every open exception, the month's variance)
    are computed at most once per ``ttl`` per process; the queue itself is always live."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, ttl: float, compute):
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = compute()
        with self._lock:
            if len(self._values) > 64:
                self._values.clear()
            self._values[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


CACHE = _TtlCache()
COUNTS_TTL = 15.0  # seconds
VARIANCE_TTL = 120.0

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _age(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 0:
        return "0m"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def _dt(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


env.filters["age"] = _age
env.filters["dt"] = _dt


def _mapping_hint(row: dict[str, Any]) -> tuple[str, str] | None:
    """Which mapping would fix this exception, and its key, when the row says so (every kind a
    mapping fixes: unknown or inactive SKU, tender, store, VAT rate, document item)."""
    kind, subject = row.get("kind"), row.get("subject_key") or ""
    if kind in ("unknown_sku", "inactive_item") and row.get("sku"):
        return "map_sku_item", row["sku"]
    if kind not in ("unknown_sku", "inactive_item", "missing_mapping", "tender_mismatch"):
        return None
    match = _CAUSE.search(subject)
    if match is None:
        if (
            kind == "missing_mapping"
            and row.get("field") == "store_externalid"
            and row.get("store_externalid")
        ):
            return "map_store_location", row["store_externalid"]
        return None
    return CAUSE_TABLE[match.group(1)], match.group(2)


def _erp():
    from include.sitoo_erp.erp import get_erp_adapter

    return get_erp_adapter(ERP_CONN_ID)


def _same_origin(request: Request) -> None:
    """POSTs must come from this site (the session cookie is SameSite=Lax too)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(status_code=403, detail="cross-site form post refused")


def _back(request: Request, **params: str) -> RedirectResponse:
    """Back to the page (keeping its filters), with a message; 303 so a reload does not re-post."""
    keep = {
        k: v for k, v in request.query_params.items() if k in ("kind", "store", "owner", "min_age", "history")
    }
    keep.update({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{URL_PREFIX}/?{urlencode(keep)}", status_code=303)


def _filters(kind: str | None, store: str | None, owner: str | None, min_age: str | None):
    return queries.ExceptionFilters(
        kind=kind or None,
        store=store or None,
        owner=owner or None,
        min_age=min_age if min_age in queries.MIN_AGES else None,
    )


def _page_data(
    conn: psycopg.Connection,
    filters: queries.ExceptionFilters,
    after: str | None,
    history: str | None = None,
    history_after: str | None = None,
) -> dict:
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[name] = round((time.perf_counter() - t0) * 1000, 1)

    page = timed("exceptions", queries.open_exceptions, conn, filters, after)
    # Cached aggregates are keyed by what moves when data changes (a new exception, gate run or
    # audited edit): three primary-key lookups, so a fresh run shows at once, and the TTL bounds the rest.
    version = conn.execute(
        "select (select max(exception_id) from sitoo_erp.exception), "
        "(select max(gate_run_id) from sitoo_erp.gate_run), (select max(audit_id) from sitoo_erp.audit_log)"
    ).fetchone()
    for row in page.rows:
        row["fix"] = _mapping_hint(row)
    data = {
        "page": page,
        "counts": timed(
            "counts",
            CACHE.get,
            f"counts:{version}:{sorted(filters.as_params().items())}",
            COUNTS_TTL,
            lambda: queries.open_counts(conn, filters),
        ),
        "history": timed("history", queries.closed_exceptions, conn, filters, history, history_after),
        "owners": timed("owners", _owners, conn),
        "choices": timed("choices", queries.filter_choices, conn),
        "stalled": timed("stalled", queries.stalled_receipts, conn),
        "stalled_orders": timed("stalled_orders", queries.stalled_orders, conn),
        "variance": timed(
            "variance",
            CACHE.get,
            f"variance:{version}",
            VARIANCE_TTL,
            lambda: queries.month_tax_variance(conn),
        ),
        "reconciliation": timed("reconciliation", queries.reconciliation_status, conn),
        "summaries": timed("summaries", queries.summary_documents, conn),
        "edits": timed("edits", queries.recent_mapping_edits, conn),
    }
    runs = timed("dag_runs", queries.last_dag_runs, conn)  # our own run history (sitoo_erp.task_run)
    gates = timed("gate_runs", queries.gate_runs_for, conn, [(r["dag_id"], r["run_id"]) for r in runs])
    for run in runs:
        run["gate"] = gates.get((run["dag_id"], run["run_id"]))
    data["runs"] = runs
    data["timings"] = timings
    return data


def _owners(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every exception kind with its owning team (the table's, else the built-in default)."""
    from include.sitoo_erp.staging.exceptions import DEFAULT_OWNER, ExceptionKind

    rows = {r["kind"]: r for r in queries.exception_owners(conn)}
    kinds = sorted({*rows, *(str(k) for k in ExceptionKind)})
    return [
        rows.get(k)
        or {"kind": k, "owner": DEFAULT_OWNER.get(ExceptionKind(k), "retail_ops"), "updated_by": None}
        for k in kinds
    ]


def create_app() -> FastAPI:
    app = FastAPI(
        title="Sitoo → ERP operations",
        description="Exception queue, stalled receipts, runs, tax variance, reconciliation and mapping fixes.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        # Browsers get a page with a way to log in; API clients get Airflow's usual JSON.
        if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            html = env.get_template("denied.html").render(
                status=exc.status_code, detail=exc.detail, login=login
            )
            return HTMLResponse(html, status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse, dependencies=[CanRead])
    def page(
        request: Request,
        user: GetUserDep,
        kind: str | None = None,
        store: str | None = None,
        owner: str | None = None,
        min_age: str | None = None,
        after: str | None = None,
        history: str | None = None,
        history_after: str | None = None,
        msg: str | None = None,
        err: str | None = None,
    ) -> HTMLResponse:
        t0 = time.perf_counter()
        filters = _filters(kind, store, owner, min_age)
        history = history if history in queries.HISTORY_STATUSES else None
        with POOL.connection() as conn:
            data = _page_data(conn, filters, after, history, history_after)
        can_edit = _can_edit(user)
        html = env.get_template("page.html").render(
            prefix=URL_PREFIX,
            user=user.get_name(),
            can_edit=can_edit,
            filters=filters,
            filter_query=urlencode(filters.as_params()),
            with_filter=lambda name, value: urlencode({**filters.as_params(), name: value or ""}),
            min_ages=list(queries.MIN_AGES),
            mapping_forms=MAPPING_FORMS,
            required_fields=REQUIRED_FIELDS,
            history_status=history,
            history_statuses=queries.HISTORY_STATUSES,
            msg=msg,
            err=err,
            **data,
        )
        elapsed = (time.perf_counter() - t0) * 1000
        return HTMLResponse(html, headers={"Server-Timing": f"page;dur={elapsed:.1f}"})

    @app.get("/api/exceptions", dependencies=[CanRead])
    def api_exceptions(
        kind: str | None = None,
        store: str | None = None,
        owner: str | None = None,
        min_age: str | None = None,
        after: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = queries.PAGE_SIZE,
    ) -> dict:
        with POOL.connection() as conn:
            page = queries.open_exceptions(
                conn, _filters(kind, store, owner, min_age), after, page_size=limit
            )
        return {
            "filters": page.filters.as_params(),
            "next": page.next_cursor,
            "rows": [
                {
                    **{k: v for k, v in r.items() if k != "age"},
                    "age_seconds": int(r["age"].total_seconds()),
                }
                for r in page.rows
            ],
        }

    @app.get("/api/history", dependencies=[CanRead])
    def api_history(
        kind: str | None = None,
        store: str | None = None,
        owner: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 25,
    ) -> dict:
        with POOL.connection() as conn:
            page = queries.closed_exceptions(
                conn, _filters(kind, store, owner, None), status, after, page_size=limit
            )
        return {"next": page.next_cursor, "rows": page.rows}

    @app.get("/api/summary", dependencies=[CanRead])
    def api_summary() -> dict:
        with POOL.connection() as conn:
            data = _page_data(conn, queries.ExceptionFilters(), None)
        stalled = data["stalled"]
        return {
            "counts": data["counts"],
            "stalled": {"grid": stalled["grid"], "total": stalled["total"]},
            "variance": data["variance"],
            "reconciliation": {
                "available": data["reconciliation"]["available"],
                "stores": data["reconciliation"]["stores"],
            },
            "summaries": data["summaries"],
            "runs": [{k: v for k, v in r.items() if k != "duration"} for r in data["runs"]],
            "edits": data["edits"],
            "timings_ms": data["timings"],
        }

    @app.post("/mappings", dependencies=[CanEdit])
    async def edit_mapping(request: Request, user: GetUserDep) -> RedirectResponse:
        _same_origin(request)
        form = await request.form()
        table = str(form.get("table") or "")
        if table not in MAPPING_FORMS:
            return _back(request, err=f"unknown mapping table {table!r}")
        fields = [f for f, _ in MAPPING_FORMS[table][2]]
        values: dict[str, Any] = {f: str(form.get(f) or "").strip() or None for f in fields}
        if table == "map_tender_payment":
            values["is_gift_card"] = str(form.get("is_gift_card") or "").lower() in ("1", "true", "yes", "on")
        key = str(form.get("key") or "").strip()
        note = str(form.get("note") or "").strip() or None
        change = MappingChange(table, key, {k: v for k, v in values.items() if v is not None})
        try:
            erp = _erp()
            try:
                with POOL.connection() as conn:
                    saved = actions.save_mappings(
                        conn, erp, [change], actor=user.get_name(), source=SOURCE, note=note
                    )
            finally:
                erp.close()
        except actions.ActionError as exc:
            return _back(request, err=str(exc))
        except Exception as exc:  # the ERP could not be asked: nothing is saved unchecked
            log.exception("sitoo-erp-ops: mapping check failed")
            return _back(
                request, err=f"{table} {key}: not saved, the ERP could not be asked ({type(exc).__name__})"
            )
        CACHE.clear()
        closed = len(saved[0]["closed"])
        return _back(
            request,
            msg=f"{MAPPING_FORMS[table][0]}: {key} saved (audit #{saved[0]['audit_id']}), checked against the ERP; "
            f"{closed} exception(s) it fixes closed; the next run re-posts the receipts",
        )

    @app.post("/owners", dependencies=[CanEdit])
    def change_owner(
        request: Request,
        user: GetUserDep,
        kind: Annotated[str, Form()] = "",
        owner: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        _same_origin(request)
        from include.sitoo_erp.staging.exceptions import ExceptionKind

        if kind not in {str(k) for k in ExceptionKind}:
            return _back(request, err=f"unknown exception kind {kind!r}")
        try:
            with POOL.connection() as conn:
                audit_id = actions.set_owner(conn, kind, owner, actor=user.get_name(), source=SOURCE)
        except actions.ActionError as exc:
            return _back(request, err=str(exc))
        CACHE.clear()
        return _back(
            request, msg=f"{kind} now owned by {owner.strip()} (audit #{audit_id}); open ones moved too"
        )

    @app.post("/exceptions/{exception_id}/ignore", dependencies=[CanEdit])
    def ignore(
        request: Request, exception_id: int, user: GetUserDep, reason: Annotated[str, Form()] = ""
    ) -> RedirectResponse:
        _same_origin(request)
        try:
            with POOL.connection() as conn:
                actions.ignore_exception(conn, exception_id, reason, actor=user.get_name(), source=SOURCE)
        except actions.ActionError as exc:
            return _back(request, err=str(exc))
        CACHE.clear()
        return _back(request, msg=f"exception {exception_id} ignored")

    @app.post("/exceptions/{exception_id}/resolve", dependencies=[CanEdit])
    def resolve(
        request: Request, exception_id: int, user: GetUserDep, note: Annotated[str, Form()] = ""
    ) -> RedirectResponse:
        _same_origin(request)
        try:
            with POOL.connection() as conn:
                actions.resolve_exception(conn, exception_id, note, actor=user.get_name(), source=SOURCE)
        except actions.ActionError as exc:
            return _back(request, err=str(exc))
        CACHE.clear()
        return _back(request, msg=f"exception {exception_id} resolved")

    return app


def _can_edit(user) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    try:
        return get_auth_manager().is_authorized_dag(
            method="PUT", details=DagDetails(id=SALES_DAG_ID), user=user
        )
    except Exception:  # a page that hides the forms is better than no page
        log.exception("sitoo-erp-ops: permission check failed")
        return False


app = create_app()
