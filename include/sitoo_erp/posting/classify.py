"""Classification (invariant 3): only Closed + Successful POS orders go on towards the ERP.

Every staged order that is not posted is (re)classified on every run, so a parked order that
closes later, or a quarantined receipt whose cause has been fixed, moves on by itself. Posted
orders are never touched; malformed payloads stay quarantined until Sitoo sends a good one, and
receipts whose exception a person ignored stay excluded.

One clock: ages are measured in *business time* — the run's data interval end (the operator passes
it), else the Sitoo clock (the newest order date staged) — never the database's wall clock, so a
backfill or a replayed period sees an order stalled only when it has been open longer than the
threshold in the period's own time, and ``held_since`` is a business time too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg

from include.sitoo_erp.posting import states as S
from include.sitoo_erp.posting.after_posting import review_posted
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.db import one_row
from include.sitoo_erp.staging.exceptions import (
    ExceptionKind,
    record_exception,
    resolve_stalled_no_longer_held,
)
from include.sitoo_erp.staging.locks import lock_stage

# The classification rules (booking, cancelled, web order without a till, open, parked, unpaid) are
# ``domain``'s, applied by the state ledger (``staging.ledger.reclassify``).


def business_clock(conn: psycopg.Connection, business_now: datetime | None = None) -> datetime:
    """``business_now`` if given (the run's data interval end), else the Sitoo clock: the newest
    order date staged (the database's ``now()`` only when nothing is staged yet)."""
    if business_now is not None:
        return business_now
    return one_row(conn.execute("select coalesce(max(orderdate), now()) from sitoo_erp.sitoo_order"))[0]


def classify(
    conn: psycopg.Connection,
    stall_after: timedelta = timedelta(hours=4),
    closed_through: date | None = None,
    run_id: str | None = None,
    business_now: datetime | None = None,
) -> dict:
    """Reclassify every unposted order; raise and resolve *stalled* exceptions. Returns counts.

    First, posted receipts that changed in Sitoo since posting are corrected or raised
    (``after_posting.review_posted``): a correction goes back to *held* here and through the gate.
    Stall ages are in business time (``business_clock``).
    """
    with conn.transaction():
        lock_stage(conn)  # a concurrent gate must never see the ready batch change under it
        after_posting = review_posted(conn, closed_through, run_id)
        now = business_clock(conn, business_now)
        rows = ledger.reclassify(conn, now)
        by_reason: dict[str, int] = {}
        for _, reason in rows:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        stalled = report_stalled(conn, stall_after, now)
    return {
        "reclassified": len(rows),
        "by_reason": by_reason,
        "stalled": stalled,
        "after_posting": after_posting.as_dict(),
        "business_now": now.isoformat(),
    }


def report_stalled(
    conn: psycopg.Connection, stall_after: timedelta, business_now: datetime | None = None
) -> int:
    """Held orders that are not finalised long after they were rung up: open one exception each.

    Age = business clock - ``orderdate`` (see :func:`business_clock`). Those that are no longer
    held (closed, cancelled, posted) get their stalled exception resolved.
    """
    now = business_clock(conn, business_now)
    resolve_stalled_no_longer_held(conn)
    stalled = conn.execute(
        f"""
        select s.orderid, s.store_externalid, s.receipt_id, s.reason, s.orderdate
          from sitoo_erp.order_state s
         where s.state = '{S.HELD}' and s.reason_code in {S.NOT_FINALISED_SQL} and s.orderdate < %s
         order by s.orderid
        """,
        (now - stall_after,),
    ).fetchall()
    for orderid, store, receipt, reason, orderdate in stalled:
        record_exception(
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
