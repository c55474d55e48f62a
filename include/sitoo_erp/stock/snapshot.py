"""Stock snapshots of both systems, streamed into PostgreSQL, and drift per location and SKU.

Both sides are *streamed*: Sitoo warehouse items (page by page, per store warehouse) and the ERP's
on-hand per location (SuiteQL, page by page) go straight into ``COPY … FROM STDIN``; nothing holds
a side in memory. The comparison is one set-based statement in PostgreSQL.

**Drift is a real difference, not a timing one.** For each ERP location and SKU::

    expected_erp = erp_on_hand
                   - Σ quantity of finalised sale/return rows still held or quarantined
                     (they moved Sitoo stock, not ERP stock yet; returns have negative quantity)
                   + Σ quantity of non-sale movements not in an ERP adjustment yet
                     (after the business day, or quarantined with an open exception)
    drift_units  = sitoo_on_hand - expected_erp

**Value** = ``drift_units * unit cost`` where the unit cost is the Sitoo warehouse item's own
``moneytotal / decimaltotal`` (the store's stock value per unit, what finance sees in Sitoo); when
that warehouse holds none of the SKU, the SKU's average over every store warehouse in the snapshot.

Statuses: ``missing_in_erp`` (the ERP has no item for a SKU Sitoo stocks), ``missing_in_sitoo``
(the ERP holds stock of a SKU no store warehouse knows), ``drift`` (units differ), ``negative``
(on-hand or expected ERP on-hand below zero, units agree). Only non-matching rows are kept in
``stock_drift``; every snapshot gets per-location totals in ``stock_drift_location`` (the trend).
The raw sides are purged after ``retention_days``; drift and totals are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from include.sitoo_erp.domain import FINALISED_SQL
from include.sitoo_erp.staging.db import one_row
from include.sitoo_erp.stock.movements import StoreWarehouse


@dataclass
class SnapshotCounts:
    snapshot_id: int
    sitoo_rows: int = 0
    erp_rows: int = 0


def begin_snapshot(conn: psycopg.Connection, business_date: date, run_id: str | None = None) -> int:
    """A fresh snapshot for the day (a re-run of the day replaces the previous one)."""
    with conn.transaction():
        conn.execute("delete from sitoo_erp.stock_snapshot where business_date = %s", (business_date,))
        row = conn.execute(
            "insert into sitoo_erp.stock_snapshot (business_date, run_id) values (%s, %s) returning snapshot_id",
            (business_date, run_id),
        ).fetchone()
        assert row is not None  # insert … returning: always one row
        return row[0]


def later_snapshot_exists(conn: psycopg.Connection, business_date: date) -> bool:
    return bool(
        conn.execute(
            "select 1 from sitoo_erp.stock_snapshot where business_date > %s limit 1", (business_date,)
        ).fetchone()
    )


def load_sitoo_items(
    conn: psycopg.Connection,
    snapshot_id: int,
    items: Iterable[Any],
    warehouses: dict[int, StoreWarehouse],
) -> int:
    """COPY Sitoo warehouse items (``WarehouseItem``-like: warehouseid, sku, decimaltotal, decimalreserved,
    decimalavailable, moneytotal) into the snapshot; returns rows written."""
    n = 0
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(
            "copy sitoo_erp.stock_snapshot_sitoo (snapshot_id, warehouseid, store_externalid, location_id, sku, "
            "on_hand, reserved, available, money_total) from stdin"
        ) as copy,
    ):
        for it in items:
            wh = warehouses.get(it.warehouseid)
            copy.write_row(
                (
                    snapshot_id,
                    it.warehouseid,
                    wh.store_externalid if wh else None,
                    wh.location_id if wh else None,
                    it.sku,
                    it.decimaltotal,
                    it.decimalreserved,
                    it.decimalavailable,
                    it.moneytotal,
                )
            )
            n += 1
    return n


def load_erp_on_hand(conn: psycopg.Connection, snapshot_id: int, rows: Iterable[Any]) -> int:
    """COPY the ERP's on-hand rows (``OnHand``: location_id, item_id, sku, on_hand, available)."""
    n = 0
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(
            "copy sitoo_erp.stock_snapshot_erp (snapshot_id, location_id, item_id, sku, on_hand, available) "
            "from stdin"
        ) as copy,
    ):
        for r in rows:
            copy.write_row((snapshot_id, r.location_id, r.item_id, r.sku, r.on_hand, r.available))
            n += 1
    return n


