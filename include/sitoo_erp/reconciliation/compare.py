"""Compare and classify: Sitoo vs ERP vs Z-reports vs the posting log, every difference named.

``reconcile(conn, erp, period)`` (``erp``: the ERP adapter, for its ledger reads) writes one
``reconciliation_run`` with its cells (store x business day x tax code, POS sign) and lines (one per
difference) and returns a small summary.

Classes (``reconciliation_line.class``) and how each is found:

- **missing_in_erp** — a finalised Sitoo receipt of the period (Closed + Successful, POS) that is not
  ``posted`` in the state ledger; cause from the ledger and the open exception: *quarantined* (an open
  exception names the rule and owner), *held* (in flight: ready to post, awaiting its original sale,
  or uploaded after the last hourly sync — the next hourly run posts it), *stalled* (held longer than
  ``stall_after`` or with an open stalled exception), *unknown* (excluded although finalised, never
  classified although the hourly sync should have seen it, or logged as posted but absent in the ERP).
- **blocked_systemic_stop** — a finalised receipt ready to post while the quality gate's systemic stop
  is in force (``systemic_alert`` holds its causes until a gate run is not systemic): no run posts
  anything until the cause is fixed, so it is *not* explained as held in flight; unexplained until it
  posts, with the stop's causes named.
- **extra_in_erp** — an ERP document with our externalId and no receipt behind it (or a receipt we
  never logged as posted). **duplicate_in_erp** — a second document for a receipt (another externalId
  resolving to the same receipt, or the same externalId under two record types).
- **amount_mismatch** — a logged document whose ERP net/tax differs from what was posted.
- **tax_variance** — a logged document whose ERP tax differs from the POS tax by exactly the tax
  variance recorded at posting (``receipt_tax_variance``: the ERP computed VAT per line itself):
  explained. A tax difference the recorded variance does not explain is an amount mismatch.
- **zreport_mismatch** — a register-day whose Z-report (sales/refund totals and counts) disagrees
  with its finalised receipts, or receipts without a Z-report.
- **unexplained_residual** — what is left of a store-day's Sitoo - ERP difference after every line
  above (so no difference can go unclassified).

**Summary posting mode** (``posting/summary.py``): the store-day sums are compared exactly as above (the
ERP's daily summaries carry the day's tax per code); the drill-down compares each ERP document with the
posted ``summary_document``; and the per-receipt proof (``_summary_lines``) checks each posted summary,
supplement or part against its ERP document (type, tranDate, lines) and against its receipts as Sitoo
has them now (net and tax per tax code = the sum of its ``summary_receipt`` receipts, each still
finalised and unchanged since it was summarised), naming the receipts that moved. A finalised receipt
the state ledger calls posted that is on no posted summary (and in no posting log) is *missing in
ERP* with cause ``not_in_any_summary``; ``summary_receipt``'s key makes a second summary impossible.

The per-document drill-down (reference Q4) runs only for store-days where the ERP's totals or
document count differ from the posting log's, so a clean 1,000,000-receipt month costs two aggregate
SuiteQL queries per few days (as many days as fit one page) — fetched in a thread while PostgreSQL
builds the Sitoo cells in one set-based pass — and a few SQL statements in PostgreSQL.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from include.sitoo_erp.domain import FINALISED_SQL, parse_receipt_external_id
from include.sitoo_erp.erp.adapter import ErpAdapter, ErpDocument
from include.sitoo_erp.posting import states as S
from include.sitoo_erp.posting.classify import business_clock
from include.sitoo_erp.posting.vat import receipt_vat_sql, staged_rates_sql
from include.sitoo_erp.reconciliation.period import Period
from include.sitoo_erp.staging.db import one_row

ZERO = Decimal("0.00")

EXPLAINED_CAUSES = ("quarantined", "held")
OWNER = {
    "missing_in_erp": "data_engineering",
    "extra_in_erp": "finance",
    "duplicate_in_erp": "finance",
    "amount_mismatch": "finance",
    "tax_variance": "finance",
    "zreport_mismatch": "retail_ops",
    "unexplained_residual": "finance",
    "receipt_mismatch": "finance",
    "blocked_systemic_stop": "data_engineering",
}
BLOCKED = "blocked_systemic_stop"
CENT = Decimal("0.01")

FINALISED = (
    f"{FINALISED_SQL} and o.business_date between %(date_from)s and %(date_to)s "
    "and (%(all_stores)s or o.store_externalid = any(%(stores)s))"
)


# Per receipt and VAT rate, POS sign: the receipt's net and VAT at R by the one rule the documents post
# (``posting/vat.py``: however the till computed VAT; a bonus cheque is in its row's price, ``loyalty.py``,
# and the document's loyalty discount takes back exactly what its lines add, so the rows are the
# receipt: gross per store-day = sum of money_gross), the cash round-off
# added to the 0 % rate. ``rr`` has one row per receipt x rate; ``extra`` narrows the receipts (the
# missing query: only those not posted).
def _receipt_rates(extra: str = "") -> str:
    return f"""
with f as (
    select o.orderid, o.store_externalid, o.business_date, o.money_gross < 0 as is_return,
           o.money_roundoff, o.money_net, o.money_vat
      from sitoo_erp.sitoo_order o where {FINALISED}{extra}
), v as ({receipt_vat_sql(staged_rates_sql("f"))}
), per as (
    select v.orderid, v.vat_rate, coalesce(v.pos_net, v.net) as net, v.pos_vat as tax from v
    union all
    select f.orderid, 0, f.money_roundoff, 0 from f where f.money_roundoff <> 0
), agg as (
    select orderid, vat_rate, sum(net) as net, sum(tax) as tax from per group by orderid, vat_rate
), rr as (
    select f.orderid, f.store_externalid, f.business_date, f.is_return, agg.vat_rate, agg.net, agg.tax
      from f join agg using (orderid)
)"""


# The Sitoo cells: the receipt x rate figures above summed per store, business day and tax code.
SITOO_CELLS_SQL = f"""{_receipt_rates()}
select rr.store_externalid, rr.business_date,
       coalesce(m.tax_code_id, 'rate:' || trim_scale(rr.vat_rate)::text), rr.vat_rate,
       count(*), sum(rr.net), sum(rr.tax), sum(case when rr.is_return then rr.net + rr.tax else 0 end)
  from rr left join sitoo_erp.map_vat_tax_code m on m.vat_rate = rr.vat_rate
 group by rr.store_externalid, rr.business_date, coalesce(m.tax_code_id, 'rate:' || trim_scale(rr.vat_rate)::text),
          rr.vat_rate
"""

# The receipts behind the cells (a finalised receipt with a row or a round-off) and their recorded tax
# variance, per store for the summary: each receipt counted once (a cell counts a receipt once per tax
# code it has lines at, so summing cells counts a two-rate receipt twice).
RECEIPTS_SQL = f"""
select o.store_externalid, count(*), coalesce(sum(v.variance), 0)
  from sitoo_erp.sitoo_order o
  left join (select orderid, sum(variance) as variance from sitoo_erp.receipt_tax_variance group by orderid) v
       using (orderid)
 where {FINALISED}
   and (o.money_roundoff <> 0 or exists (select 1 from sitoo_erp.sitoo_order_row r where r.orderid = o.orderid))
 group by o.store_externalid
