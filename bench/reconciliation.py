"""Bench: compare + classify of a reconciliation month, beside the time the Sitoo sweep of it takes.

    .venv/bin/python -m bench.reconciliation [--receipts 1000000] [--stores 100] [--sample 20000]
        [--posting-mode receipt|daily_summary]

Setup (timed, but not the result):

1. The month is generated (``generate_dataset``) and **staged directly** with ``stage_orders`` from
   its payloads, Z-reports with ``upsert_z_reports``; then the real ``classify``.
2. **The ERP side is written straight into the NetSuite sandbox, not over HTTP** (posting a million
   documents over HTTP is out of scope): every ready receipt goes through the real posting path —
   ``_iter_ready`` -> ``_build`` (``build_document``; failures quarantined with their exception, as
   the hourly run does) -> ``render_netsuite`` -> the sandbox's own ``Store.prepare`` + ``Store.upsert``
   (exactly what its ``PUT /record/v1/{type}/eid:{key}`` runs). The posting log, the tax variance rows
   and the ``posted`` state carry the same values as ``_record_posted`` writes, in bulk (COPY).
   With ``--posting-mode daily_summary`` instead: every store is in ``daily_summary`` (the deployment
   default) and the month is posted by ``post_daily_summaries`` (what the hourly DAG's
   ``post_daily_summaries`` task runs) the morning after its last day, **through the real
   ``NetSuiteHook`` over HTTP** to the sandbox (its default: no added latency), in a child process:
   one summary per store-day and direction (parts under the 200-line limit), the day tender journals.
3. A handful of known gaps is planted in the ERP (an amount edited, a document deleted, a ghost
   externalId, a duplicate, one document with the ERP's own VAT; in summary mode: a summary's tax
   edited, a summary deleted, a ghost under a summary key, one summarised receipt also posted on its
   own): classification has real work.

Measured: ``reconcile()`` as the DAG's task runs it, **in a fresh child process** (its peak RSS is
its own; the sandboxes and PostgreSQL are other processes/threads): ERP totals through SuiteQL over
HTTP from the sandbox, everything else in PostgreSQL. Baseline in the same run: the same compare
over the month's first 3 days (1/10 of the month). The sweep is measured on a sample (``--sample``
orders through the real ``SitooHook`` + ``stage_orders`` into a fresh database) and extrapolated.

``--reuse DIR`` (for iterating on the compare; setup takes ~26 min at 1M): the first run prepares as
above but keeps its PostgreSQL cluster in ``DIR/pg`` and a copy of the NetSuite sandbox's SQLite
store in ``DIR/netsuite.sqlite``, and writes ``DIR/prepared.json`` last. A later run with the same
``DIR`` and the same ``--receipts``/``--stores`` skips steps 1-3: it regenerates the (deterministic)
dataset, starts PostgreSQL on the kept cluster, restores the sandbox store from the copy and deletes
earlier ``reconciliation_run`` rows, then measures. Delete ``DIR`` to prepare afresh. ``--prepare-only``
stops after preparing; ``--no-sweep`` skips the sweep sample and writes no figures file
(``bench/out``): the printed lines are the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, measure, save  # noqa: E402

MONTH = (date(2026, 11, 1), date(2026, 11, 30))
BASELINE = (date(2026, 11, 1), date(2026, 11, 3))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: a spawned child inherits the parent's
    high-water mark through fork+exec, and the parent holds the in-memory ERP sandbox (GBs at 1M)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return _rss_mb()


def compare_in_child(database_url: str, date_from: str, date_to: str) -> dict:
    """The measured step (runs in a fresh spawned process): reconcile one period, as the DAG does."""
    sys.path.insert(0, str(ROOT))
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.reconciliation.compare import reconcile
    from include.sitoo_erp.reconciliation.period import Period
    from include.sitoo_erp.staging.db import connect_url

    rss_before = _hwm_mb()
    hook = NetSuiteHook()
    period = Period(date.fromisoformat(date_from), date.fromisoformat(date_to))
    with connect_url(database_url) as conn:
        t = time.perf_counter()
        r = reconcile(conn, hook, period)
        wall = time.perf_counter() - t
        conn.commit()
        lines = conn.execute(
            "select class, cause, explained, count(*) from sitoo_erp.reconciliation_line where recon_run_id = %s "
            "group by 1, 2, 3 order by 1, 2",
            (r.recon_run_id,),
        ).fetchall()
    hook.close()
    return {
        "compare_s": round(wall, 2),
        "receipts": r.sitoo["receipts"],
        "erp_documents": r.erp["documents"],
        "erp_queries": r.erp_queries,
        "drilled_store_days": r.drilled_store_days,
        "cells": r.cells,
        "unexplained": r.unexplained,
        "timings": r.timings,
        "lines": [f"{c}/{k}{'' if e else ' (unexplained)'}: {n}" for c, k, e, n in lines],
        "rss_before_compare_mb": round(rss_before),
        "peak_hwm_mb": round(_hwm_mb()),
    }


def sweep_sample(database_url: str, sample: int) -> dict:
    """The Sitoo sweep's cost per order: real SitooHook pages + prefetch + stage_orders (child process)."""
    sys.path.insert(0, str(ROOT))
    from include.sitoo_erp.prefetch import prefetch
    from include.sitoo_erp.sitoo.hook import SitooHook
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.orders import stage_orders

    hook = SitooHook(page_size=1000)

    def take():
        for i, p in enumerate(hook.iter_order_payloads(orderid_from=10_001)):
            if i >= sample:
                return
            yield p

    t = time.perf_counter()
    with connect_url(database_url) as conn:
        stage_orders(conn, prefetch(take()))
    return {"orders": sample, "sweep_s": round(time.perf_counter() - t, 2), "peak_hwm_mb": round(_hwm_mb())}


