"""Sweep the whole period from Sitoo again: orders (late and offline ones too) and Z-reports.

Reuses the hourly job's staging (``stage_orders``: raw JSON first, idempotent by payload hash),
without touching its orderid high-water mark: the hourly late sweep keeps working from its own mark,
and an order first seen here is classified and posted by the next hourly run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg

from include.sitoo_erp.domain import DEFAULT_TIMEZONE, business_date
from include.sitoo_erp.prefetch import prefetch
from include.sitoo_erp.reconciliation.period import Period
from include.sitoo_erp.staging.orders import stage_orders

Z_UPLOAD_GRACE = timedelta(days=3)  # a till may upload its Z-report days after closing


class PeriodSource(Protocol):
    def iter_order_payloads(self, **kwargs: Any) -> Iterator[dict]: ...

    def iter_z_reports(
        self, dateadded_from: int, dateadded_to: int | None = None, **kw: object
    ) -> Iterator: ...


def sweep_period(source: PeriodSource, conn: psycopg.Connection, period: Period) -> dict:
    """Stage every order whose ``orderdate`` is in the padded window, and every Z-report of the period."""
    start, end = period.utc_window()
    orders = stage_orders(
        conn,
        prefetch(
            source.iter_order_payloads(
                orderdate_from=int(start.timestamp()), orderdate_to=int(end.timestamp()) - 1
            )
        ),
    )
    z = upsert_z_reports(
        conn,
        source.iter_z_reports(
            dateadded_from=int(start.timestamp()), dateadded_to=int((end + Z_UPLOAD_GRACE).timestamp())
        ),
    )
    return {
        "period": period.as_dict(),
        "window_utc": [start.isoformat(), end.isoformat()],
        "orders": orders.as_dict(),
        "z_reports": z,
    }


def _local_date(moment: datetime, tz: str | None):
    return business_date(moment, tz or DEFAULT_TIMEZONE)


def upsert_z_reports(conn: psycopg.Connection, reports) -> int:
    """Store Z-reports (a re-sent report replaces the old one); business date = opening day, local."""
    tz: dict[str, str | None] = dict(
        conn.execute("select store_externalid, timezone from sitoo_erp.map_store_location").fetchall()
    )
    rows = []
    for z in reports:
        opened = z.dateopened or z.datecreated
        rows.append(
            (
                z.registerid,
                z.zreportid,
                z.store_id,
                _local_date(opened, tz.get(z.store_id or "")),
                z.dateopened,
                z.datecreated,
                z.moneysalestotal,
                z.moneysalestotalnet,
                z.numsales,
                z.moneyrefundtotal,
                z.moneyrefundtotalnet,
                z.numrefund,
                json.dumps(z.model_dump(mode="json"), ensure_ascii=False),
            )
        )
    if rows:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                """
                insert into sitoo_erp.sitoo_z_report (registerid, zreportid, store_externalid, business_date,
                    dateopened, datecreated, sales_gross, sales_net, num_sales, refund_gross, refund_net,
                    num_refunds, payload)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (registerid, zreportid) do update set
                    store_externalid = excluded.store_externalid, business_date = excluded.business_date,
                    dateopened = excluded.dateopened, datecreated = excluded.datecreated,
                    sales_gross = excluded.sales_gross, sales_net = excluded.sales_net,
                    num_sales = excluded.num_sales, refund_gross = excluded.refund_gross,
                    refund_net = excluded.refund_net, num_refunds = excluded.num_refunds,
                    payload = excluded.payload, fetched_at = now()
                """,
                rows,
            )
    return len(rows)
