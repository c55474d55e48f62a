"""Read side of the operations page: what is stuck, who owns it, how old it is — fast at 100k open rows.

Every query here is either keyset-paged on one of migration 0005's partial indexes
(``where status = 'open'``) or an aggregate those indexes answer with an index-only scan, so a
page load never scans closed exceptions, posted receipts or the raw payloads. Writes live in
``operations.actions``; nothing here changes data.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from include.sitoo_erp.posting import states as S
from include.sitoo_erp.staging.db import one_row

PAGE_SIZE = 50

# Filter value -> minimum age of an open exception (since first seen).
MIN_AGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

# Age buckets of receipts stalled before the ledger (age since the till's orderdate).
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("<4h", timedelta(hours=4)),
    ("4-24h", timedelta(hours=24)),
    ("1-7d", timedelta(days=7)),
    (">7d", None),
)
STALL_CATEGORIES = (
    "held_not_finalised",
    "ready_not_posted",
    "awaiting_daily_summary",
    "awaiting_original",
    "quarantined",
)


@dataclass(frozen=True)
class ExceptionFilters:
    kind: str | None = None
    store: str | None = None
    owner: str | None = None
    min_age: str | None = None  # a key of MIN_AGES

    def as_params(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


@dataclass
class ExceptionPage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    filters: ExceptionFilters
    cursor: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def encode_cursor(first_seen_at: datetime, exception_id: int) -> str:
    raw = f"{first_seen_at.isoformat()}|{exception_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The page's keyset position; ``None`` for the first page or a cursor that does not parse."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, exception_id = raw.rsplit("|", 1)
        parsed = datetime.fromisoformat(ts)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed, int(exception_id)
    except (ValueError, UnicodeDecodeError):
        return None


def open_exceptions(
    conn: psycopg.Connection,
    filters: ExceptionFilters = ExceptionFilters(),
    cursor: str | None = None,
    page_size: int = PAGE_SIZE,
    now: datetime | None = None,
) -> ExceptionPage:
    """Open exceptions, oldest first, ``page_size`` a page, keyset-paged on ``(first_seen_at, id)``.

    With a kind, store or owner filter PostgreSQL walks that column's partial index in order;
    without, ``exception_open_age_idx``. It reads ``page_size + 1`` rows and stops: no OFFSET, no count.
    """
    now = now or datetime.now(UTC)
    params: dict[str, Any] = {"limit": page_size + 1}
    where = [sql.SQL("e.status = 'open'"), *_filter_sql(filters, now, params)]
    position = decode_cursor(cursor)
    if position is not None:
        where.append(sql.SQL("(e.first_seen_at, e.exception_id) > (%(after_ts)s, %(after_id)s)"))
        params["after_ts"], params["after_id"] = position
    query = sql.SQL(
        """
        select e.exception_id, e.kind, e.store_externalid, e.owner, e.orderid, e.sku, e.field, e.rule,
               e.subject_key, e.message, e.occurrences, e.first_seen_at, e.last_seen_at, s.receipt_id, s.state as order_state
          from sitoo_erp.exception e
          left join sitoo_erp.order_state s on s.orderid = e.orderid
         where {where}
         order by e.first_seen_at, e.exception_id
         limit %(limit)s
        """
    ).format(where=sql.SQL(" and ").join(where))
    rows, next_cursor = _keyset_page(conn, query, params, page_size, "first_seen_at")
    for row in rows:
        row["age"] = now - row["first_seen_at"]
    return ExceptionPage(rows=rows, next_cursor=next_cursor, filters=filters, cursor=cursor, now=now)


def _filter_sql(filters: ExceptionFilters, now: datetime, params: dict[str, Any]) -> list[sql.Composable]:
    """Where-clauses for the page's filters (kind, store, owner, minimum age), filling ``params``."""
    where: list[sql.Composable] = []
    for column, value in (
        ("kind", filters.kind),
        ("store_externalid", filters.store),
        ("owner", filters.owner),
    ):
        if value:
            where.append(sql.SQL("e.{} = %({})s").format(sql.Identifier(column), sql.SQL(column)))
            params[column] = value
    if filters.min_age in MIN_AGES:
        where.append(sql.SQL("e.first_seen_at <= %(seen_before)s"))
        params["seen_before"] = now - MIN_AGES[filters.min_age]
    return where


