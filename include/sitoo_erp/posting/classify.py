"""Classification (invariant 3): only Closed + Successful POS orders go on towards the ERP.

Every staged order that is not posted is (re)classified on every run, so a parked order that
closes later, or a quarantined receipt whose cause has been fixed, moves on by itself. Posted
orders are never touched; malformed payloads stay quarantined until Sitoo sends a good one, and
receipts whose exception a person ignored stay excluded.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

from include.sitoo_erp.posting import states as S
from include.sitoo_erp.staging.exceptions import ExceptionKind, raise_exception
from include.sitoo_erp.staging.locks import lock_stage

CLASSIFY_SQL = f"""
with c as (
    select o.orderid,
           case
             when o.ordertypeid = 100 then '{S.EXCLUDED}'
             when o.orderstateid = 20 then '{S.EXCLUDED}'
             when o.orderstateid = -1 then '{S.EXCLUDED}'
             when o.orderstateid = 0 then '{S.HELD}'
             when o.paymentstateid <> 20 then '{S.HELD}'
             when o.registerid is null then '{S.EXCLUDED}'
             else '{S.HELD}'
           end as state,
           case
             when o.ordertypeid = 100 then '{S.EXCLUDED_BOOKING}'
             when o.orderstateid = 20 then '{S.EXCLUDED_CANCELLED}'
             when o.orderstateid = -1 then '{S.EXCLUDED_ABANDONED}'
             when o.orderstateid = 0 and o.ordertypeid = 110 then '{S.NOT_FINALISED_PARKED}'
             when o.orderstateid = 0 then '{S.NOT_FINALISED_OPEN}'
             when o.paymentstateid <> 20 then '{S.NOT_FINALISED_PAYMENT}'
             when o.registerid is null then '{S.EXCLUDED_NOT_POS}'
             else '{S.READY}'
           end as reason
    from sitoo_erp.sitoo_order o
    join sitoo_erp.order_state s using (orderid)
    where s.state <> '{S.POSTED}'
      and not (s.state = '{S.QUARANTINED}' and s.reason like 'malformed payload%%')
      and not (s.state = '{S.EXCLUDED}' and s.reason like '{S.IGNORED_BY_OPS}%%')
)
update sitoo_erp.order_state s
   set state = c.state,
       reason = c.reason,
       state_changed_at = case when s.state is distinct from c.state then now() else s.state_changed_at end,
       held_since = case when c.state = '{S.HELD}' then coalesce(s.held_since, now()) else null end,
       updated_at = now()
  from c
 where s.orderid = c.orderid
returning c.state, c.reason
"""


def classify(conn: psycopg.Connection, stall_after: timedelta = timedelta(hours=4)) -> dict:
    """Reclassify every unposted order; raise and resolve *stalled* exceptions. Returns counts."""
    with conn.transaction():
        lock_stage(conn)  # a concurrent gate must never see the ready batch change under it
        rows = conn.execute(CLASSIFY_SQL).fetchall()
        by_reason: dict[str, int] = {}
        for _, reason in rows:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        stalled = report_stalled(conn, stall_after)
    return {"reclassified": len(rows), "by_reason": by_reason, "stalled": stalled}


def report_stalled(conn: psycopg.Connection, stall_after: timedelta) -> int:
    """Held orders that are not finalised long after they were rung up: open one exception each.

    Those that are no longer held (closed, cancelled, posted) get their stalled exception resolved.
    """
    conn.execute(
        f"""
        update sitoo_erp.exception e set status = 'resolved', resolved_at = now(),
               resolution_note = 'no longer held: ' || s.state || ' (' || s.reason || ')'
          from sitoo_erp.order_state s
         where e.kind = '{ExceptionKind.STALLED}' and e.status = 'open' and e.orderid = s.orderid
           and not (s.state = '{S.HELD}' and s.reason like 'not finalised%%')
        """
    )
    stalled = conn.execute(
        f"""
        select s.orderid, s.store_externalid, s.receipt_id, s.reason, s.orderdate
          from sitoo_erp.order_state s
         where s.state = '{S.HELD}' and s.reason like 'not finalised%%' and s.orderdate < now() - %s
         order by s.orderid
        """,
        (stall_after,),
    ).fetchall()
    for orderid, store, receipt, reason, orderdate in stalled:
        raise_exception(
            conn,
            ExceptionKind.STALLED,
            subject_key=f"order:{orderid}",
            orderid=orderid,
            store_externalid=store,
            field="orderstateid",
            rule=f"held longer than {stall_after}",
            message=(
                f"order {orderid} (receipt {receipt}, store {store}) {reason} since "
                f"{orderdate:%Y-%m-%d %H:%M} UTC"
            ),
        )
    return len(stalled)