def admit_ready(conn) -> None:
    """The hourly posting's gate admits what it validated; the bench skips GX over a million receipts
    (bench/hourly_gate.py measures the gate) and records one gate run that admits every ready receipt."""
    from include.sitoo_erp.posting import states as S

    gate_run_id = conn.execute(
        "insert into sitoo_erp.gate_run (suite, batch_size, failed_receipts, success, result) "
        "select 'bench: gate not run', count(*), 0, true, '{}'::jsonb from sitoo_erp.order_state "
        f"where state = '{S.HELD}' and reason_code = '{S.ReasonCode.READY}' returning gate_run_id"
    ).fetchone()[0]
    conn.execute(
        "update sitoo_erp.order_state set gate_run_id = %s "
        f"where state = '{S.HELD}' and reason_code = '{S.ReasonCode.READY}'",
        (gate_run_id,),
    )


def post_summaries_in_child(database_url: str, business_now: str) -> dict:
    """Summary mode's posting (fresh spawned process): ``post_daily_summaries`` as the hourly DAG's
    task runs it the next morning, through the real ``NetSuiteHook`` over HTTP to the sandbox."""
    sys.path.insert(0, str(ROOT))
    from datetime import datetime

    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.posting.summary import SummaryOptions, post_daily_summaries
    from include.sitoo_erp.staging.db import connect_url

    hook = NetSuiteHook()
    with connect_url(database_url) as conn:
        t = time.perf_counter()
        result = post_daily_summaries(conn, hook, datetime.fromisoformat(business_now), SummaryOptions())
        wall = time.perf_counter() - t
        docs = dict(
            conn.execute(
                "select document_type, count(*) from sitoo_erp.summary_document where status = 'posted' group by 1"
            ).fetchall()
        )
        journals = conn.execute(
            "select count(distinct tender_journal_external_id) from sitoo_erp.summary_document "
            "where tender_journal_erp_id is not null"
        ).fetchone()[0]
    hook.close()
    return {
        "posting_s": round(wall),
        **{k: v for k, v in result.as_dict().items() if k != "documents"},
        "documents_by_type": docs,
        "tender_journals": journals,
        "peak_hwm_mb": round(_hwm_mb()),
    }