"""

# No ERP document logged for it: a posted receipt sent back through the gate for a correction (changed
# in Sitoo after posting) still has its document, and is proven per receipt; a receipt in a posted daily
# summary is in the ERP too (proven per document by ``_summary_lines``). What is left and still called
# posted by the state ledger is on no document at all (cause ``not_in_any_summary`` / ``not_logged``).
NOT_POSTED = (
    " and not exists (select 1 from sitoo_erp.posting_log pl0 where pl0.orderid = o.orderid"
    " and pl0.document_type in ('sale', 'refund', 'credit_memo'))"
    " and not exists (select 1 from sitoo_erp.summary_receipt sr0 join sitoo_erp.summary_document sd0"
    " using (external_id) where sr0.orderid = o.orderid and sd0.status = 'posted')"
)


@dataclass
class ReconResult:
    recon_run_id: int
    period: dict
    cells: int = 0
    store_days: int = 0
    drilled_store_days: int = 0
    erp_queries: int = 0
    sitoo: dict = field(default_factory=dict)
    erp: dict = field(default_factory=dict)
    lines_by_class: dict = field(default_factory=dict)
    unexplained: int = 0
    unexplained_amount: str = "0.00"
    tax_variance_total: str = "0.00"
    timings: dict = field(default_factory=dict)
    receipts_proven: int = 0
    receipt_mismatches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _params(period: Period) -> dict[str, Any]:
    return {
        "date_from": period.date_from,
        "date_to": period.date_to,
        "all_stores": not period.stores,
        "stores": list(period.stores),
    }


def _lookup(conn: psycopg.Connection) -> tuple[dict[str, str], dict[str, str], dict[str, Decimal]]:
    loc_by_store: dict[str, str] = dict(
        conn.execute("select store_externalid, location_id from sitoo_erp.map_store_location")
    )
    store_by_loc = {v: k for k, v in loc_by_store.items()}
    rate_by_code = {
        code: rate
        for rate, code in conn.execute("select vat_rate, tax_code_id from sitoo_erp.map_vat_tax_code")
    }
    return loc_by_store, store_by_loc, rate_by_code


def _insert_lines(conn: psycopg.Connection, run_id: int, lines: list[dict]) -> None:
    if not lines:
        return
    cols = (
        "class, cause, explained, owner, store_externalid, business_date, orderid, receipt_id, external_id, "
        "erp_id, registerid, sitoo_amount, erp_amount, diff_net, diff_tax, detail"
    )
    names = [c.strip() for c in cols.split(",")]
    with (
        conn.cursor() as cur,
        cur.copy(f"copy sitoo_erp.reconciliation_line (recon_run_id, {cols}) from stdin") as cp,
    ):
        for ln in lines:
            ln.setdefault("owner", OWNER[ln["class"]])
            cp.write_row((run_id, *[ln.get(n) for n in names]))


def reconcile(
    conn: psycopg.Connection,
    erp: ErpAdapter,
    period: Period,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    stall_after: timedelta = timedelta(hours=24),
    now: datetime | None = None,
    days_per_query: int | None = None,
) -> ReconResult:
    """One reconciliation run of ``period``: cells, every difference as a line, and the run's summary.

    The steps run in one transaction, so a failed run leaves no half-written cells or lines.
    """
    t0 = time.perf_counter()
    p = _params(period)
    loc_by_store, store_by_loc, rate_by_code = _lookup(conn)
    locations = _locations(period, loc_by_store)
    recon_id = _start_run(conn, period, dag_id, run_id)
    result = ReconResult(recon_id, period.as_dict())
    p["run"] = recon_id

    # ---- ERP totals (SuiteQL, aggregated in the ERP, by day), fetched while PostgreSQL builds the
    # Sitoo side: the two run in different processes (the ERP's and PostgreSQL's).
    rows_per_day = len(locations or loc_by_store) * max(1, len(rate_by_code))

    def erp_totals():
        t = time.perf_counter()
        out = erp.ledger_totals(period.days, locations, rows_per_day, days_per_query)
        result.timings["erp_totals_s"] = round(time.perf_counter() - t, 3)
        return out

    def erp_receipts():
        t = time.perf_counter()
        out = erp.ledger_receipt_rows(period.days, locations)
        result.timings["erp_receipts_s"] = round(time.perf_counter() - t, 3)
        return out

    lines: list[dict] = []
    with ThreadPoolExecutor(1, thread_name_prefix="recon-erp") as pool, conn.transaction():
        erp_future = pool.submit(erp_totals)
        receipts_future = pool.submit(erp_receipts)  # after the totals, in the same ERP thread
        t = time.perf_counter()
        conn.execute("set local work_mem = '256MB'")
        _insert_sitoo_cells(conn, p, recon_id)
        result.timings["sitoo_cells_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        receipts_by_store, tax_variance = _sitoo_receipts(conn, p)
        result.timings["sitoo_receipts_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        erp_cells, erp_docs, result.erp_queries = erp_future.result()
        result.timings["erp_wait_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        agg, docs_by_store_day = _insert_erp_cells(conn, p, recon_id, erp_cells, erp_docs, store_by_loc)
        result.timings["erp_cells_s"] = round(time.perf_counter() - t, 3)

        lines.extend(_missing_lines(conn, p, stall_after, now, result.timings))

        # ---- per-document drill-down of the store-days where the ERP and the posting log differ.
        t = time.perf_counter()
        drill = _store_days_to_drill(conn, p, agg, docs_by_store_day)
        result.drilled_store_days = len(drill)
        for store, day in drill:
            loc = loc_by_store.get(store) or store.removeprefix("location:")
            docs = erp.ledger_documents(day, loc)
            result.erp_queries += 1
            lines.extend(_classify_documents(conn, store, day, docs))

        result.timings["drill_s"] = round(time.perf_counter() - t, 3)
        # ---- every posted receipt against its ERP document (invariant 10), set-based in PostgreSQL.
        t = time.perf_counter()
        doc_rows, n_queries = receipts_future.result()
        result.erp_queries += n_queries
        result.timings["erp_receipts_wait_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        receipt_lines, result.receipts_proven = _receipt_lines(conn, p, doc_rows, lines)
        summary_lines, summarised = _summary_lines(conn, p, lines)
        result.receipts_proven += summarised
        result.receipt_mismatches = len(receipt_lines) + len(summary_lines)
        lines.extend(receipt_lines)
        lines.extend(summary_lines)
        result.timings["receipts_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        # ---- Z-reports vs receipts, per register x business day.
        lines.extend(_zreport_lines(conn, p))
        _insert_lines(conn, recon_id, lines)

        result.timings["zreports_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        # ---- residual per store-day: Sitoo - ERP minus every classified difference.
        _insert_lines(conn, recon_id, _residual_lines(conn, p, recon_id))

        _summarise(conn, p, result, receipts_by_store, tax_variance)
        result.timings["total_s"] = round(time.perf_counter() - t0, 3)
        conn.execute(
            "update sitoo_erp.reconciliation_run set status = 'compared', compared_at = now(), summary = %s "
            "where recon_run_id = %s",
            (Jsonb(_jsonable(result.as_dict())), recon_id),
        )
    return result


def _locations(period: Period, loc_by_store: dict[str, str]) -> list[str] | None:
    """The ERP locations of the period's stores (None: all); a store without a location cannot be read."""
    if period.stores:
        unknown = [s for s in period.stores if s not in loc_by_store]
        if unknown:
            raise ValueError(f"stores without an ERP location mapping: {unknown}")
    return [loc_by_store[s] for s in period.stores] if period.stores else None


def _start_run(conn: psycopg.Connection, period: Period, dag_id: str | None, run_id: str | None) -> int:
    """The ``reconciliation_run`` row every cell and line of this run hangs off."""
    run_row = conn.execute(
        "insert into sitoo_erp.reconciliation_run (dag_id, run_id, date_from, date_to, stores) "
        "values (%s, %s, %s, %s, %s) returning recon_run_id",
        (dag_id, run_id, period.date_from, period.date_to, list(period.stores) or None),
    ).fetchone()
    assert run_row is not None  # insert … returning: always one row
    return run_row[0]


def _insert_sitoo_cells(conn: psycopg.Connection, p: dict[str, Any], recon_id: int) -> None:
    """The Sitoo side of the cells (store x day x tax code), in one set-based pass in PostgreSQL."""
    sitoo_cells = conn.execute(SITOO_CELLS_SQL, p).fetchall()
    with (
        conn.cursor() as cur,
        cur.copy(
            "copy sitoo_erp.reconciliation_cell (recon_run_id, store_externalid, business_date, tax_code_id, "
            "vat_rate, sitoo_receipts, sitoo_net, sitoo_tax, sitoo_returns) from stdin"
        ) as cp,
    ):
        for row in sitoo_cells:
            cp.write_row((recon_id, *row))


def _sitoo_receipts(
    conn: psycopg.Connection, p: dict[str, Any]
) -> tuple[dict[Any, tuple[Any, Any]], Decimal]:
    """Receipts (each counted once) and tax variance per store, plus the posted summaries' variance."""
    receipts_by_store = {
        store: (n, variance) for store, n, variance in conn.execute(RECEIPTS_SQL, p).fetchall()
    }
    tax_variance = sum((v for _, v in receipts_by_store.values()), Decimal(0))
    tax_variance += one_row(
        conn.execute(
            "select coalesce(sum(tax_variance), 0) from sitoo_erp.summary_document where status = 'posted' "
            "and business_date between %(date_from)s and %(date_to)s "
            "and (%(all_stores)s or store_externalid = any(%(stores)s))",
            p,
        )
    )[0]
    return receipts_by_store, tax_variance


