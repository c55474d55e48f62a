"""Store stock movements that are not sales into ERP inventory adjustments: one per store per day.

Sales (30) and refunds (40) already moved ERP stock through the hourly postings. Every other Sitoo
warehouse transaction of a store warehouse — stock counts (50), move in (10), move out (20) and any
manual/shipment type — is staged line by line in ``sitoo_erp.stock_movement`` and summed per store,
business day and SKU into one ``inventoryAdjustment`` keyed ``SITOO-ADJ-{store}-{yyyymmdd}``.

- ``adjustQtyBy`` is the signed sum of the day's Sitoo deltas (a stock count's line is already the
  counted-minus-book delta). The adjustment carries *movements*, never "Sitoo level minus ERP
  level": drift between the systems is reported (``stock.snapshot``), not silently overwritten.
- The upsert by externalId makes re-runs harmless: the same day gives the same document, a late
  movement for the day updates it in place (the ERP re-applies stock as a delta).
- A SKU without an ERP item, a warehouse without a store→location mapping, or a missing adjustment
  account quarantines exactly those lines with an exception naming the key; the rest post. Days with
  quarantined lines are tried again on every run, so a fixed mapping posts them (the upsert replaces
  the day's document with all its lines) and resolves the exceptions.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.erp.adapter import (
    AdjustmentLine,
    DocumentKind,
    ErpAdapter,
    ErpRejected,
    StockAdjustment,
)
from include.sitoo_erp.http_retry import TransientApiError
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception, resolve_subjects

log = logging.getLogger(__name__)

SALE_TYPES = frozenset({30, 40})  # posted hourly as cash sales / refunds
ADJUSTMENT_ACCOUNT_PURPOSE = "stock_adjustment_account"
DOCUMENT_TYPE = str(DocumentKind.STOCK_ADJUSTMENT)
TYPE_NAMES = {10: "move in", 20: "move out", 50: "stock count"}


def adjustment_external_id(store_externalid: str, business_date: date) -> str:
    return f"SITOO-ADJ-{store_externalid}-{business_date:%Y%m%d}"


@dataclass(frozen=True)
class StoreWarehouse:
    """A Sitoo warehouse that belongs to a store, with the store's ERP mapping (None when unmapped)."""

    warehouseid: int
    store_externalid: str | None
    location_id: str | None = None
    subsidiary_id: str | None = None
    timezone: str = DEFAULT_TIMEZONE


def store_warehouses(conn: psycopg.Connection, warehouses: Iterable[Any], stores: Iterable[Any]) -> dict:
    """``warehouseid -> StoreWarehouse`` for every warehouse in a store (Sitoo ``Warehouse``/``Store``)."""
    externalid = {s.storeid: s.externalid for s in stores}
    mapping = {
        r[0]: r[1:]
        for r in conn.execute(
            "select store_externalid, location_id, subsidiary_id, timezone from sitoo_erp.map_store_location"
        ).fetchall()
    }
    out: dict[int, StoreWarehouse] = {}
    for w in warehouses:
        if w.storeid is None:
            continue  # central/online warehouses are not store stock
        store = externalid.get(w.storeid)
        loc, sub, tz = mapping.get(store, (None, None, DEFAULT_TIMEZONE))
        out[w.warehouseid] = StoreWarehouse(w.warehouseid, store, loc, sub, tz or DEFAULT_TIMEZONE)
    return out


def local_date(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def stage_movements(
    conn: psycopg.Connection, transactions: Iterable[Any], warehouses: dict[int, StoreWarehouse]
) -> dict[str, int]:
    """Stage the non-sale lines of store-warehouse transactions (COPY; re-staging is a no-op)."""
    seen = skipped_sales = skipped_other = lines = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "create temp table if not exists _movement_in (like sitoo_erp.stock_movement including defaults) "
            "on commit drop"
        )
        with cur.copy(
            "copy _movement_in (warehousetransactionid, line_no, warehouseid, store_externalid, business_date, "
            "datecreated, transactiontype, reasoncode, sku, quantity, money_value) from stdin"
        ) as copy:
            for tx in transactions:
                seen += 1
                if tx.transactiontype in SALE_TYPES:
                    skipped_sales += 1
                    continue
                wh = warehouses.get(tx.warehouseid)
                if wh is None:
                    skipped_other += 1
                    continue
                day = local_date(tx.datecreated, wh.timezone)
                for n, item in enumerate(tx.items):
                    lines += 1
                    copy.write_row(
                        (
                            tx.warehousetransactionid,
                            n,
                            tx.warehouseid,
                            wh.store_externalid,
                            day,
                            tx.datecreated,
                            tx.transactiontype,
                            tx.reasoncode,
                            item.sku,
                            item.decimalquantity,
                            item.moneyvalue,
                        )
                    )
        inserted = cur.execute(
            "insert into sitoo_erp.stock_movement (warehousetransactionid, line_no, warehouseid, store_externalid, "
            "business_date, datecreated, transactiontype, reasoncode, sku, quantity, money_value) "
            "select warehousetransactionid, line_no, warehouseid, store_externalid, business_date, datecreated, "
            "transactiontype, reasoncode, sku, quantity, money_value from _movement_in "
            "on conflict (warehousetransactionid, line_no) do nothing"
        ).rowcount
    return {
        "transactions": seen,
        "sales_and_refunds_skipped": skipped_sales,
        "not_store_warehouse": skipped_other,
        "movement_lines": lines,
        "new_lines": inserted,
    }


