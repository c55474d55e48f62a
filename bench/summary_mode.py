"""Bench: daily-summary posting mode beside receipt mode, in one run (issue 15, point 7).

    .venv/bin/python -m bench.summary_mode [--stores 300 --receipts 167 --receipt-stores 30]
    .venv/bin/python -m bench.summary_mode --days 30 --receipts 111   # a 1,000,000-receipt month (long)

One business day (or ``--days``) of ``--stores`` x ``--receipts`` generated receipts is **staged
directly** (``stage_orders`` from the generator's payloads, the real ``classify`` and Great
Expectations gate: the state just before the posting tasks) into one prepared database. Each
measured run starts from its own copy of it (``create database ... template``) against a NetSuite
sandbox running as its own process (50-150 ms per request, ``--workers`` account slots), reset
before the run (no documents, no tokens, counters zero), in a fresh child process:

- **summary mode**: every store in ``daily_summary`` (the deployment default), then
  ``post_daily_summaries`` as the hourly DAG's task runs it the next morning, through the real
  ``NetSuiteHook``; then ``reconcile()`` of the period (SuiteQL over HTTP against the documents it
  just posted), as the monthly DAG runs it.
- **receipt mode** (the baseline, same run, same data): ``post_ready`` with ``--workers`` workers
  for the first ``--receipt-stores`` stores (the others are put in summary mode so receipt mode
  leaves them alone; posting all 50,000 one by one takes ~7 min at these latencies, and the calls
  per receipt do not depend on the number of stores); the same ``reconcile()`` only when every
  store posted in receipt mode (``--receipt-stores`` >= ``--stores``): the receipt-mode
  reconciliation of a 1M month is ``bench/reconciliation.py``'s figure.

ERP calls are what the **NetSuite sandbox says it served** (``/_sandbox/counters``: API requests +
token requests), not the integration's own counter. Figures are printed and saved to
``bench/out/summary_mode.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta

from bench.common import ROOT, machine, measure, save, start_process

WORK = ROOT / "var" / "bench-summary"
SEED = 42
SKUS = 400
DAY = date(2026, 11, 27)  # a Friday
LATENCY_MS = 50.0
JITTER_MS = 100.0
TARGET_CALLS_PER_RECEIPT = 0.01


def prepare(database_url: str, stores: int, receipts: int, days: int) -> dict:
    """Stage, seed mappings + erp_item, classify and gate: the state just before the posting tasks."""
    from include.sandbox.catalogue import mapping_seed_rows
    from include.sandbox.generator import generate_dataset
    from include.sitoo_erp.posting.classify import classify
    from include.sitoo_erp.quality.gate import run_gate
    from include.sitoo_erp.reconciliation.sweep import upsert_z_reports
    from include.sitoo_erp.sitoo.hook import parse
    from include.sitoo_erp.sitoo.models import ZReport
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.mappings import load_mapping_csvs, write_mapping_csvs
    from include.sitoo_erp.staging.orders import stage_orders

    ds = generate_dataset(
        seed=SEED, stores=stores, days=days, receipts_per_store_day=receipts, skus=SKUS, start=DAY
    )
    cat = ds.catalogue
    with connect_url(database_url) as conn:
        seed_dir = WORK / f"mappings-{stores}"
        write_mapping_csvs(mapping_seed_rows(cat), seed_dir)
        load_mapping_csvs(conn, seed_dir)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into sitoo_erp.erp_item (sku, item_id, is_inactive) values (%s, %s, %s)",
                [(p.sku, p.erp_item_id, p.erp_inactive) for p in [*cat.products, cat.gift_card] if p.in_erp],
            )
        staged = stage_orders(conn, ds.iter_orders())
        # The tills' Z-reports, as the monthly reconciliation's sweep stages them (its Z-report check).
        upsert_z_reports(conn, (parse(ZReport, z, "z-report") for z in ds.z_reports()))
        classify(conn)
        gate = run_gate(database_url, conn, run_label="bench-summary")
        ready = conn.execute("select count(*) from sitoo_erp.ready_receipt").fetchone()[0]
        span = conn.execute(
            "select min(business_date), max(business_date) from sitoo_erp.ready_receipt"
        ).fetchone()
    return {
        "orders": staged.fetched,
        "quarantined_by_gate": gate.quarantined,
        "ready": ready,
        "first_day": span[0].isoformat(),
        "last_day": span[1].isoformat(),
    }


def _sandbox(port: int, path: str, body: bytes | None = None) -> dict | None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET"
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        data = resp.read()
    return json.loads(data) if data else None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def post_summaries(database_url: str, port: int, key: str, business_now: str) -> dict:
    """The daily summary task for every store (child process): wall time, per store-day time."""
    from bench.posting_throughput import _conn_env

    _conn_env(port, key)
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.posting import summary as SM
    from include.sitoo_erp.staging.db import connect_url

    # Per store-day: from reading its receipts to the last of its documents recorded.
    per_store_day: dict[tuple[str, date], float] = {}
    marks: dict[str, float] = {"t": 0.0}
    key_of: dict[str, tuple[str, date]] = {}
    real_inputs, real_send = SM._inputs, SM._send

    def timed_inputs(conn, orderids):
        began = time.perf_counter()
        out = real_inputs(conn, orderids)
        marks["t"] = began
        if out:
            k = (out[0].store_externalid, out[0].business_date)
            key_of["current"] = k
            per_store_day.setdefault(k, 0.0)
        return out

    def timed_send(conn, erp, part, out, transient):
        try:
            return real_send(conn, erp, part, out, transient)
        finally:
            k = (part.document.store_externalid, part.document.tran_date)
            per_store_day[k] = time.perf_counter() - marks["t"]

    SM._inputs, SM._send = timed_inputs, timed_send
    hook = NetSuiteHook()
    with connect_url(database_url) as conn:
        began = time.perf_counter()
        result = SM.post_daily_summaries(
            conn, hook, datetime.fromisoformat(business_now), SM.SummaryOptions()
        )
        wall = time.perf_counter() - began
        docs = conn.execute(
            "select count(*), count(*) filter (where tender_journal_external_id is not null), "
            "count(distinct tender_journal_external_id), max(line_count), sum(receipt_count) "
            "from sitoo_erp.summary_document where status = 'posted'"
        ).fetchone()
    hook.close()
    times = list(per_store_day.values())
    return {
        "wall_s": wall,
        "result": {k: v for k, v in result.as_dict().items() if k != "documents"},
        "documents": docs[0],
        "documents_with_tender_journal": docs[1],
        "tender_journals": docs[2],
        "max_lines_per_document": docs[3],
        "receipts_in_posted_documents": docs[4],
        "store_days_timed": len(times),
        "per_store_day_p50_s": statistics.median(times) if times else None,
        "per_store_day_p95_s": _pct(times, 0.95),
        "per_store_day_max_s": max(times) if times else None,
    }


def post_receipts(database_url: str, port: int, key: str, workers: int) -> dict:
    from bench.posting_throughput import _conn_env

    _conn_env(port, key)
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.posting.post import PostingOptions, post_ready
    from include.sitoo_erp.staging.db import connect_url

    hook = NetSuiteHook()
    with connect_url(database_url) as conn:
        began = time.perf_counter()
        summary = post_ready(conn, hook, PostingOptions(max_workers=workers))
        wall = time.perf_counter() - began
        journals = conn.execute(
            "select count(*) from sitoo_erp.posting_log where tender_journal_external_id is not null"
        ).fetchone()[0]
    hook.close()
    return {
        "wall_s": wall,
        "posted": summary.posted,
        "awaiting_original": summary.awaiting_original,
        "quarantined_at_post": summary.quarantined,
        "transient_failures": summary.transient_failures,
        "tender_journals": journals,
    }


def reconcile_period(database_url: str, port: int, key: str, date_from: str, date_to: str) -> dict:
    """The reconciliation bench's measured step (``bench/reconciliation.py``), against this sandbox."""
    from bench.posting_throughput import _conn_env
    from bench.reconciliation import compare_in_child

    _conn_env(port, key)
    return compare_in_child(database_url, date_from, date_to)


