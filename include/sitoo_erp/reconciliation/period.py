"""Which days a reconciliation covers: the closed month, or any range finance asks for.

Days are **store business dates** (the store's own timezone), inclusive at both ends. The Sitoo
sweep pads the UTC window by ``PAD`` on both sides so every timezone's business day is inside it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from include.sitoo_erp.domain import DEFAULT_TIMEZONE

PAD = timedelta(hours=15)  # UTC-12 .. UTC+14 and a little more


@dataclass(frozen=True)
class Period:
    date_from: date
    date_to: date  # inclusive
    stores: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.date_to < self.date_from:
            raise ValueError(f"date_to {self.date_to} is before date_from {self.date_from}")
        if (self.date_to - self.date_from).days > 92:
            raise ValueError("a reconciliation covers at most 93 days; split longer ranges")

    @property
    def days(self) -> list[date]:
        return [self.date_from + timedelta(days=i) for i in range((self.date_to - self.date_from).days + 1)]

    @property
    def label(self) -> str:
        stores = f" stores {','.join(self.stores)}" if self.stores else ""
        return f"{self.date_from.isoformat()}..{self.date_to.isoformat()}{stores}"

    def utc_window(self, pad: timedelta = PAD) -> tuple[datetime, datetime]:
        """[start, end) in UTC that contains every business day of the period in any timezone."""
        start = datetime.combine(self.date_from, time(0), UTC) - pad
        end = datetime.combine(self.date_to + timedelta(days=1), time(0), UTC) + pad
        return start, end

    def as_dict(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
            "stores": list(self.stores),
        }


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


def _stores(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    return tuple(sorted({str(s).strip() for s in items if str(s).strip()}))


def closed_month(interval_start: datetime, timezone: str = DEFAULT_TIMEZONE) -> tuple[date, date]:
    """The calendar month in which the run's data interval starts (local time): the month that closed.

    The monthly timetable's interval is [run - 1 month, run) with the run a few days into the next
    month, so its start always lies in the month that has just closed.
    """
    local = interval_start.astimezone(ZoneInfo(timezone))
    last = calendar.monthrange(local.year, local.month)[1]
    return date(local.year, local.month, 1), date(local.year, local.month, last)


def resolve_period(
    params: Mapping[str, Any] | None, interval_start: datetime | None, timezone: str = DEFAULT_TIMEZONE
) -> Period:
    """Params win (finance's weekly check: ``date_from``/``date_to``/``stores``); else the closed month.

    Only one of ``date_from``/``date_to`` given: the other defaults to the same day (a one-day check).
    """
    params = params or {}
    date_from, date_to = _date(params.get("date_from"), "date_from"), _date(params.get("date_to"), "date_to")
    stores = _stores(params.get("stores"))
    one_day = date_from or date_to
    if one_day is not None:
        return Period(date_from or one_day, date_to or one_day, stores)
    if interval_start is None:
        raise ValueError("no date range: give date_from/date_to or run on the monthly schedule")
    first, last = closed_month(interval_start, timezone)
    return Period(first, last, stores)