@dataclass
class AdjustmentSummary:
    business_dates: list[str] = field(default_factory=list)
    documents: int = 0
    lines_posted: int = 0
    lines_quarantined: int = 0
    zero_net_skus: int = 0
    rejected: int = 0
    transient_failures: int = 0
    external_ids: list[str] = field(default_factory=list)
    quarantine_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["quarantine_keys"] = self.quarantine_keys[:50]
        return data


def _resolve_items(conn: psycopg.Connection, erp: ErpAdapter | None, skus: set[str]) -> dict[str, tuple]:
    """SKU -> (item_id, inactive): ``map_sku_item`` overrides first, then the ``erp_item`` cache, then
    the ERP item master for SKUs not cached (cached for the next run, as the hourly mapping does)."""
    found: dict[str, tuple] = {}
    for sku, item_id in conn.execute(
        "select sku, item_id from sitoo_erp.map_sku_item where sku = any(%s)", (list(skus),)
    ).fetchall():
        found[sku] = (item_id, False)
    for sku, item_id, inactive in conn.execute(
        "select sku, item_id, is_inactive from sitoo_erp.erp_item where sku = any(%s)", (list(skus),)
    ).fetchall():
        found.setdefault(sku, (item_id, inactive))
    missing = sorted(skus - set(found))
    if missing and erp is not None:
        looked_up = erp.lookup_items(missing)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into sitoo_erp.erp_item (sku, item_id, is_inactive, fetched_at) values (%s, %s, %s, now()) "
                "on conflict (sku) do update set item_id = excluded.item_id, is_inactive = excluded.is_inactive, "
                "fetched_at = now()",
                [(i.sku, i.item_id, i.is_inactive) for i in looked_up.values()],
            )
        for sku, item in looked_up.items():
            found[sku] = (item.item_id, item.is_inactive)
    return found


def _quarantine(
    conn: psycopg.Connection,
    keys: list[tuple[int, int]],
    reason: str,
    kind: ExceptionKind,
    subject: str,
    rule: str,
    message: str,
    store: str | None,
    sku: str | None,
    field_: str,
) -> None:
    record_exception(conn, kind, subject, rule, message, store_externalid=store, sku=sku, field=field_)
    conn.execute(
        "update sitoo_erp.stock_movement m set status = 'quarantined', status_reason = %s, updated_at = now() "
        "from unnest(%s::bigint[], %s::int[]) as k(t, n) "
        "where m.warehousetransactionid = k.t and m.line_no = k.n",
        (reason[:500], [k[0] for k in keys], [k[1] for k in keys]),
    )


def _dates_to_post(conn: psycopg.Connection, business_date: date, retry_quarantined: bool) -> list[date]:
    dates = {business_date}
    if retry_quarantined:
        dates.update(
            r[0]
            for r in conn.execute(
                "select distinct business_date from sitoo_erp.stock_movement "
                "where status = 'quarantined' and business_date < %s",
                (business_date,),
            ).fetchall()
        )
    return sorted(dates)


