"""Resolve SKUs against the ERP item master (SuiteQL), cached in ``erp_item``.

Only SKUs of the receipts about to post are looked up, and only when they are not cached or
the cache is older than ``max_age``: a normal hour asks the ERP about a handful of new SKUs.
``map_sku_item`` rows are overrides ops maintain and win over the item master. Which receipt
then lacks which mapping is the quality gate's job (suite ``sku_mismatches``), so the rule
lives in one place.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

from include.sitoo_erp.erp.adapter import ErpAdapter
from include.sitoo_erp.staging.locks import lock_stage

SKUS_TO_LOOK_UP = """
select distinct r.sku
  from sitoo_erp.sitoo_order_row r
  join sitoo_erp.ready_receipt o using (orderid)
 where r.sku is not null
   and not exists (select 1 from sitoo_erp.map_sku_item m where m.sku = r.sku)
   and not exists (select 1 from sitoo_erp.erp_item i where i.sku = r.sku and i.fetched_at > now() - %s)
 order by 1
"""


def refresh_item_cache(
    conn: psycopg.Connection, erp: ErpAdapter, max_age: timedelta = timedelta(hours=6)
) -> dict:
    skus = [row[0] for row in conn.execute(SKUS_TO_LOOK_UP, (max_age,)).fetchall()]
    found = erp.lookup_items(skus) if skus else {}
    with conn.transaction(), conn.cursor() as cur:
        lock_stage(conn)  # the gate reads erp_item: not while it validates
        cur.executemany(
            """
            insert into sitoo_erp.erp_item (sku, item_id, is_inactive, fetched_at) values (%s, %s, %s, now())
            on conflict (sku) do update set item_id = excluded.item_id, is_inactive = excluded.is_inactive,
                                            fetched_at = now()
            """,
            [(item.sku, item.item_id, item.is_inactive) for item in found.values()],
        )
        # A SKU the ERP no longer knows must not keep a stale cached item.
        gone = [s for s in skus if s not in found]
        if gone:
            cur.execute("delete from sitoo_erp.erp_item where sku = any(%s)", (gone,))
    return {
        "looked_up": len(skus),
        "found": len(found),
        "unknown": len(skus) - len(found),
        "inactive": sum(1 for i in found.values() if i.is_inactive),
    }
