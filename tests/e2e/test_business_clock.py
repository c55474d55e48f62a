"""One clock: stall ages are business time, so a backfilled window is judged by its own hours.

The test day (2026-11-16) lies weeks before the database's wall clock, so every run here is a
backfill. An order left open for 4.5 hours of that day is stalled; one rung up half an hour before
the window's end is not, however old both are by the wall clock. The reconciliation uses the same
clock: a receipt held since the 10:00 run is *held* an hour later and *stalled* two days later.
"""

from __future__ import annotations

from datetime import timedelta

from include.sitoo_erp.reconciliation.compare import reconcile
from include.sitoo_erp.reconciliation.period import Period
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import DAY, at, run_hour
from tests.e2e.helpers import clean_sale, states_by_order


def _plant_open(stack, receipt: str, hour: int, minute: int) -> int:
    payload = clean_sale(stack)
    payload.update(orderstateid=0, paymentstateid=0, ordertypeid=110)  # parked: rung up, not paid
    payload["additionaldata"]["pos-receiptid"] = receipt
    payload["orderdate"] = int(at(hour, minute).timestamp())  # the payload carries its own date
    return stack.sitoo.add_order(
        payload=payload, orderdate=payload["orderdate"], dateadded=payload["orderdate"]
    )


def test_a_backfilled_window_stalls_only_what_is_stalled_in_business_time(stack, sales_dag):
    from include.sitoo_erp.erp.netsuite import NetSuiteHook

    old_open = _plant_open(stack, "OPEN-SINCE-0530", 5, 30)  # 4.5 h open at the window's end (10:00)
    young_open = _plant_open(stack, "OPEN-SINCE-0930", 9, 30)
    stack.sitoo.set_clock(int(at(10, 5).timestamp()))
    # The ERP is down for this run: the hour's finalised receipts stay held ("ready to post").
    items = sales_dag.get_task("refresh_erp_items")
    saved = items.retries
    items.retries = 0
    stack.netsuite.set_faults(error_rate=1.0)
    try:
        run_hour(sales_dag, at(9))
    finally:
        items.retries = saved
        stack.netsuite.set_faults(error_rate=0.0)

    states = states_by_order(stack)
    held_open = {o for o, (s, r) in states.items() if s == "held" and r.startswith("not finalised")}
    assert {old_open, young_open} <= held_open
    with connect_url(stack.database_url) as conn:
        stalled = {
            o
            for (o,) in conn.execute(
                "select orderid from sitoo_erp.exception where kind = 'stalled' and status = 'open'"
            )
        }
        ready = {
            o
            for (o,) in conn.execute(
                "select orderid from sitoo_erp.order_state where state = 'held' and reason = 'ready to post'"
            )
        }
        assert stalled == {old_open}, sorted(stalled)
        assert ready, "no finalised receipt was left waiting"

        erp = NetSuiteHook(netsuite_conn_id="netsuite_default")

        def causes(now) -> dict[int, str]:
            run = reconcile(conn, erp, Period(DAY, DAY), now=now)
            return dict(
                conn.execute(
                    "select orderid, cause from sitoo_erp.reconciliation_line "
                    "where recon_run_id = %s and class = 'missing_in_erp'",
                    (run.recon_run_id,),
                ).fetchall()
            )

        an_hour_later = causes(at(11))
        two_days_later = causes(at(10) + timedelta(days=2))
    assert {an_hour_later[o] for o in ready} == {"held"}, an_hour_later
    assert {two_days_later[o] for o in ready} == {"stalled"}, two_days_later