def open_counts(
    conn: psycopg.Connection,
    filters: ExceptionFilters = ExceptionFilters(),
    store_limit: int = 25,
    now: datetime | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Open exceptions per kind, store and owner, with the oldest first-seen of each group, counting
    only what the page's filters let through (so the numbers match the list below them).

    Each is one ``group by`` over a partial index whose leading column is the group key
    (index-only scan without filters: ~100k index entries, a few ms, no heap). Stores are capped to
    the ``store_limit`` with most open exceptions.
    """
    now = now or datetime.now(UTC)
    params: dict[str, Any] = {}
    where = sql.SQL(" and ").join([sql.SQL("e.status = 'open'"), *_filter_sql(filters, now, params)])
    out: dict[str, list[dict[str, Any]]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for name, column, limit in (
            ("kind", "kind", None),
            ("store", "store_externalid", store_limit),
            ("owner", "owner", None),
        ):
            query = sql.SQL(
                """
                select {col} as key, count(*) as open, min(first_seen_at) as oldest
                  from sitoo_erp.exception e where {where}
                 group by {col} order by count(*) desc, {col} {limit}
                """
            ).format(
                col=sql.Identifier(column),
                where=where,
                limit=sql.SQL("limit {}").format(sql.Literal(limit)) if limit else sql.SQL(""),
            )
            out[name] = cur.execute(query, params).fetchall()
    out["total"] = [{"key": "all", "open": sum(r["open"] for r in out["kind"])}]
    return out


HISTORY_STATUSES = ("resolved", "ignored")


def closed_exceptions(
    conn: psycopg.Connection,
    filters: ExceptionFilters = ExceptionFilters(),
    status: str | None = None,
    cursor: str | None = None,
    page_size: int = 25,
) -> ExceptionPage:
    """Resolved and ignored exceptions, newest decision first: who (``updated_by``; empty = the
    pipeline itself), when (``resolved_at``) and why (``resolution_note``). Keyset-paged on
    ``(resolved_at, id)`` descending over migration 0012's ``exception_closed_idx``."""
    params: dict[str, Any] = {"limit": page_size + 1}
    where: list[sql.Composable] = [sql.SQL("e.status <> 'open'"), sql.SQL("e.resolved_at is not null")]
    filtered = ExceptionFilters(kind=filters.kind, store=filters.store, owner=filters.owner)
    where += _filter_sql(filtered, datetime.now(UTC), params)
    if status in HISTORY_STATUSES:
        where.append(sql.SQL("e.status = %(status)s"))
        params["status"] = status
    position = decode_cursor(cursor)
    if position is not None:
        where.append(sql.SQL("(e.resolved_at, e.exception_id) < (%(after_ts)s, %(after_id)s)"))
        params["after_ts"], params["after_id"] = position
    query = sql.SQL(
        """
        select e.exception_id, e.kind, e.status, e.store_externalid, e.owner, e.orderid, e.sku, e.subject_key,
               e.message, e.first_seen_at, e.resolved_at, e.resolution_note, e.updated_by, s.receipt_id
          from sitoo_erp.exception e
          left join sitoo_erp.order_state s on s.orderid = e.orderid
         where {where}
         order by e.resolved_at desc, e.exception_id desc
         limit %(limit)s
        """
    ).format(where=sql.SQL(" and ").join(where))
    rows, next_cursor = _keyset_page(conn, query, params, page_size, "resolved_at")
    return ExceptionPage(rows=rows, next_cursor=next_cursor, filters=filters, cursor=cursor)


def _keyset_page(
    conn: psycopg.Connection, query: sql.Composed, params: dict, page_size: int, order_column: str
) -> tuple[list[dict[str, Any]], str | None]:
    """One page (the query fetches ``page_size + 1`` rows) and the cursor after its last row."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    if len(rows) <= page_size:
        return rows, None
    rows = rows[:page_size]
    return rows, encode_cursor(rows[-1][order_column], rows[-1]["exception_id"])


def exception_owners(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Which team owns each exception kind (editable on the page), with who changed it last."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select kind, owner, updated_by, updated_at from sitoo_erp.exception_owner order by kind"
        ).fetchall()


def filter_choices(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Values for the filter drop-downs: every known kind and owner, the mapped stores."""
    with conn.cursor() as cur:
        kinds = [r[0] for r in cur.execute("select kind from sitoo_erp.exception_owner order by kind")]
        owners = [
            r[0] for r in cur.execute("select distinct owner from sitoo_erp.exception_owner order by owner")
        ]
        stores = [
            r[0] for r in cur.execute("select store_externalid from sitoo_erp.map_store_location order by 1")
        ]
    return {"kind": kinds, "owner": owners, "store": stores}


def stalled_receipts(conn: psycopg.Connection, now: datetime | None = None) -> dict[str, Any]:
    """Receipts not in the ledger yet, per category and age bucket (age since the till's orderdate).

    Categories: held and not finalised in Sitoo (open/parked/payment pending), finalised and ready
    but not posted, ready and waiting for its store-day's daily summary (summary posting mode: it
    posts once the day has closed, so a day's wait is normal there), a return awaiting its original
    sale, quarantined by the gate or the ERP.
    Reads only ``held`` and ``quarantined`` rows through ``order_state_state_idx``.
    """
    now = now or datetime.now(UTC)
    bounds = {name: now - upper for name, upper in AGE_BUCKETS if upper is not None}
    rows = conn.execute(
        """
        select case
                 when state = %(quarantined)s then 'quarantined'
                 when reason_code = %(ready)s and sitoo_erp.posting_mode(store_externalid,
                      (select o.business_date from sitoo_erp.sitoo_order o where o.orderid = order_state.orderid))
                      = 'daily_summary' then 'awaiting_daily_summary'
                 when reason_code = %(ready)s then 'ready_not_posted'
                 when reason_code = %(awaiting)s then 'awaiting_original'
                 else 'held_not_finalised'
               end as category,
               case
                 when orderdate is null or orderdate > %(b4h)s then '<4h'
                 when orderdate > %(b24h)s then '4-24h'
                 when orderdate > %(b7d)s then '1-7d'
                 else '>7d'
               end as bucket,
               count(*) as n,
               min(orderdate) as oldest
          from sitoo_erp.order_state
         where state in (%(held)s, %(quarantined)s)
         group by 1, 2
        """,
        {
            "quarantined": S.QUARANTINED,
            "held": S.HELD,
            "ready": S.ReasonCode.READY,
            "awaiting": S.ReasonCode.AWAITING_ORIGINAL,
            "b4h": bounds["<4h"],
            "b24h": bounds["4-24h"],
            "b7d": bounds["1-7d"],
        },
    ).fetchall()
    grid = {c: {b: 0 for b, _ in AGE_BUCKETS} for c in STALL_CATEGORIES}
    oldest: dict[str, datetime | None] = dict.fromkeys(STALL_CATEGORIES)
    for category, bucket, n, first in rows:
        grid[category][bucket] = n
        if first is not None and (oldest[category] is None or first < oldest[category]):
            oldest[category] = first
    return {
        "buckets": [b for b, _ in AGE_BUCKETS],
        "grid": grid,
        "oldest": {c: (now - t if t else None) for c, t in oldest.items()},
        "total": sum(sum(v.values()) for v in grid.values()),
    }


def stalled_orders(conn: psycopg.Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The oldest receipts still held back (not quarantined — those are in the exception queue)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """
            select orderid, store_externalid, receipt_id, reason, orderdate, held_since
              from sitoo_erp.order_state
             where state = %s
             order by orderdate nulls last
             limit %s
            """,
            (S.HELD, limit),
        ).fetchall()


def month_tax_variance(conn: psycopg.Connection, now: datetime | None = None) -> dict[str, Any]:
    """This calendar month's (UTC) tax variance per VAT rate: POS tax (posted) vs the ERP's own per-line tax."""
    now = now or datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            select vat_rate, count(*) as receipts, sum(pos_tax) as pos_tax, sum(erp_line_tax) as erp_line_tax,
                   sum(variance) as variance, sum(abs(variance)) as abs_variance,
                   count(*) filter (where variance <> 0) as receipts_with_variance,
                   max(abs(variance)) as max_abs
              from sitoo_erp.receipt_tax_variance
             where recorded_at >= %s
             group by vat_rate order by vat_rate
            """,
            (month_start,),
        ).fetchall()
    total = {
        key: sum((r[key] for r in rows), start=0)
        for key in (
            "receipts",
            "pos_tax",
            "erp_line_tax",
            "variance",
            "abs_variance",
            "receipts_with_variance",
        )
    }
    return {"month": month_start.strftime("%Y-%m"), "rates": rows, "total": total}


def recent_mapping_edits(conn: psycopg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest audited changes by people (mappings, owners, exception decisions), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """
            select audit_id, entity, entity_key, action, before, after, actor, source, note, changed_at
              from sitoo_erp.audit_log
             order by changed_at desc, audit_id desc
             limit %s
            """,
            (limit,),
        ).fetchall()


def mapping_row(conn: psycopg.Connection, table: str, key_column: str, key: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql.SQL("select * from sitoo_erp.{} where {} = %s").format(
                sql.Identifier(table), sql.Identifier(key_column)
            ),
            (key,),
        ).fetchone()


def summary_documents(conn: psycopg.Connection, limit: int = 20) -> dict[str, Any]:
    """Summary posting mode: the latest daily summaries (store-day, supplement, part, receipts, status)
    and the totals — documents and the receipts in them, posted or pending (sent, answer not recorded).

    The latest documents come through migration 0015's ``(business_date desc)`` index; the totals
    are one pass over ``summary_document`` (one row per store-day and direction, not per receipt)."""
    present = one_row(conn.execute("select to_regclass('sitoo_erp.summary_document') is not null"))[0]
    if not present:
        return {"available": False, "documents": [], "totals": {}}
    with conn.cursor(row_factory=dict_row) as cur:
        totals = cur.execute(
            """
            select count(*) filter (where status = 'posted') as posted_documents,
                   count(*) filter (where status = 'posted' and supplement > 0) as posted_supplements,
                   count(*) filter (where status = 'pending') as pending_documents,
                   coalesce(sum(receipt_count) filter (where status = 'posted'), 0) as posted_receipts,
                   coalesce(sum(receipt_count) filter (where status = 'pending'), 0) as pending_receipts,
                   count(distinct (store_externalid, business_date)) as store_days
              from sitoo_erp.summary_document
            """
        ).fetchone()
        documents = cur.execute(
            """
            select external_id, store_externalid, business_date, direction, supplement, part, status,
                   receipt_count, line_count, gross_amount, erp_id, tender_journal_external_id, posted_at
              from sitoo_erp.summary_document
             order by business_date desc, store_externalid, direction, supplement, part
             limit %s
            """,
            (limit,),
        ).fetchall()
    return {"available": True, "documents": documents, "totals": totals}


def reconciliation_status(conn: psycopg.Connection) -> dict[str, Any]:
    """Per store, the latest reconciliation run: Sitoo vs ERP totals, differences, unexplained lines.

    The tables come from migration 0004 (monthly reconciliation); where they do not exist
    (``to_regclass`` is null) the page says "no reconciliation yet".
    """
    tables = conn.execute(
        "select to_regclass('sitoo_erp.reconciliation_run') is not null "
        "and to_regclass('sitoo_erp.reconciliation_cell') is not null "
        "and to_regclass('sitoo_erp.reconciliation_line') is not null"
    ).fetchone()
    assert tables is not None  # a select without from: always one row
    if not tables[0]:
        return {"available": False, "stores": [], "run": None}
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(
            """
            select recon_run_id, dag_id, run_id, date_from, date_to, status, started_at, compared_at,
                   summary -> 'sitoo' -> 'receipts_by_store' as receipts_by_store
              from sitoo_erp.reconciliation_run
             where status <> 'running'
             order by recon_run_id desc limit 1
            """
        ).fetchone()
        if run is None:
            return {"available": True, "stores": [], "run": None}
        stores = cur.execute(
            """
            with cells as (
                select store_externalid as store, sum(sitoo_receipts) as sitoo_receipts,
                       sum(sitoo_net) as sitoo_net, sum(erp_net) as erp_net,
                       sum(sitoo_tax) as sitoo_tax, sum(erp_tax) as erp_tax
                  from sitoo_erp.reconciliation_cell where recon_run_id = %(run)s
                 group by store_externalid
            ), lines as (
                select store_externalid as store, count(*) as lines,
                       count(*) filter (where not explained) as unexplained,
                       sum(diff_net) filter (where not explained) as unexplained_net,
                       string_agg(distinct class, ', ' order by class) as classes
                  from sitoo_erp.reconciliation_line where recon_run_id = %(run)s
                 group by store_externalid
            ), stores as (  -- a store in either; UNION keeps one null (lines without a store)
                select store from cells union select store from lines
            )
            select k.store, c.sitoo_receipts, c.sitoo_net, c.erp_net,
                   c.sitoo_net - c.erp_net as diff_net, c.sitoo_tax - c.erp_tax as diff_tax,
                   coalesce(l.lines, 0) as lines, coalesce(l.unexplained, 0) as unexplained,
                   l.unexplained_net, l.classes
              from stores k
              left join cells c on c.store is not distinct from k.store
              left join lines l on l.store is not distinct from k.store
             order by coalesce(l.unexplained, 0) desc, 1
            """,
            {"run": run["recon_run_id"]},
        ).fetchall()
    # A receipt with two VAT rates is in two cells: count receipts once per store from the run's
    # own summary (runs from before it was recorded fall back to the cell sums).
    per_store = run.pop("receipts_by_store")
    if per_store is not None:
        for row in stores:
            if row["store"] is not None and row["sitoo_receipts"] is not None:
                row["sitoo_receipts"] = per_store.get(str(row["store"]), 0)
    return {"available": True, "stores": stores, "run": run}


def gate_runs_for(conn: psycopg.Connection, runs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Our own gate summary for each (dag_id, run_id): receipts checked and failed, systemic or not."""
    if not runs:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            select g.dag_id, k.run_id, max(g.batch_size) as checked, max(g.failed_receipts) as failed,
                   bool_or(g.systemic) as systemic, bool_and(g.success) as success, count(*) as gate_runs
              from unnest(%s::text[], %s::text[]) as k(dag_id, run_id)
              join sitoo_erp.gate_run g
                on g.dag_id = k.dag_id and g.run_id in (k.run_id, k.dag_id || ' ' || k.run_id)
             group by g.dag_id, k.run_id
            """,
            ([d for d, _ in runs], [r for _, r in runs]),
        ).fetchall()
    return {(r["dag_id"], r["run_id"]): r for r in rows}


def last_dag_runs(conn: psycopg.Connection, dag_id_prefix: str = "sitoo_") -> list[dict[str, Any]]:
    """The latest run of each of our DAGs, from the package's own run history (``sitoo_erp.task_run``,
    written by the operators themselves; see ``operations/task_runs.py``).

    The latest run is the one whose task started last. Each task counts with its latest try: the run
    is ``failed`` if any task's latest try failed, ``running`` if any has started and not ended, else
    ``success``. For each run: interval, duration (first try's start to last end), task states, the numeric
    counts each task returned (extracted, ready, posted, quarantined, ...) and each failure's error.
    Tasks that never started (upstream failed) have no row and are not counted.
    """
    present = one_row(conn.execute("select to_regclass('sitoo_erp.task_run') is not null"))[0]
    if not present:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        tries = cur.execute(
            """
            with latest as (  -- per DAG, the run of its most recently started task
                select distinct on (dag_id) dag_id, run_id
                  from sitoo_erp.task_run
                 where dag_id like %(prefix)s
                 order by dag_id, started_at desc
            )
            select distinct on (t.dag_id, t.task_id, t.map_index)
                   t.dag_id, t.run_id, t.task_id, t.try_number, t.run_type, t.data_interval_start,
                   t.data_interval_end, t.state, t.started_at, t.ended_at, t.counts, t.error,
                   min(t.started_at) over (partition by t.dag_id, t.run_id) as run_started_at  -- earlier tries too
              from sitoo_erp.task_run t
              join latest l on l.dag_id = t.dag_id and l.run_id = t.run_id
             order by t.dag_id, t.task_id, t.map_index, t.try_number desc
            """,
            {"prefix": dag_id_prefix.replace("%", r"\%").replace("_", r"\_") + "%"},
        ).fetchall()
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in tries:
        runs.setdefault(row["dag_id"], []).append(row)
    return [_run_of(tasks) for _, tasks in sorted(runs.items())]


def _run_of(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """One DAG run as the page shows it, from the latest try of each of its tasks."""
    tasks.sort(key=lambda t: t["started_at"])
    states = [t["state"] for t in tasks]
    state = "failed" if "failed" in states else "running" if "running" in states else "success"
    start = tasks[0]["run_started_at"]
    end = None if "running" in states else max(t["ended_at"] for t in tasks)
    task_states: dict[str, int] = {}
    for s in states:
        task_states[s] = task_states.get(s, 0) + 1
    first = tasks[0]
    return {
        "dag_id": first["dag_id"],
        "run_id": first["run_id"],
        "state": state,
        "run_type": next((t["run_type"] for t in tasks if t["run_type"]), ""),
        "data_interval_start": next(
            (t["data_interval_start"] for t in tasks if t["data_interval_start"]), None
        ),
        "data_interval_end": next((t["data_interval_end"] for t in tasks if t["data_interval_end"]), None),
        "start_date": start,
        "end_date": end,
        "duration": (end - start) if end else None,
        "task_states": task_states,
        "counts": {t["task_id"]: t["counts"] for t in tasks if t["counts"]},
        "errors": {t["task_id"]: t["error"] for t in tasks if t["state"] == "failed" and t["error"]},
    }