def post_summaries(conn, database_url: str) -> dict:
    """Every store in ``daily_summary`` (the deployment default) from the month's first day; the
    real summary posting over HTTP, the morning after the month's last day (every day closed)."""
    from include.sitoo_erp.posting.summary import DAILY_SUMMARY, set_posting_mode

    set_posting_mode(conn, DAILY_SUMMARY, MONTH[0])
    admit_ready(conn)
    conn.commit()
    r = measure(
        post_summaries_in_child,
        database_url=database_url,
        business_now=f"{MONTH[1] + timedelta(days=1)}T08:00:00+00:00",
    )
    quarantined = conn.execute(
        "select count(*) from sitoo_erp.order_state where state = 'quarantined'"
    ).fetchone()[0]
    reasons = conn.execute(
        "select left(reason, 120), count(*) from sitoo_erp.order_state where state = 'quarantined' "
        "group by 1 order by 2 desc limit 5"
    ).fetchall()
    return {
        "posted": r["receipts_posted"],
        "quarantined": quarantined,
        "quarantine_reasons": dict(reasons),
        "summary_posting": {k: v for k, v in r.items() if k not in ("seconds", "peak_rss_mb")},
    }


def post_directly(conn, store, batch_size: int = 2000) -> dict:
    """The real posting path, minus HTTP: build -> render -> sandbox prepare/upsert; bulk ledger writes."""
    from include.sandbox.netsuite.errors import NetSuiteError
    from include.sitoo_erp.erp.netsuite_documents import record_type, render_netsuite
    from include.sitoo_erp.posting import states as S
    from include.sitoo_erp.posting.documents import DocumentOptions
    from include.sitoo_erp.posting.post import (
        PHASES,
        PostingOptions,
        PostingSummary,
        _build,
        _iter_ready,
        _quarantine,
        line_fingerprint,
        load_mappings,
    )
    from include.sitoo_erp.staging.exceptions import ExceptionKind

    opts = PostingOptions()
    doc_options = DocumentOptions(return_document=opts.return_document)  # type: ignore[arg-type]
    mappings = load_mappings(conn)
    summary = PostingSummary()
    erp_id_by_order: dict[int, str] = {}
    posted = rejected = awaiting = 0
    admit_ready(conn)
    for phase in PHASES:  # sales, then the returns that link to them
        # _iter_ready pages by orderid over *ready* receipts: the page's rows must leave 'ready' before
        # the next page, which the bulk write below does.
        hashes: dict[int, str] = {}
        for batch in _iter_ready(conn, phase, batch_size, hashes):
            log, variance = [], []
            for receipt in batch:
                doc = _build(conn, receipt, mappings, doc_options, summary)
                if doc is None:
                    continue
                created_from = None
                if doc.is_return and doc.created_from_orderid is not None:
                    created_from = erp_id_by_order.get(doc.created_from_orderid)
                    if created_from is None:
                        awaiting += 1
                        conn.execute(
                            "update sitoo_erp.order_state set reason = %s, reason_code = %s where orderid = %s",
                            (S.AWAITING_ORIGINAL, S.ReasonCode.AWAITING_ORIGINAL, doc.orderid),
                        )
                        continue
                try:
                    prepared = store.prepare(
                        record_type(doc), doc.external_id, render_netsuite(doc, created_from)
                    )
                except NetSuiteError as err:
                    rejected += 1
                    _quarantine(
                        conn,
                        doc.orderid,
                        doc.store_externalid,
                        ExceptionKind.ERP_REJECTED,
                        err.path or "document",
                        "erp.validation",
                        f"{doc.external_id}: {err}",
                        "rejected",
                    )
                    continue
                tid, _ = store.upsert(prepared)
                erp_id_by_order[doc.orderid] = tid
                log.append(
                    (
                        doc.external_id,
                        doc.orderid,
                        str(doc.kind),
                        tid,
                        doc.tran_date,
                        doc.store_externalid,
                        doc.net_total,
                        doc.tax_total,
                        doc.gross_total,
                        doc.total_variance,
                        1,
                        hashes.get(doc.orderid),
                        *line_fingerprint(doc),
                        f"posted as {doc.kind} {doc.external_id} (ERP id {tid})",
                    )
                )
                for rate in doc.pos_tax_by_rate:
                    variance.append(
                        (
                            doc.orderid,
                            rate,
                            doc.pos_tax_by_rate[rate],
                            doc.erp_line_tax_by_rate.get(rate, 0),
                            doc.tax_variance_by_rate.get(rate, 0),
                        )
                    )
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    "create temp table _bench_log (like sitoo_erp.posting_log including defaults, "
                    "why text) on commit drop"
                )
                with cur.copy(
                    "copy _bench_log (external_id, orderid, document_type, erp_id, tran_date, store_externalid, "
                    "net_amount, tax_amount, gross_amount, tax_variance, attempts, content_hash, line_count, "
                    "line_qty, line_item_qty, why) from stdin"
                ) as cp:
                    for row in log:
                        cp.write_row(row)
                cur.execute(
                    "insert into sitoo_erp.posting_log (external_id, orderid, document_type, erp_id, tran_date, "
                    "store_externalid, net_amount, tax_amount, gross_amount, tax_variance, attempts, content_hash, "
                    "line_count, line_qty, line_item_qty) "
                    "select external_id, orderid, document_type, erp_id, tran_date, store_externalid, net_amount, "
                    "tax_amount, gross_amount, tax_variance, attempts, content_hash, line_count, line_qty, "
                    "line_item_qty from _bench_log"
                )
                cur.execute(
                    "update sitoo_erp.order_state s set state = %s, reason = b.why, reason_code = %s, "
                    "held_since = null, state_changed_at = now(), updated_at = now() "
                    "from _bench_log b where b.orderid = s.orderid",
                    (S.POSTED, S.ReasonCode.POSTED),
                )
                with cur.copy(
                    "copy sitoo_erp.receipt_tax_variance (orderid, vat_rate, pos_tax, erp_line_tax, variance) "
                    "from stdin"
                ) as cp:
                    for row in variance:
                        cp.write_row(row)
            posted += len(log)
    reasons = conn.execute(
        "select left(reason, 120), count(*) from sitoo_erp.order_state where state = 'quarantined' "
        "group by 1 order by 2 desc limit 5"
    ).fetchall()
    return {
        "posted": posted,
        "quarantined": summary.quarantined + rejected,
        "awaiting_original": awaiting,
        "quarantine_reasons": dict(reasons),
    }