def _insert_erp_cells(
    conn: psycopg.Connection,
    p: dict[str, Any],
    recon_id: int,
    erp_cells: Any,
    erp_docs: Any,
    store_by_loc: dict[str, str],
) -> tuple[dict[tuple[str, date, str], list[Decimal]], dict[tuple[str, date], int]]:
    """The ERP side merged into the same cells (an unmapped location stays visible as ``location:…``).

    Returns the ERP's net/tax per (store, day, tax code) and its document count per store-day.
    """
    agg: dict[tuple[str, date, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for c in erp_cells:
        store = store_by_loc.get(c.location_id, f"location:{c.location_id}")
        a = agg[(store, c.day, c.tax_code_id)]
        a[0] += c.net
        a[1] += c.tax
    docs_by_store_day = {
        (store_by_loc.get(loc, f"location:{loc}"), day): n for (loc, day), n in erp_docs.items()
    }
    with conn.cursor() as cur:
        cur.execute(
            "create temp table _recon_erp (store text, day date, code text, net numeric, tax numeric) on commit drop"
        )
        with cur.copy("copy _recon_erp from stdin") as cp:
            for (store, day, code), (net, tax) in agg.items():
                cp.write_row((store, day, code, net, tax))
    conn.execute(
        """
            insert into sitoo_erp.reconciliation_cell (recon_run_id, store_externalid, business_date, tax_code_id,
                vat_rate, erp_net, erp_tax)
            select %(run)s, e.store, e.day, e.code, m.vat_rate, e.net, e.tax
              from _recon_erp e left join sitoo_erp.map_vat_tax_code m on m.tax_code_id = e.code
            on conflict (recon_run_id, store_externalid, business_date, tax_code_id)
            do update set erp_net = excluded.erp_net, erp_tax = excluded.erp_tax
            """,
        p,
    )
    # The ERP's document count of a store-day goes on its first cell (by tax code), in one update.
    if docs_by_store_day:
        keys = list(docs_by_store_day)
        conn.execute(
            """
                update sitoo_erp.reconciliation_cell c set erp_docs = d.n
                  from (select store, day, n from unnest(%(s)s::text[], %(d)s::date[], %(n)s::int[]) as u(store, day, n)) d
                 where c.recon_run_id = %(run)s and c.store_externalid = d.store and c.business_date = d.day
                   and c.tax_code_id = (select min(c2.tax_code_id) from sitoo_erp.reconciliation_cell c2
                                         where c2.recon_run_id = %(run)s and c2.store_externalid = d.store
                                           and c2.business_date = d.day)
                """,
            {
                "run": recon_id,
                "s": [k[0] for k in keys],
                "d": [k[1] for k in keys],
                "n": [docs_by_store_day[k] for k in keys],
            },
        )
    return agg, docs_by_store_day


@dataclass(frozen=True)
class _SystemicStop:
    """The quality gate's systemic stop in force (count 0: none): it blocks receipts ready to post."""

    count: int
    since: Any
    causes: str


def _systemic_stop(conn: psycopg.Connection) -> _SystemicStop:
    """A systemic stop keeps its causes until a gate run is not systemic: read them for the lines' why."""
    stop_count, stop_since = one_row(
        conn.execute("select count(*), min(alerted_at) from sitoo_erp.systemic_alert")
    )
    stop_causes = "; ".join(
        r[0]
        for r in conn.execute("select cause from sitoo_erp.systemic_alert order by cause limit 5").fetchall()
    )
    return _SystemicStop(stop_count, stop_since, stop_causes)


def _missing_lines(
    conn: psycopg.Connection,
    p: dict[str, Any],
    stall_after: timedelta,
    now: datetime | None,
    timings: dict[str, Any],
) -> list[dict]:
    """Missing in ERP: finalised receipts not posted, with the ledger's and exceptions' why."""
    watermark = conn.execute(
        "select value from sitoo_erp.extract_watermark where stream = 'sitoo_orders'"
    ).fetchone()
    p["watermark"] = watermark[0] if watermark else 0
    # Business time (the run's data interval end, else the newest order date staged), the clock
    # classify's held_since is kept in: a replayed or backfilled period stalls by its own time.
    p["stall_before"] = business_clock(conn, now) - stall_after
    # A systemic stop in force: the gate stopped all posting and keeps its causes until a run is
    # not systemic. Receipts ready to post are blocked by it, not "in flight".
    stop = _systemic_stop(conn)
    p["systemic_stop"] = bool(stop.count)
    p["ready"], p["staged"] = S.ReasonCode.READY, S.ReasonCode.STAGED
    t = time.perf_counter()
    missing = conn.execute(
        f"""
            {_receipt_rates(NOT_POSTED)}, r as (select orderid, sum(net) as net, sum(tax) as tax from rr group by orderid)
            select o.orderid, o.store_externalid, o.business_date, o.receipt_id, r.net, r.tax, s.state, s.reason,
                   s.reason_code, x.kind, x.owner, x.message,
                   case
                     when s.state = 'posted' then 'posted_nowhere'
                     when s.state = 'quarantined' then 'quarantined'
                     when s.state = 'held' and s.reason_code = %(ready)s and %(systemic_stop)s then 'blocked'
                     when s.state = 'held' and x.kind = 'stalled' then 'stalled'
                     -- uploaded after the last hourly sync and never classified: no run has held it yet
                     when s.state = 'held' and s.held_since is null and o.orderid > %(watermark)s then 'held'
                     when s.state = 'held' and coalesce(s.held_since, o.orderdate) < %(stall_before)s then 'stalled'
                     when s.state = 'held' and s.reason_code = %(staged)s and o.orderid <= %(watermark)s then 'unknown'
                     when s.state = 'held' then 'held'
                     else 'unknown'
                   end as cause,
                   o.orderid > %(watermark)s as after_sync,
                   (select sr.external_id from sitoo_erp.summary_receipt sr where sr.orderid = o.orderid)
                     as pending_summary,
                   case when s.state = 'posted' then sitoo_erp.posting_mode(o.store_externalid, o.business_date)
                   end as mode
              from sitoo_erp.sitoo_order o
              join r using (orderid)
              join sitoo_erp.order_state s using (orderid)
              left join lateral (select e.kind, e.owner, e.message from sitoo_erp.exception e
                                  where e.orderid = o.orderid and e.status = 'open'
                                  order by e.exception_id desc limit 1) x on true
             order by o.store_externalid, o.business_date, o.orderid
            """,
        p,
    ).fetchall()
    timings["missing_s"] = round(time.perf_counter() - t, 3)
    return [_missing_line(row, stall_after, stop) for row in missing]


def _missing_line(row: Any, stall_after: timedelta, stop: _SystemicStop) -> dict:
    """One finalised receipt not in the ERP: its class, cause, owner and a why finance can act on."""
    (
        oid,
        store,
        day,
        receipt,
        net,
        tax,
        state,
        reason,
        code,
        kind,
        owner,
        message,
        cause,
        after_sync,
        pending_summary,
        mode,
    ) = row
    if cause == "posted_nowhere":
        return _posted_nowhere(oid, store, day, receipt, net, tax, reason, mode)
    why = reason
    if pending_summary:
        why += (
            f", in daily summary {pending_summary}, sent but not answered yet (pending): the next hourly "
            "run re-sends it under the same key"
        )
    if cause == "held" and after_sync and code == S.ReasonCode.STAGED:
        why = "uploaded after the last hourly sync (offline till); the next hourly run posts it"
    elif cause == "stalled":
        why = f"{reason}; held longer than {stall_after}"
    elif cause == "unknown":
        why = f"{state}: {reason} although finalised in Sitoo"
    elif cause == "blocked":
        more = f" (+{stop.count - 5} more)" if stop.count > 5 else ""
        why = (
            f"{reason}, but the quality gate's systemic stop (since {stop.since:%Y-%m-%d %H:%M} UTC) "
            f"blocks all posting until its cause is fixed: {stop.causes}{more}"
        )
    if message:
        why += f" — {kind}: {message}"
    blocked = cause == "blocked"
    return {
        **_receipt_not_in_erp(oid, store, day, receipt, net, tax),
        "class": BLOCKED if blocked else "missing_in_erp",
        "cause": "systemic stop" if blocked else cause,
        "explained": cause in EXPLAINED_CAUSES,
        "owner": owner
        or (OWNER[BLOCKED] if blocked else "retail_ops" if cause == "stalled" else "data_engineering"),
        "detail": f"receipt {receipt} (order {oid}) {store} {day}: gross {net + tax} not in the ERP: {why}",
    }


def _store_days_to_drill(
    conn: psycopg.Connection,
    p: dict[str, Any],
    agg: dict[tuple[str, date, str], list[Decimal]],
    docs_by_store_day: dict[tuple[str, date], int],
) -> list[tuple[str, date]]:
    """The store-days whose ERP totals or document count differ from the posting log's, in order.

    Only these are read document by document, so a clean month costs no per-document ERP query.
    """
    logged = {
        (store, day): (n, net, tax)
        for store, day, n, net, tax in conn.execute(
            """
                select store_externalid, tran_date, count(*),
                       sum(case when document_type = 'sale' then net_amount else -net_amount end),
                       sum(case when document_type = 'sale' then tax_amount else -tax_amount end)
                  from (select store_externalid, tran_date, document_type, net_amount, tax_amount
                          from sitoo_erp.posting_log
                         where document_type in ('sale', 'refund', 'credit_memo')
                        union all  -- daily summaries (and supplements) as posted
                        select store_externalid, business_date, document_type, net_amount, tax_amount
                          from sitoo_erp.summary_document where status = 'posted') logged
                 where tran_date between %(date_from)s and %(date_to)s
                   and (%(all_stores)s or store_externalid = any(%(stores)s))
                 group by store_externalid, tran_date
                """,
            p,
        )
    }
    erp_sd: dict[tuple[str, date], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for (store, day, _), (net, tax) in agg.items():
        erp_sd[(store, day)][0] += net
        erp_sd[(store, day)][1] += tax
    drill = []
    for key in sorted(set(logged) | set(erp_sd) | set(docs_by_store_day)):
        n, lnet, ltax = logged.get(key, (0, ZERO, ZERO))
        enet, etax = erp_sd.get(key, (ZERO, ZERO))
        if n != docs_by_store_day.get(key, 0) or lnet != enet or ltax != etax:
            drill.append(key)
    return drill


def _residual_lines(conn: psycopg.Connection, p: dict[str, Any], recon_id: int) -> list[dict]:
    """What is left of each store-day's Sitoo - ERP difference after every line: nothing goes unclassified."""
    lines: list[dict] = []
    residual = conn.execute(
        """
            with d as (
                select store_externalid, business_date, sum(sitoo_net - erp_net) as dn, sum(sitoo_tax - erp_tax) as dt
                  from sitoo_erp.reconciliation_cell where recon_run_id = %(run)s
                 group by store_externalid, business_date
            ), e as (
                select store_externalid, business_date, sum(diff_net) as en, sum(diff_tax) as et
                  from sitoo_erp.reconciliation_line
                 where recon_run_id = %(run)s and class <> 'zreport_mismatch'
                 group by store_externalid, business_date
            )
            select d.store_externalid, d.business_date, d.dn - coalesce(e.en, 0), d.dt - coalesce(e.et, 0)
              from d left join e using (store_externalid, business_date)
             where abs(d.dn - coalesce(e.en, 0)) >= 0.01 or abs(d.dt - coalesce(e.et, 0)) >= 0.01
            """,
        p,
    ).fetchall()
    for store, day, rn, rt in residual:
        # Name what can be named: the receipts of this store-day already on a line of this run.
        named = conn.execute(
            """
                select count(*), string_agg(coalesce('receipt ' || receipt_id || ' ', '') || '(order '
                       || coalesce(orderid::text, '?') || coalesce(', ' || external_id, '') || ')', ', '
                       order by orderid)
                       filter (where n <= 10)
                  from (select *, row_number() over (order by orderid, line_id) as n
                          from sitoo_erp.reconciliation_line
                         where recon_run_id = %s and store_externalid = %s and business_date = %s
                           and (orderid is not null or external_id is not null)) l
                """,
            (recon_id, store, day),
        ).fetchone()
        assert named is not None  # an aggregate: always one row
        names = (
            f"; receipts of this day on other lines: {named[1]}" + (" …" if named[0] > 10 else "")
            if named[0]
            else "; no receipt of this day differs from its ERP document on its own"
        )
        lines.append(
            {
                "class": "unexplained_residual",
                "cause": "unknown",
                "explained": False,
                "store_externalid": store,
                "business_date": day,
                "diff_net": rn,
                "diff_tax": rt,
                "detail": (
                    f"{store} {day}: Sitoo - ERP differs by net {rn}, tax {rt} beyond every classified "
                    "difference (a receipt changed in Sitoo after posting, or an ERP edit)" + names
                ),
            }
        )
    return lines


def _summarise(
    conn: psycopg.Connection,
    p: dict[str, Any],
    result: ReconResult,
    receipts_by_store: dict[Any, tuple[Any, Any]],
    tax_variance: Decimal,
) -> None:
    """The run's totals per side and its lines per class (explained or not) into ``result``."""
    receipts = sum(n for n, _ in receipts_by_store.values())
    s = conn.execute(
        """
            select coalesce(sum(sitoo_receipts), 0), coalesce(sum(sitoo_net), 0), coalesce(sum(sitoo_tax), 0),
                   coalesce(sum(sitoo_returns), 0), coalesce(sum(erp_docs), 0), coalesce(sum(erp_net), 0),
                   coalesce(sum(erp_tax), 0), count(*), count(distinct (store_externalid, business_date))
              from sitoo_erp.reconciliation_cell where recon_run_id = %(run)s
            """,
        p,
    ).fetchone()
    assert s is not None  # an aggregate: always one row
    result.sitoo = {
        "receipts": receipts,
        "net": str(s[1]),
        "tax": str(s[2]),
        "gross": str(s[1] + s[2]),
        "returns": str(s[3]),
        # Distinct receipts per store: they add up to ``receipts``.
        "receipts_by_store": {str(k): n for k, (n, _) in sorted(receipts_by_store.items(), key=str)},
    }
    result.erp = {"documents": s[4], "net": str(s[5]), "tax": str(s[6]), "gross": str(s[5] + s[6])}
    result.cells, result.store_days = s[7], s[8]
    by_class: dict[str, dict] = {}
    for cls, explained, n, amount in conn.execute(
        "select class, explained, count(*), coalesce(sum(abs(diff_net + diff_tax)), 0) "
        "from sitoo_erp.reconciliation_line where recon_run_id = %(run)s group by class, explained",
        p,
    ):
        d = by_class.setdefault(cls, {"explained": 0, "unexplained": 0, "amount": "0.00"})
        d["explained" if explained else "unexplained"] += n
        d["amount"] = str(Decimal(d["amount"]) + amount)
        if not explained:
            result.unexplained += n
            result.unexplained_amount = str(Decimal(result.unexplained_amount) + amount)
    result.lines_by_class = by_class
    result.tax_variance_total = str(tax_variance)


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


_SUMMARY_EID = re.compile(r"^SITOO-(D|DR)-")


_LogEntry = tuple[Any, Any, Any, Any, Any]  # (orderid | None, erp_id, document_type, net, tax) as logged


def _classify_documents(
    conn: psycopg.Connection, store: str, day: date, docs: list[ErpDocument]
) -> list[dict]:
    """One store-day: ERP documents vs the posting log (and the receipts behind unknown externalIds)."""
    log, variance, summaries = _logged_documents(conn, store, day)
    by_eid: dict[str, list[ErpDocument]] = defaultdict(list)
    for d in docs:
        by_eid[d.external_id].append(d)
    out, unlogged = _logged_in_erp(store, day, by_eid, log, variance, summaries)
    out.extend(_logged_not_in_erp(store, day, by_eid, log, summaries))
    summary_lines, unlogged = _unlogged_summaries(store, day, unlogged, summaries)
    out.extend(summary_lines)
    if unlogged:
        out.extend(_unlogged_receipts(conn, store, day, unlogged))
    return out


def _logged_documents(
    conn: psycopg.Connection, store: str, day: date
) -> tuple[dict[str, _LogEntry], dict[int | str, Decimal], dict[str, tuple]]:
    """What we posted for the store-day: the posting log by externalId (posted daily summaries too),
    the recorded tax variance by orderid (a summary's by its externalId), and our summaries' status."""
    log = {
        eid: (oid, erp_id, dt, net, tax)
        for eid, oid, erp_id, dt, net, tax in conn.execute(
            "select external_id, orderid, erp_id, document_type, net_amount, tax_amount from sitoo_erp.posting_log "
            "where store_externalid = %s and tran_date = %s and document_type in ('sale', 'refund', 'credit_memo')",
            (store, day),
        )
    }
    variance: dict[int | str, Decimal] = dict(
        conn.execute(
            "select orderid, sum(variance) from sitoo_erp.receipt_tax_variance where orderid = any(%s) group by orderid",
            ([v[0] for v in log.values() if v[0] is not None],),
        )
    )
    # Daily summaries (summary posting mode): logged per document, not per receipt; a pending one was
    # sent but its answer never recorded.
    summaries: dict[str, tuple] = {}
    for eid, erp_id, dtype, net, tax, tv, status, n in conn.execute(
        "select external_id, erp_id, document_type, net_amount, tax_amount, tax_variance, status, receipt_count "
        "from sitoo_erp.summary_document where store_externalid = %s and business_date = %s",
        (store, day),
    ):
        summaries[eid] = (status, n)
        if status == "posted":
            log[eid] = (None, erp_id, dtype, net, tax)
            variance[eid] = tv or ZERO
    return log, variance, summaries


def _logged_in_erp(
    store: str,
    day: date,
    by_eid: dict[str, list[ErpDocument]],
    log: dict[str, _LogEntry],
    variance: dict[int | str, Decimal],
    summaries: dict[str, tuple],
) -> tuple[list[dict], list[ErpDocument]]:
    """Each ERP document we logged: a second one under the key is a duplicate, other amounts a mismatch
    (or a recorded tax variance). Returns those lines and the ERP documents we never logged."""
    out: list[dict] = []
    unlogged: list[ErpDocument] = []
    for eid, found in by_eid.items():
        entry = log.get(eid)
        if entry is None:
            unlogged.extend(found)
            continue
        oid, erp_id, _, lnet, ltax = entry
        mine = [d for d in found if d.erp_id == str(erp_id)] or found[:1]
        for extra in (d for d in found if d is not mine[0]):
            out.append(
                _doc_line(
                    "duplicate_in_erp",
                    "duplicate",
                    store,
                    day,
                    extra,
                    oid,
                    f"second ERP document under externalId {eid} (record type {extra.trantype}, "
                    f"ERP id {extra.erp_id}); the posting log has ERP id {erp_id}",
                )
            )
        d = mine[0]
        if d.doc_net == lnet and d.doc_tax == ltax:
            continue
        out.append(_amount_line(store, day, eid, entry, d, variance, summaries))
    return out, unlogged


def _amount_line(
    store: str,
    day: date,
    eid: str,
    entry: _LogEntry,
    d: ErpDocument,
    variance: dict[int | str, Decimal],
    summaries: dict[str, tuple],
) -> dict:
    """An ERP document whose amounts differ from what we posted: explained only by the recorded variance."""
    oid, _, dtype, lnet, ltax = entry
    sign = 1 if dtype == "sale" else -1
    dn, dt = sign * lnet - d.net, sign * ltax - d.tax
    recorded = variance.get(oid if oid is not None else eid, ZERO)
    what = f"{eid} (daily summary of {summaries[eid][1]} receipts)" if eid in summaries else eid
    line = {
        "store_externalid": store,
        "business_date": day,
        "orderid": oid,
        "external_id": eid,
        "erp_id": d.erp_id,
        "sitoo_amount": sign * (lnet + ltax),
        "erp_amount": d.net + d.tax,
        "diff_net": dn,
        "diff_tax": dt,
    }
    if d.doc_net == lnet and d.doc_tax - ltax == -recorded and recorded != 0:
        line.update(
            {
                "class": "tax_variance",
                "cause": "recorded_variance",
                "explained": True,
                "detail": (
                    f"{what}: ERP tax {d.doc_tax} vs POS tax {ltax}: the ERP computed VAT per line; the "
                    f"difference equals the recorded tax variance {recorded}"
                ),
            }
        )
    else:
        unexplained_tax = (
            f" (recorded tax variance {recorded} does not explain it)" if d.doc_tax != ltax else ""
        )
        line.update(
            {
                "class": "amount_mismatch",
                "cause": "erp_amounts_differ",
                "explained": False,
                "detail": f"{what}: ERP net {d.doc_net} tax {d.doc_tax} vs posted net {lnet} tax {ltax}"
                + unexplained_tax
                + (
                    " — edited in the ERP after posting: investigate with finance" if eid in summaries else ""
                ),
            }
        )
    return line


def _logged_not_in_erp(
    store: str,
    day: date,
    by_eid: dict[str, list[ErpDocument]],
    log: dict[str, _LogEntry],
    summaries: dict[str, tuple],
) -> list[dict]:
    """Logged but absent from the ERP on that day: deleted, voided or re-dated there."""
    out: list[dict] = []
    for eid, (oid, erp_id, dtype, lnet, ltax) in log.items():
        if eid in by_eid:
            continue
        sign = 1 if dtype == "sale" else -1
        out.append(
            {
                "class": "missing_in_erp",
                "cause": "unknown",
                "explained": False,
                "owner": "finance",
                "store_externalid": store,
                "business_date": day,
                "orderid": oid,
                "external_id": eid,
                "erp_id": erp_id,
                "sitoo_amount": sign * (lnet + ltax),
                "erp_amount": ZERO,
                "diff_net": sign * lnet,
                "diff_tax": sign * ltax,
                "detail": (
                    f"{eid} is in the posting log (ERP id {erp_id}"
                    + (f", daily summary of {summaries[eid][1]} receipts" if eid in summaries else "")
                    + f") but the ERP has no such document on {day}: deleted, voided or re-dated in the ERP"
                ),
            }
        )
    return out


def _unlogged_summaries(
    store: str, day: date, unlogged: list[ErpDocument], summaries: dict[str, tuple]
) -> tuple[list[dict], list[ErpDocument]]:
    """Unlogged daily summaries: ours (pending: the answer was lost) or a key no summary of ours has.

    Returns their lines and the unlogged documents that are not summaries (receipt keys)."""
    out: list[dict] = []
    rest: list[ErpDocument] = []
    for d in unlogged:
        if not _SUMMARY_EID.match(d.external_id):
            rest.append(d)
        elif summaries.get(d.external_id, ("",))[0] == "pending":
            out.append(
                _doc_line(
                    "extra_in_erp",
                    "pending_summary",
                    store,
                    day,
                    d,
                    None,
                    f"{d.external_id} (ERP id {d.erp_id}) is in the ERP, but its daily summary of "
                    f"{summaries[d.external_id][1]} receipts is still pending (the ERP's answer was lost): the "
                    "next hourly run re-sends the same key with the same receipts and records it",
                )
            )
        else:
            out.append(
                _doc_line(
                    "extra_in_erp",
                    "no_receipt",
                    store,
                    day,
                    d,
                    None,
                    f"{d.external_id} ({d.trantype}, ERP id {d.erp_id}, gross {d.net + d.tax}): our daily "
                    f"summary key, but no summary document of {store} {day} was posted under it",
                )
            )
    return out, rest


def _unlogged_receipts(
    conn: psycopg.Connection, store: str, day: date, unlogged: list[ErpDocument]
) -> list[dict]:
    """Unlogged documents: resolve the receipt behind the externalId by store + receipt id / order id."""
    keys = {d.erp_id: parse_receipt_external_id(d.external_id, store) for d in unlogged}
    wanted = sorted({k for k in keys.values() if k})
    rows = conn.execute(
        """
            select o.orderid, o.receipt_id, o.receipt_key, s.state, pl.external_id, s.reason,
                   exists (select 1 from sitoo_erp.posting_intent i where i.orderid = o.orderid) as intent
              from sitoo_erp.sitoo_order o
              join sitoo_erp.order_state s using (orderid)
              left join sitoo_erp.posting_log pl on pl.orderid = o.orderid
             where o.store_externalid = %s and (o.receipt_key = any(%s) or o.orderid::text = any(%s))
            """,
        (store, wanted, wanted),
    ).fetchall()
    # By receipt key, else by orderid: a receipt first posted without a receipt id was keyed by its
    # orderid; once Sitoo fills the id in, that older document is a second one for the receipt.
    receipt_by_key: dict[str, tuple] = {}
    for oid, receipt, rk, state, logged_eid, reason, intent in rows:
        receipt_by_key.setdefault(rk, (oid, receipt, state, logged_eid, reason, intent))
        receipt_by_key.setdefault(str(oid), (oid, receipt, state, logged_eid, reason, intent))
    return [_unlogged_line(store, day, d, receipt_by_key.get(keys.get(d.erp_id) or "")) for d in unlogged]


def _unlogged_line(store: str, day: date, d: ErpDocument, hit: tuple | None) -> dict:
    """An ERP document under our key that we never logged: no receipt, a second one, or a lost answer."""
    if hit is None:
        return _doc_line(
            "extra_in_erp",
            "no_receipt",
            store,
            day,
            d,
            None,
            f"{d.external_id} ({d.trantype}, ERP id {d.erp_id}, gross {d.net + d.tax}): "
            f"our externalId, but no Sitoo receipt of {store} is behind it",
        )
    if hit[3] and hit[3] != d.external_id:
        return _doc_line(
            "duplicate_in_erp",
            "duplicate",
            store,
            day,
            d,
            hit[0],
            f"{d.external_id} (ERP id {d.erp_id}) is a second document for receipt {hit[1]} "
            f"(order {hit[0]}), already posted as {hit[3]}",
            receipt=hit[1],
        )
    if hit[5]:  # an open posting intent: the answer was lost
        remedy = (
            "its posting intent is open (the ERP's answer was lost): the next hourly run reads "
            "the ERP by externalId and records it, raising it for finance if the receipt was "
            "cancelled or changed in Sitoo meanwhile"
        )
    elif hit[2] in ("held", "quarantined"):
        remedy = "the next hourly run re-PUTs the same key"
    else:
        remedy = (
            f"the receipt is {hit[2]} ({hit[4]}), so no run will post it again: finance must "
            "reverse or void the ERP document"
        )
    return _doc_line(
        "extra_in_erp",
        "not_logged",
        store,
        day,
        d,
        hit[0],
        f"{d.external_id} (ERP id {d.erp_id}) is in the ERP for receipt {hit[1]} "
        f"(order {hit[0]}, state {hit[2]}) but not in the posting log: {remedy}",
        receipt=hit[1],
    )


def _doc_line(
    cls: str,
    cause: str,
    store: str,
    day: date,
    d: ErpDocument,
    oid: int | None,
    detail: str,
    receipt: str | None = None,
) -> dict:
    return {
        "class": cls,
        "cause": cause,
        "explained": False,
        "store_externalid": store,
        "business_date": day,
        "orderid": oid,
        "receipt_id": receipt,
        "external_id": d.external_id,
        "erp_id": d.erp_id,
        "sitoo_amount": ZERO,
        "erp_amount": d.net + d.tax,
        "diff_net": -d.net,
        "diff_tax": -d.tax,
        "detail": detail,
    }


ZREPORT_SQL = f"""
with z as (
    select registerid, business_date, max(store_externalid) as store, sum(sales_gross) as sg, sum(refund_gross) as rg,
           sum(num_sales) as ns, sum(num_refunds) as nr, string_agg(zreportid::text, ',') as ids
      from sitoo_erp.sitoo_z_report
     where business_date between %(date_from)s and %(date_to)s
       and (%(all_stores)s or store_externalid = any(%(stores)s))
     group by registerid, business_date
), r as (
    select o.registerid, o.business_date, max(o.store_externalid) as store,
           sum(case when o.money_gross >= 0 then o.money_net + o.money_vat else 0 end) as sg,
           sum(case when o.money_gross < 0 then -(o.money_net + o.money_vat) else 0 end) as rg,
           count(*) filter (where o.money_gross >= 0) as ns, count(*) filter (where o.money_gross < 0) as nr
      from sitoo_erp.sitoo_order o where {FINALISED}
     group by o.registerid, o.business_date
)
select coalesce(z.registerid, r.registerid), coalesce(z.business_date, r.business_date), coalesce(z.store, r.store),
       z.ids, z.sg, z.rg, z.ns, z.nr, r.sg, r.rg, r.ns, r.nr
  from z full join r on r.registerid = z.registerid and r.business_date = z.business_date
 where (z.registerid is null)
    or (r.registerid is null and (z.sg <> 0 or z.rg <> 0 or z.ns <> 0 or z.nr <> 0))
    or (r.registerid is not null and (z.sg <> r.sg or z.rg <> r.rg or z.ns <> r.ns or z.nr <> r.nr))
 order by 3, 2, 1
"""


def _zreport_lines(conn: psycopg.Connection, p: dict) -> list[dict]:
    out = []
    for reg, day, store, ids, zsg, zrg, zns, znr, rsg, rrg, rns, rnr in conn.execute(ZREPORT_SQL, p):
        if ids is None:
            cause, detail = (
                "no_zreport",
                (
                    f"register {reg} ({store}) {day}: {rns} sales / {rnr} refunds "
                    f"(gross {rsg} / {rrg}) but no Z-report was received"
                ),
            )
        else:
            zsg, zrg, zns, znr = zsg or ZERO, zrg or ZERO, zns or 0, znr or 0
            rsg, rrg, rns, rnr = rsg or ZERO, rrg or ZERO, rns or 0, rnr or 0
            cause = "totals_differ"
            detail = (
                f"register {reg} ({store}) {day}, Z-report {ids}: till sales {zsg} ({zns}) refunds {zrg} ({znr}) "
                f"vs receipts sales {rsg} ({rns}) refunds {rrg} ({rnr}): difference sales "
                f"{zsg - rsg}, refunds {zrg - rrg}"
            )
        out.append(
            {
                "class": "zreport_mismatch",
                "cause": cause,
                "explained": False,
                "store_externalid": store,
                "business_date": day,
                "registerid": reg,
                "sitoo_amount": (rsg or ZERO) - (rrg or ZERO),
                "erp_amount": None if ids is None else (zsg or ZERO) - (zrg or ZERO),
                "diff_net": ZERO,
                "diff_tax": ZERO,
                "detail": detail,
            }
        )
    return out


# Per receipt (invariant 10): each posted receipt of the period (posting log, sales types) against its
# ERP document (``_recon_doc``: the period's documents per tax code, read with SuiteQL) and against
# what Sitoo says now (``sitoo_order``): record type, total, tax (total and per tax code), tranDate,
# the lines' item x quantity fingerprint, the content hash and the order state. One statement.
RECEIPTS_COMPARE_SQL = f"""
with d as (
    select erp_id, max(external_id) as external_id, max(trantype) as trantype, max(trandate)::date as trandate,
           sum(lines) as lines, sum(qty) as qty, sum(item_qty) as item_qty, sum(net) as net, sum(tax) as tax
      from _recon_doc group by erp_id
), pl as (
    select pl.orderid, pl.external_id, pl.erp_id, pl.document_type, pl.tran_date, pl.store_externalid,
           pl.content_hash, pl.line_count, pl.line_qty, pl.line_item_qty,
           case when pl.document_type = 'sale' then 1 else -1 end as sign
      from sitoo_erp.posting_log pl
     where pl.document_type in ('sale', 'refund', 'credit_memo')
       and pl.tran_date between %(date_from)s and %(date_to)s
       and (%(all_stores)s or pl.store_externalid = any(%(stores)s))
), ptax as (
    select v.orderid, coalesce(m.tax_code_id, 'rate:' || trim_scale(v.vat_rate)::text) as code, sum(v.pos_tax) as tax
      from sitoo_erp.receipt_tax_variance v join pl using (orderid)
      left join sitoo_erp.map_vat_tax_code m on m.vat_rate = v.vat_rate
     group by 1, 2
), etax as (
    select pl.orderid, e.tax_code_id as code, sum(e.tax) as tax
      from pl join _recon_doc e on e.erp_id = pl.erp_id group by 1, 2
), taxdiff as (
    select orderid, string_agg(code || ' posted ' || coalesce(pt, 0) || ' ERP ' || coalesce(et, 0), ', ' order by code)
           as detail
      from (select coalesce(a.orderid, b.orderid) as orderid, coalesce(a.code, b.code) as code, a.tax as pt,
                   b.tax as et
              from ptax a full join etax b on a.orderid = b.orderid and a.code = b.code) x
     where coalesce(pt, 0) <> coalesce(et, 0)
     group by orderid
), c as (
    select pl.*, o.receipt_id, o.business_date, o.money_gross, o.money_vat, s.state, d.trantype,
           d.trandate as erp_date, d.net as erp_net, d.tax as erp_tax, d.lines, d.qty, d.item_qty,
           d.erp_id is null as absent, td.detail as tax_detail,
           o.orderid is not null and not {FINALISED_SQL} as not_finalised,
           pl.content_hash is not null and o.content_hash is distinct from pl.content_hash as changed,
           case pl.document_type when 'sale' then 'CashSale' when 'refund' then 'CashRfnd' else 'CustCred' end
             as expected_type,
           exists (select 1 from sitoo_erp.exception e where e.orderid = pl.orderid and e.status in ('open', 'ignored')
                      and e.kind in ('changed_after_posting', 'cancelled_after_posting')) as raised,
           exists (select 1 from sitoo_erp.exception e where e.orderid = pl.orderid and e.status = 'open') as any_open,
           exists (select 1 from sitoo_erp.posting_revision r where r.orderid = pl.orderid and r.status = 'pending')
             as pending
      from pl
      left join sitoo_erp.sitoo_order o on o.orderid = pl.orderid
      left join sitoo_erp.order_state s on s.orderid = pl.orderid
      left join d on d.erp_id = pl.erp_id
      left join taxdiff td on td.orderid = pl.orderid
     where not (pl.external_id = any(%(named_eids)s) or pl.orderid = any(%(named_oids)s))
)
select *, (select count(*) from pl) as compared
  from c
 where absent or not_finalised or changed or trantype <> expected_type or tax_detail is not null
    or erp_date is distinct from business_date
    or sign * (erp_net + erp_tax) <> money_gross or sign * erp_tax <> money_vat
    or (line_count is not null and (lines, round(qty, 3), round(item_qty, 3))
        is distinct from (line_count, round(line_qty, 3), round(line_item_qty, 3)))
 order by store_externalid, tran_date, orderid
"""


def _receipt_lines(
    conn: psycopg.Connection, p: dict, doc_rows: list[tuple], named: list[dict]
) -> tuple[list[dict], int]:
    """Prove every posted receipt of the period against its ERP document; one line per mismatch,
    naming the receipt (order id, receipt number, externalId, ERP id) and every aspect that differs.
    Receipts the drill-down already named are not named twice. Returns (lines, receipts compared)."""
    with conn.cursor() as cur:
        cur.execute(
            "create temp table _recon_doc (erp_id text, external_id text, trantype text, trandate text, "
            "tax_code_id text, lines integer, qty numeric, item_qty numeric, net numeric, tax numeric) on commit drop"
        )
        with cur.copy("copy _recon_doc from stdin") as cp:
            for row in doc_rows:
                cp.write_row(row)
        cur.execute("analyze _recon_doc")
    q = dict(
        p,
        named_eids=[ln["external_id"] for ln in named if ln.get("external_id")],
        named_oids=[ln["orderid"] for ln in named if ln.get("orderid") is not None],
    )
    out: list[dict] = []
    compared = 0
    with conn.cursor(row_factory=dict_row) as cur:
        for r in cur.execute(RECEIPTS_COMPARE_SQL, q):
            compared = r["compared"]
            out.append(_receipt_line(r))
    if not out:
        counted = conn.execute(
            "select count(*) from sitoo_erp.posting_log where document_type in ('sale', 'refund', 'credit_memo') "
            "and tran_date between %(date_from)s and %(date_to)s "
            "and (%(all_stores)s or store_externalid = any(%(stores)s))",
            p,
        ).fetchone()
        assert counted is not None  # an aggregate: always one row
        compared = counted[0]
    return out, compared


def _receipt_line(r: dict) -> dict:
    sign = r["sign"]
    what: list[str] = []
    if r["absent"]:
        what.append(f"no ERP document with ERP id {r['erp_id']} in the period (deleted, voided or re-dated)")
    if r["not_finalised"]:
        what.append("no longer finalised in Sitoo (cancelled after posting)")
    if r["changed"]:
        what.append("its content changed in Sitoo after posting")
    if not r["absent"]:
        if r["trantype"] != r["expected_type"]:
            what.append(f"record type {r['trantype']}, posted as {r['expected_type']}")
        if r["money_gross"] is not None and sign * (r["erp_net"] + r["erp_tax"]) != r["money_gross"]:
            what.append(f"total: Sitoo {r['money_gross']}, ERP {sign * (r['erp_net'] + r['erp_tax'])}")
        if r["money_vat"] is not None and sign * r["erp_tax"] != r["money_vat"]:
            what.append(f"tax: Sitoo {r['money_vat']}, ERP {sign * r['erp_tax']}")
        if r["tax_detail"]:
            what.append(f"tax per code: {r['tax_detail']}")
        if r["business_date"] is not None and r["erp_date"] != r["business_date"]:
            what.append(f"tranDate {r['erp_date']}, Sitoo business day {r['business_date']}")
        if r["line_count"] is not None and (
            r["lines"] != r["line_count"]
            or round(r["qty"], 3) != round(r["line_qty"], 3)
            or r["item_qty"] is None
            or r["line_item_qty"] is None
            or round(r["item_qty"], 3) != round(r["line_item_qty"], 3)
        ):
            what.append(
                f"lines (item x quantity): ERP {r['lines']} lines, quantity {r['qty']:f}; posted {r['line_count']} "
                f"lines, quantity {r['line_qty']:f}"
            )
    if r["not_finalised"]:
        cause = "cancelled_after_posting"
    elif r["state"] != "posted" and r["pending"]:
        cause = "correction_pending"
    elif r["changed"]:
        cause = "changed_after_posting"
    else:
        cause = "erp_differs"
    # Known and owned: a correction on its way, or a finance exception open (or decided: ignored).
    explained = cause != "erp_differs" and (r["pending"] or r["raised"] or r["any_open"])
    remedy = {
        "cancelled_after_posting": "reverse the ERP document (finance: the cancelled_after_posting exception)",
        "correction_pending": "the next hourly run re-posts the corrected receipt under the same externalId",
        "changed_after_posting": (
            "the next hourly run corrects the document in place, or raises changed_after_posting for finance"
            if not r["raised"]
            else "finance: the changed_after_posting exception"
        ),
        "erp_differs": "the ERP document was changed in the ERP: investigate with finance",
    }[cause]
    finalised = r["money_gross"] is not None and not r["not_finalised"]
    s_net = (r["money_gross"] - r["money_vat"]) if finalised else ZERO
    s_tax = r["money_vat"] if finalised else ZERO
    e_net = ZERO if r["absent"] else sign * r["erp_net"]
    e_tax = ZERO if r["absent"] else sign * r["erp_tax"]
    return {
        "class": "receipt_mismatch",
        "cause": cause,
        "explained": bool(explained),
        "owner": "finance",
        "store_externalid": r["store_externalid"],
        "business_date": r["erp_date"] or r["tran_date"],
        "orderid": r["orderid"],
        "receipt_id": r["receipt_id"],
        "external_id": r["external_id"],
        "erp_id": r["erp_id"],
        "sitoo_amount": s_net + s_tax,
        "erp_amount": e_net + e_tax,
        "diff_net": s_net - e_net,
        "diff_tax": s_tax - e_tax,
        "detail": (
            f"receipt {r['receipt_id']} (order {r['orderid']}) posted as {r['external_id']} (ERP id {r['erp_id']}): "
            + "; ".join(what)
            + f" — {remedy}"
        ),
    }


# Summary posting mode, per document and per receipt (invariant 10): each posted daily summary (or
# supplement, or part) of the period against its ERP document (``_recon_doc``) and against its receipts
# as Sitoo has them now (``summary_receipt`` -> the receipt x rate figures above): record type, tranDate,
# line count and line quantities (as recorded at posting: sum of quantities and of item id x quantity,
# document sign, like ``posting_log`` per receipt; NULL = not recorded, not compared), and per tax code
# net and tax = the sum of its receipts; plus every receipt of it still finalised and unchanged since it
# was summarised. Documents the drill-down already named are left out.

_IN_A_SUMMARY = " and exists (select 1 from sitoo_erp.summary_receipt sr0 where sr0.orderid = o.orderid)"
SUMMARY_COMPARE_SQL = f"""{_receipt_rates(_IN_A_SUMMARY)}
, sd as (
    select d.external_id, d.erp_id, d.store_externalid, d.business_date, d.document_type, d.supplement, d.part,
           d.receipt_count, d.line_count, d.line_qty, d.line_item_qty, d.net_amount, d.tax_amount,
           case when d.document_type = 'sale' then 1 else -1 end as sign,
           case d.document_type when 'sale' then 'CashSale' when 'refund' then 'CashRfnd' else 'CustCred' end
             as expected_type
      from sitoo_erp.summary_document d
     where d.status = 'posted' and d.business_date between %(date_from)s and %(date_to)s
       and (%(all_stores)s or d.store_externalid = any(%(stores)s))
), expected as (
    select r.external_id, coalesce(m.tax_code_id, 'rate:' || trim_scale(rr.vat_rate)::text) as code,
           sum(sd.sign * rr.net) as net, sum(sd.sign * rr.tax) as tax
      from sitoo_erp.summary_receipt r join sd using (external_id) join rr on rr.orderid = r.orderid
      left join sitoo_erp.map_vat_tax_code m on m.vat_rate = rr.vat_rate
     group by 1, 2
), erp as (
    select sd.external_id, e.tax_code_id as code, sum(e.net) as net, sum(e.tax) as tax
      from sd join _recon_doc e on e.erp_id = sd.erp_id
     group by 1, 2
), codes as (
    select coalesce(x.external_id, e.external_id) as external_id, coalesce(x.code, e.code) as code,
           coalesce(x.net, 0) as exp_net, coalesce(x.tax, 0) as exp_tax,
           coalesce(e.net, 0) as erp_net, coalesce(e.tax, 0) as erp_tax
      from expected x full join erp e on e.external_id = x.external_id and e.code = x.code
), per_doc as (
    select external_id, sum(exp_net) as exp_net, sum(exp_tax) as exp_tax, sum(erp_net) as erp_net,
           sum(erp_tax) as erp_tax,
           string_agg(code || ' receipts net ' || exp_net || ' tax ' || exp_tax || ', ERP net ' || erp_net
                      || ' tax ' || erp_tax, '; ' order by code)
             filter (where exp_net <> erp_net or exp_tax <> erp_tax) as code_detail
      from codes group by external_id
), hdr as (
    select erp_id, max(trantype) as trantype, max(trandate)::date as trandate, sum(lines) as lines,
           round(sum(qty), 3) as qty, round(sum(item_qty), 3) as item_qty
      from _recon_doc group by erp_id
), rec as (
    select r.orderid, r.external_id, o.receipt_id,
           o.orderid is null or not {FINALISED_SQL} as cancelled,
           r.content_hash is not null and o.content_hash is distinct from r.content_hash as changed,
           exists (select 1 from sitoo_erp.exception e where e.orderid = r.orderid and e.status in ('open', 'ignored')
                      and e.kind in ('changed_after_posting', 'cancelled_after_posting')) as raised
      from sitoo_erp.summary_receipt r join sd using (external_id)
      left join sitoo_erp.sitoo_order o on o.orderid = r.orderid
), recs as (
    select external_id, count(*) as logged_receipts,
           count(*) filter (where cancelled) as cancelled,
           count(*) filter (where changed and not cancelled) as changed,
           coalesce(bool_and(raised) filter (where cancelled or changed), false) as all_raised,
           array_agg(orderid order by orderid) filter (where cancelled or changed) as moved_orders,
           array_agg(receipt_id order by orderid) filter (where cancelled or changed) as moved_receipts,
           string_agg('receipt ' || coalesce(receipt_id, '?') || ' (order ' || orderid || ') '
                      || case when cancelled then 'cancelled or no longer finalised' else 'changed' end
                      || ' in Sitoo since it was summarised', ', ' order by orderid)
             filter (where cancelled or changed) as moved
      from rec group by external_id
)
select sd.*, h.trantype, h.trandate as erp_date, h.lines as erp_lines, h.erp_id is null as absent,
       h.qty as erp_qty, h.item_qty as erp_item_qty, q.qty_differs,
       coalesce(pd.exp_net, 0) as exp_net, coalesce(pd.exp_tax, 0) as exp_tax,
       coalesce(pd.erp_net, 0) as erp_net, coalesce(pd.erp_tax, 0) as erp_tax, pd.code_detail,
       coalesce(x.logged_receipts, 0) as logged_receipts, coalesce(x.cancelled, 0) as cancelled,
       coalesce(x.changed, 0) as changed, coalesce(x.all_raised, false) as all_raised, x.moved_orders,
       x.moved_receipts, x.moved, (select count(*) from rec) as compared
  from sd
  left join hdr h on h.erp_id = sd.erp_id
  left join per_doc pd using (external_id)
  left join recs x using (external_id)
 cross join lateral (
     -- quantities are compared only where they were recorded at posting (NULL: posted before 0018)
     select (sd.line_qty is not null and h.qty is distinct from sd.line_qty)
            or (sd.line_item_qty is not null and h.item_qty is distinct from sd.line_item_qty) as qty_differs
 ) q
 where not (sd.external_id = any(%(named_eids)s))
   and (h.erp_id is null or h.trantype <> sd.expected_type or h.trandate <> sd.business_date
        or h.lines <> sd.line_count or pd.code_detail is not null
        or q.qty_differs
        or coalesce(x.logged_receipts, 0) <> sd.receipt_count or x.cancelled > 0 or x.changed > 0)
 order by sd.store_externalid, sd.business_date, sd.external_id
"""


def _receipt_not_in_erp(
    oid: int, store: str, day: date, receipt: str | None, net: Decimal, tax: Decimal
) -> dict:
    """What every missing-in-ERP line of a receipt says: Sitoo's amount, nothing in the ERP."""
    return {
        "class": "missing_in_erp",
        "store_externalid": store,
        "business_date": day,
        "orderid": oid,
        "receipt_id": receipt,
        "sitoo_amount": net + tax,
        "erp_amount": ZERO,
        "diff_net": net,
        "diff_tax": tax,
    }


def _posted_nowhere(
    oid: int, store: str, day: date, receipt: str | None, net: Decimal, tax: Decimal, reason: str, mode: str
) -> dict:
    """A finalised receipt the state ledger calls posted, with no document in the posting log and on no
    posted daily summary: nothing says where it is in the ERP."""
    where = (
        "on no posted daily summary or supplement (summary_receipt)"
        if mode == "daily_summary"
        else "without a document in the posting log"
    )
    return {
        **_receipt_not_in_erp(oid, store, day, receipt, net, tax),
        "cause": "not_in_any_summary" if mode == "daily_summary" else "not_logged",
        "explained": False,
        "owner": "data_engineering",
        "detail": (
            f"receipt {receipt} (order {oid}) {store} {day}: gross {net + tax} is posted in the state ledger "
            f"({reason}) but {where}: nothing shows it in the ERP"
        ),
    }


def _summary_lines(conn: psycopg.Connection, p: dict, named: list[dict]) -> tuple[list[dict], int]:
    """Prove the period's daily summaries document by document and receipt by receipt (``_recon_doc`` is
    the ERP's documents, loaded by ``_receipt_lines``). Returns (lines, summarised receipts compared)."""
    q = dict(p, named_eids=[ln["external_id"] for ln in named if ln.get("external_id")])
    out: list[dict] = []
    compared = None
    with conn.cursor(row_factory=dict_row) as cur:
        for r in cur.execute(SUMMARY_COMPARE_SQL, q):
            compared = r["compared"]
            out.append(_summary_line(r))
    if compared is None:
        compared = one_row(
            conn.execute(
                "select count(*) from sitoo_erp.summary_receipt r join sitoo_erp.summary_document d "
                "using (external_id) where d.status = 'posted' and d.business_date between %(date_from)s "
                "and %(date_to)s and (%(all_stores)s or d.store_externalid = any(%(stores)s))",
                p,
            )
        )[0]
    return out, compared


def _qty(value: Decimal | None) -> str:
    return "none" if value is None else f"{value.normalize():f}"


def _quantity_difference(r: dict) -> str:
    """The item quantities of a summary in the ERP against those it was posted with (document sign):
    a quantity edited in the ERP, or a line dropped while another was added, with every amount agreeing."""
    if r["line_qty"] is not None and r["erp_qty"] != r["line_qty"]:
        return f"item quantity {_qty(r['erp_qty'])} in the ERP, posted with {_qty(r['line_qty'])}"
    return (
        f"item quantities on other items than posted: the same total quantity {_qty(r['erp_qty'])}, but item id x "
        f"quantity {_qty(r['erp_item_qty'])} in the ERP, posted with {_qty(r['line_item_qty'])}"
    )


def _summary_line(r: dict) -> dict:
    sign = r["sign"]
    eid = r["external_id"]
    what: list[str] = []
    if r["absent"]:
        what.append(f"no ERP document with ERP id {r['erp_id']} in the period (deleted, voided or re-dated)")
    else:
        if r["trantype"] != r["expected_type"]:
            what.append(f"record type {r['trantype']}, posted as {r['expected_type']}")
        if r["erp_date"] != r["business_date"]:
            what.append(f"tranDate {r['erp_date']}, business day {r['business_date']}")
        if r["erp_lines"] != r["line_count"]:
            what.append(f"{r['erp_lines']} lines in the ERP, posted with {r['line_count']}")
        if r["qty_differs"]:
            what.append(_quantity_difference(r))
    if r["code_detail"]:
        what.append(f"per tax code: {r['code_detail']}")
    if r["logged_receipts"] != r["receipt_count"]:
        what.append(
            f"posted with {r['receipt_count']} receipts, the summary posting log (summary_receipt) now names "
            f"{r['logged_receipts']}"
        )
    if r["moved"]:
        what.append(r["moved"])
    erp_as_posted = (
        not r["absent"]
        and r["erp_net"] == r["net_amount"]
        and r["erp_tax"] == r["tax_amount"]
        and r["erp_lines"] == r["line_count"]
        and not r["qty_differs"]
        and r["trantype"] == r["expected_type"]
        and r["erp_date"] == r["business_date"]
    )
    if not erp_as_posted:
        cause = "erp_differs"
        remedy = "the ERP document no longer carries what was posted: investigate with finance"
    elif r["cancelled"]:
        cause = "cancelled_after_posting"
        remedy = "finance: the cancelled_after_posting exception (a posted summary is never rewritten)"
    elif r["changed"]:
        cause = "changed_after_posting"
        remedy = "finance: the changed_after_posting exception (a posted summary is never rewritten)"
    else:
        cause = "receipts_differ"
        remedy = "the summary posting log no longer adds up to the document as posted: investigate (data engineering)"
    if cause in ("cancelled_after_posting", "changed_after_posting") and not r["all_raised"]:
        remedy = "the next hourly run raises it for finance (a posted summary is never rewritten)"
    explained = cause in ("cancelled_after_posting", "changed_after_posting") and r["all_raised"]
    one = r["moved_orders"] and len(r["moved_orders"]) == 1
    s_net, s_tax = sign * r["exp_net"], sign * r["exp_tax"]
    e_net, e_tax = sign * r["erp_net"], sign * r["erp_tax"]
    label = "daily summary" if not r["supplement"] else f"daily summary supplement {r['supplement']}"
    return {
        "class": "receipt_mismatch",
        "cause": cause,
        "explained": bool(explained),
        "owner": "data_engineering" if cause == "receipts_differ" else "finance",
        "store_externalid": r["store_externalid"],
        "business_date": r["business_date"],
        "orderid": r["moved_orders"][0] if one else None,
        "receipt_id": r["moved_receipts"][0] if one else None,
        "external_id": eid,
        "erp_id": r["erp_id"],
        "sitoo_amount": s_net + s_tax,
        "erp_amount": e_net + e_tax,
        "diff_net": s_net - e_net,
        "diff_tax": s_tax - e_tax,
        "detail": (
            f"{label} {eid} (ERP id {r['erp_id']}, {r['store_externalid']} {r['business_date']}, "
            f"{r['receipt_count']} receipts): " + "; ".join(what) + f" — {remedy}"
        ),
    }