def skus_without_erp_rows(conn: psycopg.Connection, snapshot_id: int) -> list[str]:
    """Sitoo SKUs the ERP listed at no location and the item cache does not know (look them up)."""
    return [
        r[0]
        for r in conn.execute(
            """
            select distinct s.sku from sitoo_erp.stock_snapshot_sitoo s
            where s.snapshot_id = %(id)s
              and not exists (select 1 from sitoo_erp.stock_snapshot_erp e
                              where e.snapshot_id = %(id)s and e.sku = s.sku)
              and not exists (select 1 from sitoo_erp.erp_item i where i.sku = s.sku)
              and not exists (select 1 from sitoo_erp.map_sku_item m where m.sku = s.sku)
            order by 1
            """,
            {"id": snapshot_id},
        ).fetchall()
    ]


COMPARE_SQL = f"""
with
sitoo as (
    select location_id, min(store_externalid) as store_externalid, sku,
           sum(on_hand) as on_hand, sum(money_total) as money_total
    from sitoo_erp.stock_snapshot_sitoo
    where snapshot_id = %(id)s and location_id is not null
    group by location_id, sku
),
override as (select item_id, min(sku) as sku from sitoo_erp.map_sku_item group by item_id),
erp as (
    select e.location_id, coalesce(o.sku, e.sku) as sku, min(e.item_id) as item_id, sum(e.on_hand) as on_hand
    from sitoo_erp.stock_snapshot_erp e
    left join override o on o.item_id = e.item_id
    where e.snapshot_id = %(id)s
    group by e.location_id, coalesce(o.sku, e.sku)
),
store_loc as (
    select distinct store_externalid, location_id from sitoo_erp.stock_snapshot_sitoo
    where snapshot_id = %(id)s and location_id is not null
),
unposted_sales as (
    select l.location_id, r.sku, sum(r.quantity) as qty
    from sitoo_erp.sitoo_order o
    join sitoo_erp.order_state st on st.orderid = o.orderid
    join sitoo_erp.sitoo_order_row r on r.orderid = o.orderid
    join store_loc l on l.store_externalid = o.store_externalid
    where st.state in ('held', 'quarantined')
      and {FINALISED_SQL}
      and r.sku is not null
    group by l.location_id, r.sku
),
unposted_moves as (
    select l.location_id, m.sku, sum(m.quantity) as qty
    from sitoo_erp.stock_movement m
    join store_loc l on l.store_externalid = m.store_externalid
    where m.status <> 'posted'
    group by l.location_id, m.sku
),
avg_cost as (
    select sku, sum(money_total) / nullif(sum(on_hand), 0) as unit_cost
    from sitoo_erp.stock_snapshot_sitoo
    where snapshot_id = %(id)s and on_hand > 0 and money_total is not null
    group by sku
),
erp_known as (
    select sku from erp union select sku from sitoo_erp.erp_item union select sku from sitoo_erp.map_sku_item
),
sitoo_known as (select distinct sku from sitoo),
joined as (
    select coalesce(s.location_id, e.location_id) as location_id,
           coalesce(s.sku, e.sku) as sku,
           s.store_externalid, e.item_id, s.on_hand as sitoo_on_hand, e.on_hand as erp_on_hand,
           s.money_total, s.sku is not null as in_sitoo, e.sku is not null as in_erp
    from sitoo s full join erp e on e.location_id = s.location_id and e.sku = s.sku
),
cmp as (
    select j.location_id, j.sku, coalesce(j.store_externalid, sl.store_externalid) as store_externalid,
           j.item_id, j.sitoo_on_hand, j.erp_on_hand,
           coalesce(us.qty, 0) as unposted_sales, coalesce(um.qty, 0) as unposted_moves,
           x.expected, coalesce(j.sitoo_on_hand, 0) - x.expected as drift_units,
           case when j.sitoo_on_hand <> 0 and j.money_total is not null then j.money_total / j.sitoo_on_hand
                else ac.unit_cost end as unit_cost,
           case
               when j.in_sitoo and not j.in_erp and not exists (select 1 from erp_known k where k.sku = j.sku)
                   then 'missing_in_erp'
               when j.in_erp and not j.in_sitoo and j.erp_on_hand <> 0
                    and not exists (select 1 from sitoo_known k where k.sku = j.sku)
                   then 'missing_in_sitoo'
               when coalesce(j.sitoo_on_hand, 0) - x.expected <> 0 then 'drift'
               when coalesce(j.sitoo_on_hand, 0) < 0 or x.expected < 0 then 'negative'
               else 'match'
           end as status
    from joined j
    left join unposted_sales us on us.location_id = j.location_id and us.sku = j.sku
    left join unposted_moves um on um.location_id = j.location_id and um.sku = j.sku
    left join avg_cost ac on ac.sku = j.sku
    left join (select location_id, min(store_externalid) as store_externalid from store_loc group by 1) sl
           on sl.location_id = j.location_id
    cross join lateral (
        select coalesce(j.erp_on_hand, 0) - coalesce(us.qty, 0) + coalesce(um.qty, 0) as expected
    ) x
),
kept as (
    insert into sitoo_erp.stock_drift (snapshot_id, business_date, store_externalid, location_id, sku, item_id,
        sitoo_on_hand, erp_on_hand, unposted_sales, unposted_movements, expected_erp, drift_units, unit_cost,
        drift_value, status)
    select %(id)s, %(day)s, store_externalid, location_id, sku, item_id, sitoo_on_hand, erp_on_hand,
           unposted_sales, unposted_moves, expected, drift_units, round(unit_cost, 4),
           round(drift_units * unit_cost, 2), status
    from cmp where status <> 'match'
    returning 1
)
insert into sitoo_erp.stock_drift_location (snapshot_id, business_date, store_externalid, location_id,
    skus_compared, skus_drifting, missing_in_erp, missing_in_sitoo, negative, drift_units_abs,
    drift_value_abs, drift_value_net)
select %(id)s, %(day)s, min(store_externalid), location_id, count(*),
       count(*) filter (where status = 'drift'),
       count(*) filter (where status = 'missing_in_erp'),
       count(*) filter (where status = 'missing_in_sitoo'),
       -- a SKU the ERP does not know has no ERP on-hand to be negative: it is counted as missing
       count(*) filter (where status <> 'missing_in_erp' and (coalesce(sitoo_on_hand, 0) < 0 or expected < 0)),
       coalesce(sum(abs(drift_units)), 0),
       coalesce(sum(abs(round(drift_units * unit_cost, 2))), 0),
       coalesce(sum(round(drift_units * unit_cost, 2)), 0)
from cmp
group by location_id
"""


