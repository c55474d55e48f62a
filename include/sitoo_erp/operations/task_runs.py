"""Write side of the run history: each task try as the package's operators saw it (``sitoo_erp.task_run``).

The operations page reads the last run of each DAG from here, not from Airflow's metadata database:
the counts a task returned (posted, quarantined, ...) and a failure's exception are recorded by the
task itself, in the package's own schema. Recording is best effort by design — the caller
(``operators/base.py``) logs a failed write and lets the task's own outcome stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# Rows older than this are pruned as a DAG's tasks start (the latest run of each DAG is always kept):
# three months of hourly runs is ~25k rows, and a monthly run stays on the page until the next one.
RETENTION = timedelta(days=90)
ERROR_MAX_CHARS = 2000

RUNNING, SUCCESS, FAILED, SKIPPED = "running", "success", "failed", "skipped"


@dataclass(frozen=True)
class TaskTry:
    """Which try of which task of which DAG run (Airflow's identity of a task instance try)."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int = 1
    map_index: int = -1
    run_type: str | None = None
    logical_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None


def numeric_counts(result: Any) -> dict[str, int | float]:
    """The numbers of a task's summary (extracted, posted, quarantined, ...); the rest is not a count."""
    if not isinstance(result, Mapping):
        return {}
    return {str(k): v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def error_text(error: BaseException) -> str:
    """``Class: message`` of a failure, bounded (a payload quoted in a message must not bloat the table)."""
    text = f"{type(error).__name__}: {error}".strip()
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


_UPSERT = """
    insert into sitoo_erp.task_run (dag_id, run_id, task_id, map_index, try_number, run_type, logical_date,
                                    data_interval_start, data_interval_end, state, started_at, ended_at,
                                    counts, error)
    values (%(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, %(try_number)s, %(run_type)s, %(logical_date)s,
            %(data_interval_start)s, %(data_interval_end)s, %(state)s, %(started_at)s, %(ended_at)s,
            %(counts)s, %(error)s)
    on conflict (dag_id, run_id, task_id, map_index, try_number) do update
       set state = excluded.state, started_at = excluded.started_at, ended_at = excluded.ended_at,
           counts = excluded.counts, error = excluded.error
"""


def _write(
    conn: psycopg.Connection,
    task: TaskTry,
    state: str,
    started_at: datetime,
    ended_at: datetime | None,
    counts: Mapping[str, int | float] | None = None,
    error: str | None = None,
) -> None:
    conn.execute(
        _UPSERT,
        {
            **vars(task),
            "state": state,
            "started_at": started_at,
            "ended_at": ended_at,
            "counts": Jsonb(dict(counts or {})),
            "error": error,
        },
    )


def record_start(
    conn: psycopg.Connection, task: TaskTry, started_at: datetime, retention: timedelta = RETENTION
) -> int:
    """The try is running (a try that never ends — a killed worker — stays ``running``); prunes the
    DAG's rows older than ``retention``. Returns the rows pruned."""
    _write(conn, task, RUNNING, started_at, None)
    return prune(conn, task.dag_id, started_at - retention)


def record_end(
    conn: psycopg.Connection,
    task: TaskTry,
    started_at: datetime,
    ended_at: datetime,
    state: str,
    counts: Mapping[str, int | float] | None = None,
    error: str | None = None,
) -> None:
    """The try's outcome: ``success`` with the counts it returned, ``failed`` with its error, or
    ``skipped``. An upsert, so a try whose start could not be recorded (the schema's first
    migration) still leaves its row."""
    if state not in (SUCCESS, FAILED, SKIPPED):
        raise ValueError(f"a finished task try is success, failed or skipped, not {state!r}")
    _write(conn, task, state, started_at, ended_at, counts, error)


def prune(conn: psycopg.Connection, dag_id: str, before: datetime) -> int:
    """Delete the DAG's tries started before ``before``, except those of its latest run (a monthly
    DAG idle for longer than the retention still shows its last run)."""
    cur = conn.execute(
        """
        delete from sitoo_erp.task_run t
         where t.dag_id = %(dag_id)s and t.started_at < %(before)s
           and t.run_id <> (select l.run_id from sitoo_erp.task_run l
                             where l.dag_id = %(dag_id)s order by l.started_at desc limit 1)
        """,
        {"dag_id": dag_id, "before": before},
    )
    return cur.rowcount
