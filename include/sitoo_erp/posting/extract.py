"""Extraction that misses nothing: the orderdate window, the orderid sweep, and held orders.

1. **Window** — every order whose ``orderdate`` falls in [start, end), in ascending orderid.
2. **Late sweep** — every order above the orderid high-water mark, whatever its date: an
   offline till uploads receipts hours later with their original ``orderdate`` but a new,
   higher orderid, so a date window alone would miss them.
3. **Held re-examination** — every order still ``held`` is fetched again by id, so a parked or
   pending order that has since closed (or been cancelled) is seen.

Pure logic over a ``SitooHook``-like client and a psycopg connection: testable without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

import psycopg

from include.sitoo_erp.prefetch import prefetch
from include.sitoo_erp.staging.orders import StageSummary, advance_watermark, get_watermark, stage_orders

ORDERS_STREAM = "sitoo_orders"
HELD_CHUNK = 100


class OrderSource(Protocol):
    def iter_order_payloads(self, **kwargs: Any) -> Iterator[dict]: ...


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def extract_orders(
    source: OrderSource,
    conn: psycopg.Connection,
    window_start: datetime,
    window_end: datetime,
    sweep_late: bool = True,
    reexamine_held: bool = True,
) -> dict[str, dict]:
    """Run the three passes; returns a small per-pass summary (fit for XCom)."""
    if window_end <= window_start:
        raise ValueError(f"empty window: start {window_start.isoformat()} >= end {window_end.isoformat()}")
    result: dict[str, dict] = {}
    # Held *before* this run: orders staged by the passes below enter the ledger as held (awaiting
    # classification) and were just fetched, so re-fetching them by id would only repeat the calls.
    held_ids = (
        [
            row[0]
            for row in conn.execute(
                "select orderid from sitoo_erp.order_state where state = 'held' order by orderid"
            ).fetchall()
        ]
        if reexamine_held
        else []
    )

    # orderdateto is inclusive in the API: stop one second short to keep [start, end) half-open.
    window = stage_orders(
        conn,
        prefetch(
            source.iter_order_payloads(orderdate_from=_ts(window_start), orderdate_to=_ts(window_end) - 1)
        ),
    )
    result["window"] = window.as_dict()

    if sweep_late:
        mark = get_watermark(conn, ORDERS_STREAM)
        # First run (no mark yet): sweep from the window's first order. Its last order may be an
        # offline receipt that arrived hours late, so starting after it would skip everything
        # rung up after the window but uploaded before that receipt.
        start_from = mark + 1 if mark is not None else window.min_orderid
        sweep = StageSummary()
        if start_from is not None:
            sweep = stage_orders(conn, prefetch(source.iter_order_payloads(orderid_from=start_from)))
        result["late_sweep"] = {**sweep.as_dict(), "from_orderid": start_from}
        top = max(x for x in (window.max_orderid, sweep.max_orderid, mark, 0) if x is not None)
        if top:
            advance_watermark(conn, ORDERS_STREAM, top)

    if reexamine_held:
        held = StageSummary()
        for i in range(0, len(held_ids), HELD_CHUNK):
            chunk = held_ids[i : i + HELD_CHUNK]
            held.add(stage_orders(conn, source.iter_order_payloads(orderid=chunk)))
        result["held_recheck"] = {**held.as_dict(), "held_before": len(held_ids)}
    return result