def compare(conn: psycopg.Connection, snapshot_id: int, business_date: date) -> dict[str, Any]:
    """Drift per location and SKU for the snapshot (one statement); returns the snapshot's totals."""
    with conn.transaction():
        conn.execute("delete from sitoo_erp.stock_drift where snapshot_id = %s", (snapshot_id,))
        conn.execute("delete from sitoo_erp.stock_drift_location where snapshot_id = %s", (snapshot_id,))
        conn.execute(COMPARE_SQL, {"id": snapshot_id, "day": business_date})
        row = conn.execute(
            """
            update sitoo_erp.stock_snapshot s set compared_at = now(),
                   sitoo_rows = (select count(*) from sitoo_erp.stock_snapshot_sitoo x where x.snapshot_id = s.snapshot_id),
                   erp_rows = (select count(*) from sitoo_erp.stock_snapshot_erp x where x.snapshot_id = s.snapshot_id),
                   drift_rows = (select count(*) from sitoo_erp.stock_drift x where x.snapshot_id = s.snapshot_id),
                   locations = (select count(*) from sitoo_erp.stock_drift_location x
                                where x.snapshot_id = s.snapshot_id)
             where s.snapshot_id = %s
            returning sitoo_rows, erp_rows, drift_rows, locations
            """,
            (snapshot_id,),
        ).fetchone()
        totals = location_totals(conn, snapshot_id)
    assert row is not None  # the snapshot begun for this run
    return {
        "snapshot_id": snapshot_id,
        "business_date": business_date.isoformat(),
        "sitoo_rows": row[0],
        "erp_rows": row[1],
        "drift_rows": row[2],
        "locations": row[3],
        **{k: (str(v) if not isinstance(v, int) else v) for k, v in totals.items()},
    }


