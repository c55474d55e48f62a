"""When the sync starts: one configurable go-live date for the scheduled DAGs.

Airflow runs nothing before a DAG's ``start_date`` and says so nowhere: a manual run or
``dag.test()`` for such a window "succeeds" with zero tasks, and a backfill silently starts at the
start date (or refuses with "No runs to create"). So the DAGs set no ``start_date``; the go-live
date comes from the environment variable ``SITOO_ERP_START_DATE`` (ISO date, e.g. ``2026-10-01``),
read when the DAG file is parsed (an environment variable, not an Airflow Variable: no API call per
parse), and each run's first task ``check_window`` fails a run dated before it, naming the date and
the variable. Set it earlier and redeploy to process an earlier period.
"""

from __future__ import annotations

import os
from datetime import date

import pendulum

START_DATE_ENV = "SITOO_ERP_START_DATE"
DEFAULT_START_DATE = date(2026, 11, 1)


def configured_start_date(timezone: str = "UTC") -> pendulum.DateTime:
    """Midnight of the go-live date in ``timezone``; a malformed value fails the DAG import, named."""
    raw = os.environ.get(START_DATE_ENV, "").strip()
    if not raw:
        day = DEFAULT_START_DATE
    else:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"environment variable {START_DATE_ENV}={raw!r} is not an ISO date such as 2026-11-01"
            ) from None
    return pendulum.datetime(day.year, day.month, day.day, tz=timezone)


def window_refusal(dag_id: str, logical_date, window_start, start_date) -> str | None:
    """Why a run does nothing (Airflow skips every task of a run whose logical date is before the
    DAG's start date), or None when it runs. Mirrors Airflow's own rule, so a normal run passes."""
    if start_date is None or logical_date is None or logical_date >= start_date:
        return None
    first = (window_start or logical_date).date().isoformat()
    return (
        f"{dag_id}: the run for {logical_date.isoformat()} (window from {(window_start or logical_date).isoformat()}) "
        f"is before the DAG's start date {start_date.isoformat()}, so Airflow would run none of its tasks "
        f"and report success. Nothing was extracted or posted. To process this period, set the environment "
        f"variable {START_DATE_ENV} to {first} or earlier and redeploy."
    )
