"""The daily stock job's steps over the hooks, without Airflow (operators call these).

A run covers one business day ``D``: the run's data interval starts on ``D`` (local time) and the
movement window of each store is ``D`` 00:00-24:00 in *its* timezone (``map_store_location.timezone``).
Movements after the window are staged too (they are "in flight" for the drift: Sitoo has them, the
ERP gets them with the next day's adjustment).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from include.sitoo_erp.domain import DEFAULT_TIMEZONE
from include.sitoo_erp.stock import movements as M
from include.sitoo_erp.stock import snapshot as S

log = logging.getLogger(__name__)


def day_start_utc(day: date, timezone: str) -> datetime:
    """Local midnight starting ``day`` in ``timezone``, as a UTC datetime."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)


def load_store_warehouses(
    hook: Any, conn: psycopg.Connection, eshopid: int = 1
) -> dict[int, M.StoreWarehouse]:
    return M.store_warehouses(conn, list(hook.iter_warehouses(eshopid)), list(hook.iter_stores(eshopid)))


def extract_movements(
    hook: Any, conn: psycopg.Connection, business_date: date, eshopid: int = 1
) -> dict[str, Any]:
    """Stage every non-sale movement of store warehouses from the start of ``business_date`` (earliest
    store timezone) up to now."""
    warehouses = load_store_warehouses(hook, conn, eshopid)
    zones = {w.timezone for w in warehouses.values()} or {DEFAULT_TIMEZONE}
    start = min(day_start_utc(business_date, z) for z in zones)
    transactions = hook.iter_warehouse_transactions(eshopid, datecreatedfrom=int(start.timestamp()))
    summary: dict[str, Any] = M.stage_movements(conn, transactions, warehouses)
    summary["store_warehouses"] = len(warehouses)
    summary["unmapped_warehouses"] = sorted(w.warehouseid for w in warehouses.values() if not w.location_id)
    summary["from_utc"] = start.isoformat()
    return summary


def snapshot_and_compare(
    hook: Any,
    erp: Any,
    conn: psycopg.Connection,
    business_date: date,
    *,
    run_id: str | None = None,
    retention_days: int = 7,
    eshopid: int = 1,
    skip_if_later_snapshot: bool = True,
) -> dict[str, Any]:
    """Stream both sides into PostgreSQL, compare, purge old raw rows. Returns the snapshot totals.

    A backfill of an old day posts its movements but does not replace the drift history with
    today's stock levels: when a later day already has a snapshot, this step is skipped.
    """
    if skip_if_later_snapshot and S.later_snapshot_exists(conn, business_date):
        return {"skipped": f"a snapshot after {business_date} exists; stock levels are not historical"}
    warehouses = load_store_warehouses(hook, conn, eshopid)
    snapshot_id = S.begin_snapshot(conn, business_date, run_id)

    def sitoo_items():
        for wid in sorted(warehouses):
            yield from hook.iter_warehouse_items(wid, eshopid)

    sitoo_rows = S.load_sitoo_items(conn, snapshot_id, sitoo_items(), warehouses)
    locations = sorted({w.location_id for w in warehouses.values() if w.location_id})
    erp_rows = S.load_erp_on_hand(conn, snapshot_id, erp.iter_on_hand(locations))
    unknown = S.skus_without_erp_rows(conn, snapshot_id)
    if unknown:  # not at any location: ask the item master once, so "missing in ERP" is certain
        M._resolve_items(conn, erp, set(unknown))
    result = S.compare(conn, snapshot_id, business_date)
    result["purged_raw_rows"] = S.purge_raw(conn, retention_days, business_date)
    result["looked_up_skus"] = len(unknown)
    log.info("stock snapshot %s: %s Sitoo rows, %s ERP rows", snapshot_id, sitoo_rows, erp_rows)
    return result


def snapshot_for(conn: psycopg.Connection, business_date: date) -> int | None:
    row = conn.execute(
        "select snapshot_id from sitoo_erp.stock_snapshot where business_date = %s and compared_at is not null",
        (business_date,),
    ).fetchone()
    return row[0] if row else None


__all__ = [
    "extract_movements",
    "snapshot_and_compare",
    "snapshot_for",
]