def _copy(pg, template: str, name: str) -> str:
    import psycopg

    pg.drop_database(name)
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{template}"')
    return pg.url(name)


def _erp_calls(counters: dict) -> dict:
    return {
        k: counters[k]
        for k in ("api_requests", "token_requests", "throttled_429", "max_in_flight", "created", "updated")
        if k in counters
    }


def run_mode(pg, template: str, mode: str, port: int, key: str, args, prepared: dict) -> dict:
    from include.sitoo_erp.posting.summary import DAILY_SUMMARY, RECEIPT, set_posting_mode
    from include.sitoo_erp.staging.db import connect_url

    url = _copy(pg, template, f"bench_summary_{mode}")
    with connect_url(url) as conn:
        set_posting_mode(conn, DAILY_SUMMARY if mode == "summary" else RECEIPT, date(2026, 1, 1))
        if mode == "receipt":  # only the first --receipt-stores stores post receipt by receipt
            stores = [
                s
                for (s,) in conn.execute(
                    "select distinct store_externalid from sitoo_erp.ready_receipt order by 1"
                ).fetchall()
            ]
            for store in stores[args.receipt_stores :]:
                set_posting_mode(conn, DAILY_SUMMARY, date(2026, 1, 1), store)
            in_mode = conn.execute(
                "select count(*) from sitoo_erp.ready_receipt o "
                "where sitoo_erp.posting_mode(o.store_externalid, o.business_date) = 'receipt'"
            ).fetchone()[0]
        else:
            in_mode = prepared["ready"]
        conn.commit()
    _sandbox(port, "/_sandbox/reset", b"{}")
    last = date.fromisoformat(prepared["last_day"])
    if mode == "summary":
        business_now = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1, hours=8)
        posting = measure(
            post_summaries, database_url=url, port=port, key=key, business_now=business_now.isoformat()
        )
        posted = posting["receipts_in_posted_documents"] or 0
    else:
        posting = measure(post_receipts, database_url=url, port=port, key=key, workers=args.workers)
        posted = posting["posted"]
    counters = _sandbox(port, "/_sandbox/counters")
    calls = counters["api_requests"] + counters["token_requests"]
    recon: dict = {}
    if mode == "summary" or args.receipt_stores >= args.stores:  # else most stores are not posted at all
        _sandbox(port, "/_sandbox/reset-counters", b"{}")
        r = measure(
            reconcile_period,
            database_url=url,
            port=port,
            key=key,
            date_from=prepared["first_day"],
            date_to=prepared["last_day"],
        )
        recon = {
            "reconcile_s": round(r["compare_s"], 2),
            "reconcile_peak_rss_mb": round(r["peak_rss_mb"]),
            "reconcile_receipts": r["receipts"],
            "reconcile_erp_documents": r["erp_documents"],
            "reconcile_suiteql_requests": _sandbox(port, "/_sandbox/counters")["api_requests"],
            "reconcile_unexplained": r["unexplained"],
            "reconcile_lines": r["lines"],
        }
    pg.drop_database(f"bench_summary_{mode}")
    out = {
        "receipts_in_mode": in_mode,
        "receipts_posted": posted,
        "posting_wall_s": round(posting["wall_s"], 1),
        "posting_process_s": round(posting["seconds"], 1),
        "posting_peak_rss_mb": round(posting["peak_rss_mb"]),
        "erp_served": _erp_calls(counters),
        "erp_calls": calls,
        "erp_calls_per_posted_receipt": round(calls / max(1, posted), 4),
        **recon,
    }
    for k, v in posting.items():
        if k not in ("seconds", "peak_rss_mb", "wall_s", "posted"):
            out[k] = round(v, 3) if isinstance(v, float) else v
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--receipts", type=int, default=167, help="receipts per store-day")
    parser.add_argument("--days", type=int, default=1, help="business days (30 x 111 x 300 = a 1M month)")
    parser.add_argument("--receipt-stores", type=int, default=30, help="stores posted in receipt mode")
    parser.add_argument("--workers", type=int, default=12, help="receipt-mode workers = account slots")
    parser.add_argument("--save-as", default="summary_mode", help="bench/out/<name>.json")
    args = parser.parse_args()

    import psycopg

    from include.sandbox.postgres import EmbeddedPostgres
    from include.sandbox.server import free_port
    from include.sandbox.stack import throwaway_private_key
    from include.sitoo_erp.staging.schema import migrate

    WORK.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    pg = EmbeddedPostgres(WORK / "pgdata", port=free_port()).start()
    port = free_port()
    netsuite = start_process(
        [
            "-m",
            "include.sandbox.netsuite",
            "--port",
            str(port),
            "--seed",
            str(SEED),
            "--stores",
            str(args.stores),
            "--skus",
            str(SKUS),
            "--concurrency",
            str(args.workers),
            "--latency-ms",
            str(LATENCY_MS),
            "--jitter-ms",
            str(JITTER_MS),
        ],
        port,
    )
    key = throwaway_private_key()
    template = "bench_summary_prepared"
    try:
        pg.drop_database(template)
        url = pg.ensure_database(template)
        migrate(url)
        prepared = measure(
            prepare, database_url=url, stores=args.stores, receipts=args.receipts, days=args.days
        )
        with psycopg.connect(pg.url(), autocommit=True) as conn:  # a template must have no sessions
            conn.execute(
                f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{template}'"
            )
        summary = run_mode(pg, template, "summary", port, key, args, prepared)
        receipt = run_mode(pg, template, "receipt", port, key, args, prepared)
        pg.drop_database(template)
    finally:
        netsuite.terminate()
        netsuite.wait()
        pg.stop()
    store_days = args.stores * args.days
    figures = {
        "command": "python -m bench.summary_mode "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("save_as",)),
        "latency_ms": f"{LATENCY_MS:.0f}-{LATENCY_MS + JITTER_MS:.0f}",
        "account_slots": args.workers,
        "stores": args.stores,
        "days": args.days,
        "receipts_per_store_day": args.receipts,
        "prepared": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in prepared.items()},
        "summary_mode": summary,
        "receipt_mode_baseline": receipt,
        "summary_calls_per_store_day": round(summary["erp_calls"] / store_days, 2),
        "target": f"ERP calls per receipt <= {TARGET_CALLS_PER_RECEIPT} in summary mode",
        "target_met": summary["erp_calls_per_posted_receipt"] <= TARGET_CALLS_PER_RECEIPT,
        "bench_wall_s": round(time.perf_counter() - began, 1),
    }
    print(f"machine: {machine()}")
    print(f" {figures['command']}")
    print(f" prepared: {figures['prepared']}")
    for label, fig in (("summary mode", summary), ("baseline: receipt mode", receipt)):
        print(f" {label}:")
        for k, v in fig.items():
            print(f"  {k:34s} {v}")
    print(f" summary-mode ERP calls per store-day: {figures['summary_calls_per_store_day']}")
    print(f" target: {figures['target']} -> {'met' if figures['target_met'] else 'NOT met'}")
    print(f"saved {save(args.save_as, figures)}")


if __name__ == "__main__":
    main()
