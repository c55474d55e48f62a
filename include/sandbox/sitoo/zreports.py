"""Z-reports as a till closes them: one per register per business day *of that store's timezone*.

A till in Stockholm opens and closes on Stockholm days; a 00:30 Stockholm sale (23:30 London) is on
the Stockholm day's report. The generator's own ``SitooDataset.z_reports`` cuts every store's days
in one dataset timezone; the sandbox serves these instead. The totals of each report are computed
by the generator's ``_z_report`` (one source of the Z-report arithmetic); only the grouping of
receipts into days and the open/close times follow the store.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from include.sandbox.generator import ORDERID_BASE, SitooDataset

OPEN_AT, CLOSE_AT = time(8, 30), time(21, 30)
UPLOAD_DELAY = 60  # seconds between closing the till and the backend receiving the report

# Sitoo's Z-report has no business-day field; the generator adds one for its own bookkeeping.
NOT_IN_SITOO = ("businessday",)


def _local(day: date, at: time, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, at, tz).timestamp())


def z_reports_by_store_timezone(ds: SitooDataset) -> list[dict]:
    """Every Z-report of the dataset's days (ascending ``dateadded``), each store on its own days."""
    finalised = np.flatnonzero(
        (ds.idx["orderstateid"] == 10) & (ds.idx["paymentstateid"] == 20) & (ds.idx["ordertypeid"] == 10)
    )
    days = [ds.start + timedelta(days=d) for d in range(ds.days)]
    bounds: dict[int, list[int]] = {}
    for s in ds.catalogue.stores:
        tz = ZoneInfo(s.timezone)
        bounds[s.storeid] = [_local(day, time(0), tz) for day in [*days, days[-1] + timedelta(days=1)]]
    by_day: dict[tuple[int, int], list[int]] = {}
    for p in finalised.tolist():
        store = int(ds.idx["store"][p])
        edges = bounds.get(store)
        if edges is None:
            continue
        d = bisect.bisect_right(edges, int(ds.idx["orderdate"][p])) - 1
        if 0 <= d < len(days):
            by_day.setdefault((store, d), []).append(ORDERID_BASE + p)
    reports = []
    for s in ds.catalogue.stores:
        tz = ZoneInfo(s.timezone)
        for d, day in enumerate(days):
            orders = [ds.order(oid) for oid in by_day.get((s.storeid, d), [])]
            z = ds._z_report(s, day, d + 1, orders)
            closed = _local(day, CLOSE_AT, tz)
            z.update(dateopened=_local(day, OPEN_AT, tz), datecreated=closed, dateadded=closed + UPLOAD_DELAY)
            for key in NOT_IN_SITOO:
                z.pop(key, None)
            reports.append(z)
    reports.sort(key=lambda z: (z["dateadded"], z["registerid"]))
    return reports