def _build_doc(conn, orderid: int):
    """The LedgerDocument the posting path builds for one staged receipt."""
    from psycopg.rows import dict_row

    from include.sitoo_erp.posting.documents import DocumentOptions, ReceiptInput, build_document
    from include.sitoo_erp.posting.post import load_mappings

    with conn.cursor(row_factory=dict_row) as cur:
        h = cur.execute("select * from sitoo_erp.sitoo_order where orderid = %s", (orderid,)).fetchone()
        rows = cur.execute(
            "select * from sitoo_erp.sitoo_order_row where orderid = %s order by orderitemid", (orderid,)
        ).fetchall()
        pays = cur.execute(
            "select * from sitoo_erp.sitoo_payment where orderid = %s order by payment_index", (orderid,)
        ).fetchall()
    return build_document(ReceiptInput.from_rows(h, rows, pays), load_mappings(conn), DocumentOptions())


def plant_gaps(conn, store, day: date) -> dict:
    """Known gaps on ``day`` (in both the month and the baseline): what the compare must name."""
    from include.sitoo_erp.erp.netsuite_documents import record_type, render_netsuite

    sales = conn.execute(
        """
        select p.orderid, p.external_id, p.erp_id, p.store_externalid, coalesce(v.variance, 0)
          from sitoo_erp.posting_log p join sitoo_erp.sitoo_order o using (orderid)
          left join (select orderid, sum(abs(variance)) as variance from sitoo_erp.receipt_tax_variance
                     group by orderid) v using (orderid)
         where p.document_type = 'sale' and p.tran_date = %s and o.loyalty_discount = 0
         order by p.orderid
        """,
        (day,),
    ).fetchall()
    plain = [s for s in sales if s[4] == 0]
    with_var = [s for s in sales if s[4] != 0]
    c = store.conn
    planted = {}
    with store.lock:
        # amount mismatch: the ERP's tax on one document edited by 1.00
        oid, eid, tid, st, _ = plain[0]
        c.execute(
            'UPDATE transactiontaxdetail SET taxamount = taxamount + 1 WHERE "transaction" = ? AND id = '
            '(SELECT MIN(id) FROM transactiontaxdetail WHERE "transaction" = ?)',
            (int(tid), int(tid)),
        )
        planted["amount_mismatch/erp_amounts_differ"] = eid
        # a document deleted from the ERP (cause unknown)
        oid, eid, tid, st, _ = plain[1]
        for table, col in (("transactiontaxdetail", '"transaction"'), ("transactionline", '"transaction"'),
                           ("transactionaccountingline", '"transaction"'), ('"transaction"', "id")):  # fmt: skip
            c.execute(f"DELETE FROM {table} WHERE {col} = ?", (int(tid),))
        planted["missing_in_erp/unknown"] = eid
    # a ghost document with our externalId and no receipt behind it; a duplicate keyed by orderid
    oid, eid, tid, st, _ = plain[2]
    doc = _build_doc(conn, oid)
    ghost = f"SITOO-S-{st}-GHOST0001"
    store.upsert(store.prepare(record_type(doc), ghost, render_netsuite(replace(doc, external_id=ghost))))
    planted["extra_in_erp/no_receipt"] = ghost
    oid, eid, tid, st, _ = plain[3]
    doc = _build_doc(conn, oid)
    dup = f"SITOO-S-{st}-{oid}"
    store.upsert(store.prepare(record_type(doc), dup, render_netsuite(replace(doc, external_id=dup))))
    planted["duplicate_in_erp/duplicate"] = f"SITOO-S-{st}-{oid}"
    # an ERP that computed VAT per line itself, on a receipt with a recorded variance (explained)
    if with_var:
        doc = _build_doc(conn, with_var[0][0])
        body = render_netsuite(doc)
        body["taxDetailsOverride"] = False
        store.upsert(store.prepare(record_type(doc), doc.external_id, body))
        planted["tax_variance/recorded_variance (explained)"] = doc.external_id
    return planted