def post_adjustments(
    conn: psycopg.Connection,
    erp: ErpAdapter,
    business_date: date,
    *,
    retry_quarantined: bool = True,
    memo_prefix: str = "Sitoo stock sync",
) -> AdjustmentSummary:
    """Post the day's staged movements (and earlier quarantined days) as one adjustment per store."""
    summary = AdjustmentSummary()
    account = conn.execute(
        "select item_id from sitoo_erp.map_document_item where purpose = %s", (ADJUSTMENT_ACCOUNT_PURPOSE,)
    ).fetchone()
    stores = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "select store_externalid, location_id, subsidiary_id from sitoo_erp.map_store_location"
        ).fetchall()
    }
    transient: list[str] = []
    for day in _dates_to_post(conn, business_date, retry_quarantined):
        summary.business_dates.append(day.isoformat())
        rows = conn.execute(
            "select warehousetransactionid, line_no, warehouseid, store_externalid, sku, quantity, transactiontype "
            "from sitoo_erp.stock_movement where business_date = %s order by store_externalid, sku, "
            "warehousetransactionid, line_no",
            (day,),
        ).fetchall()
        if not rows:
            continue
        items = _resolve_items(conn, erp, {r[4] for r in rows})
        by_store: dict[str | None, list[tuple]] = defaultdict(list)
        for r in rows:
            by_store[r[3]].append(r)
        for store, lines in by_store.items():
            mapping = stores.get(store) if store else None
            _post_store_day(
                conn, erp, day, store, lines, mapping, account, items, memo_prefix, summary, transient
            )
    if transient:
        raise TransientApiError(
            f"{len(transient)} inventory adjustment(s) failed transiently after retries (posted ones stay "
            f"posted; a retry re-sends the rest under the same externalId): {transient[:3]}"
        )
    return summary


def _post_store_day(
    conn: psycopg.Connection,
    erp: ErpAdapter,
    day: date,
    store: str | None,
    lines: list[tuple],
    mapping: tuple | None,
    account: tuple | None,
    items: dict[str, tuple],
    memo_prefix: str,
    summary: AdjustmentSummary,
    transient: list[str],
) -> None:
    """One store's day as one adjustment: quarantine what cannot post, send the rest, record the answer.

    A transient ERP failure is collected in ``transient`` so the other stores still post first.
    """
    ext_id = adjustment_external_id(store or "NONE", day)
    with conn.transaction():
        if mapping is None:
            _quarantine_unmapped_store(conn, day, store, lines, summary)
            return
        if account is None:
            _quarantine_no_account(conn, day, store, lines, summary)
            return
        doc_lines, posted_keys, ok_subjects = _adjustment_lines(
            conn, day, store, ext_id, lines, mapping, items, summary
        )
    if not doc_lines:
        _mark_posted(conn, posted_keys, None, ok_subjects)
        return
    adjustment = StockAdjustment(
        external_id=ext_id,
        tran_date=day,
        subsidiary_id=mapping[1],
        location_id=str(mapping[0]),
        account_id=str(account[0]),
        memo=f"{memo_prefix} {day.isoformat()} ({store})",
        lines=tuple(doc_lines),
    )
    try:
        result = erp.post_stock_adjustment(adjustment)
    except ErpRejected as exc:
        with conn.transaction():
            _quarantine(
                conn,
                posted_keys,
                f"ERP rejected {ext_id}",
                ExceptionKind.ERP_REJECTED,
                f"stock:{ext_id}",
                "stock.erp_accepts",
                f"the ERP refused inventory adjustment {ext_id}: {exc.code} {exc.detail or exc}",
                store,
                None,
                exc.code or "document",
            )
        summary.rejected += 1
        summary.lines_quarantined += len(posted_keys)
        return
    except TransientApiError as exc:
        transient.append(f"{ext_id}: {exc}")
        summary.transient_failures += 1
        return
    with conn.transaction():
        conn.execute(
            """
                    insert into sitoo_erp.posting_log (external_id, orderid, document_type, erp_id, tran_date,
                        store_externalid, net_amount, attempts)
                    values (%s, null, %s, %s, %s, %s, null, %s)
                    on conflict (external_id) do update
                       set erp_id = excluded.erp_id, attempts = posting_log.attempts + excluded.attempts,
                           posted_at = now()
                    """,
            (ext_id, DOCUMENT_TYPE, result.erp_id, day, store, result.attempts),
        )
        _mark_posted(conn, posted_keys, ext_id, ok_subjects)
    summary.documents += 1
    summary.lines_posted += len(posted_keys)
    summary.external_ids.append(ext_id)


def _quarantine_unmapped_store(
    conn: psycopg.Connection, day: date, store: str | None, lines: list[tuple], summary: AdjustmentSummary
) -> None:
    """No ERP location for the store (or no store on the warehouse): the whole store-day waits for it."""
    warehouses = sorted({r[2] for r in lines})
    who = f"store {store}" if store else f"warehouse(s) {warehouses} (no store external id)"
    _quarantine(
        conn,
        [(r[0], r[1]) for r in lines],
        f"no store location mapping for {who}",
        ExceptionKind.MISSING_MAPPING,
        f"stock:store:{store or 'warehouse-' + '-'.join(map(str, warehouses))}",
        "stock.store_mapped",
        f"{who} has no map_store_location row: {len(lines)} stock movement line(s) of "
        f"{day} are held out of the ERP (warehouse {', '.join(map(str, warehouses))})",
        store,
        None,
        "store_externalid",
    )
    summary.lines_quarantined += len(lines)
    summary.quarantine_keys.append(f"stock:store:{store}")