LOCATION_TOTAL_KEYS = (
    "skus_compared",
    "skus_drifting",
    "missing_in_erp",
    "missing_in_sitoo",
    "negative",
    "drift_units_abs",
    "drift_value_abs",
    "drift_value_net",
)


def location_totals(conn: psycopg.Connection, snapshot_id: int) -> dict[str, Any]:
    """The snapshot's per-location drift added up (0 where no location has a row): what the compare
    returns and the drift report leads with."""
    totals = one_row(
        conn.execute(
            f"select {', '.join(f'coalesce(sum({k}), 0)' for k in LOCATION_TOTAL_KEYS)} "
            "from sitoo_erp.stock_drift_location where snapshot_id = %s",
            (snapshot_id,),
        )
    )
    return dict(zip(LOCATION_TOTAL_KEYS, totals, strict=True))


def purge_raw(conn: psycopg.Connection, keep_days: int, business_date: date) -> int:
    """Drop the raw sides of snapshots older than ``keep_days`` (drift rows and totals stay)."""
    cur = conn.execute(
        """
        with old as (select snapshot_id from sitoo_erp.stock_snapshot where business_date < %s::date - %s),
        a as (delete from sitoo_erp.stock_snapshot_sitoo where snapshot_id in (select snapshot_id from old)
              returning 1),
        b as (delete from sitoo_erp.stock_snapshot_erp where snapshot_id in (select snapshot_id from old)
              returning 1)
        select (select count(*) from a) + (select count(*) from b)
        """,
        (business_date, keep_days),
    )
    return one_row(cur)[0]


SUMMARY_HEADER = (
    "business_date",
    "store",
    "location",
    "skus_compared",
    "skus_drifting",
    "missing_in_erp",
    "negative",
    "drift_units_abs",
    "drift_value_net",
    "drift_value_abs",
)


def drift_summary(conn: psycopg.Connection, business_date: date | None = None) -> list[tuple]:
    """Per location for the day's snapshot (default: the latest), largest absolute value first.

    Columns: ``SUMMARY_HEADER``. The demo prints this after running the stock DAG.
    """
    if business_date is None:
        row = conn.execute("select max(business_date) from sitoo_erp.stock_snapshot").fetchone()
        business_date = row[0] if row else None
        if business_date is None:
            return []
    return conn.execute(
        """
        select l.business_date, l.store_externalid, l.location_id, l.skus_compared, l.skus_drifting,
               l.missing_in_erp, l.negative, l.drift_units_abs, l.drift_value_net, l.drift_value_abs
        from sitoo_erp.stock_drift_location l
        join sitoo_erp.stock_snapshot s using (snapshot_id)
        where s.business_date = %s
        order by l.drift_value_abs desc, l.location_id
        """,
        (business_date,),
    ).fetchall()


def drift_trend(conn: psycopg.Connection, days: int = 30) -> list[tuple]:
    """Per business date over the last ``days`` snapshots: SKUs drifting and absolute/net value."""
    return conn.execute(
        """
        select s.business_date, sum(l.skus_compared), sum(l.skus_drifting), sum(l.missing_in_erp),
               sum(l.drift_units_abs), sum(l.drift_value_abs), sum(l.drift_value_net)
        from sitoo_erp.stock_snapshot s join sitoo_erp.stock_drift_location l using (snapshot_id)
        group by s.business_date order by s.business_date desc limit %s
        """,
        (days,),
    ).fetchall()


def top_drift(conn: psycopg.Connection, snapshot_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The SKU rows with the largest absolute drift value (then units) of a snapshot."""
    cur = conn.execute(
        """
        select store_externalid, location_id, sku, item_id, sitoo_on_hand, erp_on_hand, unposted_sales,
               unposted_movements, expected_erp, drift_units, unit_cost, drift_value, status
        from sitoo_erp.stock_drift where snapshot_id = %s and status <> 'match'
        order by abs(coalesce(drift_value, 0)) desc, abs(drift_units) desc, location_id, sku
        limit %s
        """,
        (snapshot_id, limit),
    )
    cols = [d.name for d in cur.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