def plant_summary_gaps(conn, store, day: date) -> dict:
    """Summary mode's known gaps on ``day``: a summary's ERP tax edited, a summary deleted, a ghost
    under a summary-shaped key, and one summarised receipt also posted on its own (double booked)."""
    from include.sitoo_erp.erp.netsuite_documents import record_type, render_netsuite

    docs = conn.execute(
        "select external_id, erp_id, store_externalid from sitoo_erp.summary_document "
        "where status = 'posted' and direction = 'sale' and business_date = %s order by external_id",
        (day,),
    ).fetchall()
    c = store.conn
    planted = {}
    with store.lock:
        eid, tid, _ = docs[0]
        c.execute(
            'UPDATE transactiontaxdetail SET taxamount = taxamount + 1 WHERE "transaction" = ? AND id = '
            '(SELECT MIN(id) FROM transactiontaxdetail WHERE "transaction" = ?)',
            (int(tid), int(tid)),
        )
        planted["amount edited"] = eid
        eid, tid, _ = docs[-1]
        for table, col in (("transactiontaxdetail", '"transaction"'), ("transactionline", '"transaction"'),
                           ("transactionaccountingline", '"transaction"'), ('"transaction"', "id")):  # fmt: skip
            c.execute(f"DELETE FROM {table} WHERE {col} = ?", (int(tid),))
        planted["deleted from the ERP"] = eid
    oid, st = conn.execute(
        "select r.orderid, d.store_externalid from sitoo_erp.summary_receipt r join sitoo_erp.summary_document d "
        "using (external_id) join sitoo_erp.sitoo_order o on o.orderid = r.orderid "
        "where d.external_id = %s and o.loyalty_discount = 0 order by r.orderid limit 1",
        (docs[1][0],),
    ).fetchone()
    doc = _build_doc(conn, oid)
    ghost = f"SITOO-D-{st}-{day:%Y%m%d}-S9"
    store.upsert(store.prepare(record_type(doc), ghost, render_netsuite(replace(doc, external_id=ghost))))
    planted["ghost under a summary key"] = ghost
    store.upsert(store.prepare(record_type(doc), doc.external_id, render_netsuite(doc)))
    planted[f"receipt {oid} of {docs[1][0]} also posted on its own"] = doc.external_id
    return planted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--receipts", type=int, default=1_000_000)
    ap.add_argument("--stores", type=int, default=100)
    ap.add_argument("--sample", type=int, default=20_000)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--no-sweep", action="store_true", help="skip the Sitoo sweep sample")
    ap.add_argument("--prepare-only", action="store_true", help="with --reuse: prepare DIR, measure nothing")
    ap.add_argument(
        "--reuse",
        metavar="DIR",
        help="keep the prepared PostgreSQL cluster + a copy of the sandbox's SQLite in DIR; a later run "
        "with the same DIR, --receipts and --stores skips the setup (delete DIR to prepare afresh)",
    )
    ap.add_argument(
        "--posting-mode",
        choices=("receipt", "daily_summary"),
        default="receipt",
        help="daily_summary: every store-day posted by post_daily_summaries through NetSuiteHook over HTTP",
    )
    a = ap.parse_args()
    from include.sandbox.airflow_env import configure

    configure(Path(tempfile.mkdtemp(prefix="bench-recon-airflow-")))
    from include.sandbox.postgres import EmbeddedPostgres
    from include.sandbox.server import free_port
    from include.sandbox.stack import LocalStack, StackConfig
    from include.sitoo_erp.erp import get_erp_adapter
    from include.sitoo_erp.posting.classify import classify
    from include.sitoo_erp.posting.mapping import refresh_item_cache
    from include.sitoo_erp.reconciliation.sweep import upsert_z_reports
    from include.sitoo_erp.sitoo.hook import parse
    from include.sitoo_erp.sitoo.models import ZReport
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.orders import stage_orders

    print(f"machine: {machine()}", flush=True)
    work = Path(a.reuse).resolve() if a.reuse else Path(tempfile.mkdtemp(prefix="bench-recon-"))
    work.mkdir(parents=True, exist_ok=True)
    marker, sqlite_copy = work / "prepared.json", work / "netsuite.sqlite"
    prepared = json.loads(marker.read_text()) if a.reuse and marker.exists() else None
    shape = (a.receipts, a.stores, a.posting_mode)
    if (
        prepared
        and (prepared["receipts"], prepared["stores"], prepared.get("posting_mode", "receipt")) != shape
    ):
        raise SystemExit(
            f"{work} was prepared for {prepared['receipts']} receipts / {prepared['stores']} stores / "
            f"{prepared.get('posting_mode', 'receipt')} mode"
        )
    per_day = max(1, round(a.receipts / (a.stores * 30)))
    pg = EmbeddedPostgres(work / "pg", port=free_port()).start()
    figures: dict = {"command": " ".join(["python -m bench.reconciliation", *sys.argv[1:]])}
    try:
        t = time.perf_counter()
        cfg = StackConfig(
            database="bench_recon", start=MONTH[0], stores=a.stores, days=30, receipts_per_store_day=per_day
        )
        stack = LocalStack(cfg, work).start(postgres=pg)
        os.environ.update(stack.env)
        ds = stack.dataset
        n = len(ds)
        print(
            f"setup: dataset {n:,} orders ({a.stores} stores x 30 days x {per_day}/day, plus exchanges and "
            f"non-POS orders) generated, stack up in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        store = stack.netsuite.store
        if prepared:
            import sqlite3

            with store.lock:
                src = sqlite3.connect(sqlite_copy)
                src.backup(store.conn)
                src.close()
            with connect_url(stack.database_url) as conn:
                conn.execute("delete from sitoo_erp.reconciliation_run")
                conn.commit()
            figures["setup"], figures["planted"] = prepared["setup"], prepared["planted"]
            print(f"setup: reused {work} (database + sandbox store as prepared)", flush=True)
        else:
            with connect_url(stack.database_url) as conn:
                t = time.perf_counter()
                stage_orders(conn, ds.iter_orders(), batch_size=5000)
                z = upsert_z_reports(conn, (parse(ZReport, z, "z-report") for z in ds.z_reports()))
                cls = classify(conn)
                erp = get_erp_adapter("netsuite_default")
                items = refresh_item_cache(conn, erp)  # the hourly run's item lookup (SuiteQL, over HTTP)
                erp.close()
                conn.commit()
                print(
                    f"setup: staged {n:,} orders + {z:,} Z-reports directly and classified in "
                    f"{time.perf_counter() - t:.0f} s ({cls['by_reason']}; items {items})",
                    flush=True,
                )
                t = time.perf_counter()
                day = BASELINE[0] + (BASELINE[1] - BASELINE[0]) // 2
                if a.posting_mode == "daily_summary":
                    posted = post_summaries(conn, stack.database_url)
                    how = (
                        "daily summaries: post_daily_summaries through NetSuiteHook over HTTP to the sandbox"
                    )
                else:
                    posted = post_directly(conn, store)
                    how = "real posting path minus HTTP, ERP written straight into the sandbox store"
                conn.commit()
                print(f"setup: {how}: {posted} in {time.perf_counter() - t:.0f} s", flush=True)
                gaps = plant_summary_gaps if a.posting_mode == "daily_summary" else plant_gaps
                planted = gaps(conn, store, day)
                conn.commit()
                print(f"setup: planted {planted}", flush=True)
                figures["setup"] = {"orders": n, "per_store_day": per_day, "stores": a.stores, **posted}
                figures["planted"] = planted
            if a.reuse:
                import sqlite3

                with store.lock:
                    dst = sqlite3.connect(sqlite_copy)
                    store.conn.backup(dst)
                    dst.close()
                marker.write_text(
                    json.dumps(
                        {
                            "receipts": a.receipts,
                            "stores": a.stores,
                            "posting_mode": a.posting_mode,
                            "setup": figures["setup"],
                            "planted": figures["planted"],
                        },
                        default=str,
                    )
                )
        figures["setup_parent_peak_rss_mb"] = round(_rss_mb())
        if a.prepare_only:
            stack.stop()
            return
        runs = [("month", MONTH)] + ([] if a.no_baseline else [("baseline_1_10", BASELINE)])
        for name, (lo, hi) in reversed(runs):  # baseline first: the month must not warm its caches
            r = measure(
                compare_in_child,
                database_url=stack.database_url,
                date_from=lo.isoformat(),
                date_to=hi.isoformat(),
            )
            figures[name] = r
            print(
                f"compare+classify [{name} {lo}..{hi}]: {r['compare_s']:.1f} s for {r['receipts']:,} receipts, "
                f"{r['erp_documents']:,} ERP documents ({r['erp_queries']} SuiteQL queries over HTTP, "
                f"{r['drilled_store_days']} store-days drilled, {r['cells']:,} cells); phases {r['timings']}; "
                f"peak RSS (VmHWM) of the compare process {r['peak_hwm_mb']} MB "
                f"(of which {r['rss_before_compare_mb']} MB imports); unexplained {r['unexplained']}",
                flush=True,
            )
            for line in r["lines"]:
                print(f"    {line}", flush=True)
        if a.no_sweep:
            stack.stop()
            return
        url = stack.fresh_database()
        s = measure(sweep_sample, database_url=url, sample=min(a.sample, n))
        rate = s["orders"] / s["sweep_s"]
        figures["sweep_sample"] = {**s, "orders_per_s": round(rate), "month_extrapolated_s": round(n / rate)}
        print(
            f"sitoo sweep (sample, extrapolated): {s['orders']:,} orders in {s['sweep_s']:.1f} s = "
            f"{rate:,.0f} orders/s (peak RSS {s['peak_hwm_mb']} MB) -> the month's {n:,} orders "
            f"~ {n / rate:.0f} s",
            flush=True,
        )
        suffix = "" if a.posting_mode == "receipt" else f"_{a.posting_mode}"
        path = save(f"reconciliation_{a.receipts}{suffix}", figures)
        print(f"figures: {path.relative_to(ROOT)}", flush=True)
        stack.stop()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