def _quarantine_no_account(
    conn: psycopg.Connection, day: date, store: str | None, lines: list[tuple], summary: AdjustmentSummary
) -> None:
    """No adjustment account mapped: no adjustment can post, every store-day waits for the mapping."""
    _quarantine(
        conn,
        [(r[0], r[1]) for r in lines],
        "no stock adjustment account mapped",
        ExceptionKind.MISSING_MAPPING,
        f"stock:document_item:{ADJUSTMENT_ACCOUNT_PURPOSE}",
        "stock.account_mapped",
        f"map_document_item has no '{ADJUSTMENT_ACCOUNT_PURPOSE}' row: inventory adjustments "
        f"cannot post (store {store}, {day})",
        store,
        None,
        "map_document_item.purpose",
    )
    summary.lines_quarantined += len(lines)
    summary.quarantine_keys.append(f"stock:document_item:{ADJUSTMENT_ACCOUNT_PURPOSE}")


def _adjustment_lines(
    conn: psycopg.Connection,
    day: date,
    store: str | None,
    ext_id: str,
    lines: list[tuple],
    mapping: tuple,
    items: dict[str, tuple],
    summary: AdjustmentSummary,
) -> tuple[list[AdjustmentLine], list[tuple[int, int]], list[str]]:
    """One line per SKU with its day's net movement; a SKU without an active ERP item is quarantined.

    Returns the document lines, the movement keys they (or a net zero) settle, and the exception
    subjects that posting resolves.
    """
    per_sku: dict[str, list[tuple]] = defaultdict(list)
    for r in lines:
        per_sku[r[4]].append(r)
    doc_lines: list[AdjustmentLine] = []
    posted_keys: list[tuple[int, int]] = []
    ok_subjects = [f"stock:store:{store}", f"stock:document_item:{ADJUSTMENT_ACCOUNT_PURPOSE}"]
    for sku, sku_lines in per_sku.items():
        keys = [(r[0], r[1]) for r in sku_lines]
        qty = sum((r[5] for r in sku_lines), Decimal(0))
        item = items.get(sku)
        subject = f"stock:{store}:{day:%Y%m%d}:sku:{sku}"
        if item is None or item[1]:
            _quarantine_sku(conn, day, store, ext_id, sku, sku_lines, qty, item, mapping, subject)
            summary.lines_quarantined += len(keys)
            summary.quarantine_keys.append(subject)
            continue
        posted_keys.extend(keys)
        ok_subjects.append(subject)
        ok_subjects.append(f"stock:{ext_id}")
        if qty == 0:
            summary.zero_net_skus += 1
            continue
        doc_lines.append(AdjustmentLine(str(item[0]), str(mapping[0]), qty))
    return doc_lines, posted_keys, ok_subjects


def _quarantine_sku(
    conn: psycopg.Connection,
    day: date,
    store: str | None,
    ext_id: str,
    sku: str,
    sku_lines: list[tuple],
    qty: Decimal,
    item: tuple | None,
    mapping: tuple,
    subject: str,
) -> None:
    """A SKU with no (or an inactive) ERP item: its lines stay out of the adjustment, named for ops."""
    kind = ExceptionKind.UNKNOWN_SKU if item is None else ExceptionKind.INACTIVE_ITEM
    why = "has no ERP item" if item is None else f"maps to inactive ERP item {item[0]}"
    txs = sorted({r[0] for r in sku_lines})
    types = sorted({TYPE_NAMES.get(r[6], f"type {r[6]}") for r in sku_lines})
    _quarantine(
        conn,
        [(r[0], r[1]) for r in sku_lines],
        f"SKU {sku} {why}",
        kind,
        subject,
        "stock.sku_has_erp_item",
        f"SKU {sku} {why}: store {store} ({mapping[0]}) moved {qty:+} on {day} "
        f"({', '.join(types)}; warehouse transactions {txs[:10]}) — not in the ERP "
        f"adjustment {ext_id}",
        store,
        sku,
        "sku",
    )


def _mark_posted(
    conn: psycopg.Connection, keys: list[tuple[int, int]], ext_id: str | None, subjects: list[str]
) -> None:
    conn.execute(
        "update sitoo_erp.stock_movement m set status = 'posted', external_id = %s, status_reason = %s, "
        "updated_at = now() from unnest(%s::bigint[], %s::int[]) as k(t, n) "
        "where m.warehousetransactionid = k.t and m.line_no = k.n",
        (
            ext_id,
            None if ext_id else "net zero for the day: nothing to adjust",
            [k[0] for k in keys],
            [k[1] for k in keys],
        ),
    )
    resolve_subjects(conn, subjects, "stock movement posted")
