"""``make demo``: the main job end to end on embedded defaults, then what it did, in plain text.

Starts embedded PostgreSQL, the Sitoo and NetSuite sandboxes and an SMTP sink on 127.0.0.1,
seeds a week of trading for 5 stores (VAT-inclusive tills rounding per receipt and per line, and
one net-priced till), and runs the real DAG with ``dag.test()`` against them.
Everything it writes lives under ``var/`` (git-ignored); each run starts from a fresh database.

The terminal gets the summary only (a few screens); everything else the run prints (Airflow's task
logs, the sandboxes' request logs) goes to ``var/demo.log``, named at the end of the summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from include.sandbox.airflow_env import ROOT, configure, migrate_metadata_db

VAR = ROOT / "var"
LOG = VAR / "demo.log"
_TERMINAL: TextIO | None = None  # the real stdout while fds 1 and 2 go to the log


def say(*parts: object) -> None:
    """A summary line: on the terminal and in the log."""
    print(*parts, flush=True)  # fd 1: the log while the output is redirected
    if _TERMINAL is not None:
        print(*parts, file=_TERMINAL, flush=True)


@contextmanager
def _output_to_log(path: Path) -> Iterator[None]:
    """Send fds 1 and 2 (every library's and subprocess's output) to ``path``; ``say`` still reaches the
    terminal. Restored on exit; a crash's traceback is in the log and its last line on the terminal."""
    global _TERMINAL
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    _TERMINAL = os.fdopen(os.dup(1), "w", encoding="utf-8")
    with open(path, "w", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException as exc:
            print(f"demo failed: {exc!r} (full traceback in {path})", file=_TERMINAL, flush=True)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            _TERMINAL.close()
            _TERMINAL = None


def _print_table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    say(f"\n{title}")
    widths = (
        [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
        if rows
        else [len(h) for h in header]
    )
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    say("  " + line.format(*header))
    for row in rows:
        say("  " + line.format(*(str(x) for x in row)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--receipts-per-store-day", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--pricing",
        default=None,
        help="till pricing per store, comma-separated and cycled (gross_receipt, gross_line, net_line, "
        "net_receipt); default: VAT-inclusive stores plus one net-priced store",
    )
    args = parser.parse_args(argv)
    with _output_to_log(LOG):
        rc = _run(args)
    with LOG.open(encoding="utf-8", errors="replace") as f:
        lines = sum(1 for _ in f)
    print(f"Full log ({lines} lines: Airflow task logs, sandbox requests): {LOG}")
    return rc


def _run(args: argparse.Namespace) -> int:
    configure(VAR / "airflow")
    logging.basicConfig(level=logging.WARNING)
    from include.sandbox.stack import LocalStack, StackConfig, pick_port

    config = StackConfig(
        seed=args.seed,
        stores=args.stores,
        days=args.days,
        receipts_per_store_day=args.receipts_per_store_day,
        pricing=tuple(args.pricing.split(",")) if args.pricing else None,
        pg_port=pick_port(54329),
    )
    began = time.monotonic()
    say(f"Starting the local stack in {VAR} (embedded PostgreSQL, Sitoo + NetSuite sandboxes, SMTP sink)…")
    stack = LocalStack(config, VAR)
    stack.start(fresh=True)
    try:
        # A fresh staging database per demo run (start(fresh=True)): the figures are this run's alone.
        stack.export_env()
        ds = stack.dataset
        assert ds is not None and stack.postgres and stack.sitoo and stack.netsuite and stack.smtp  # started
        say(f"  PostgreSQL   {stack.postgres.url(config.database)}")
        say(
            f"  Sitoo        {stack.sitoo.base_url}  ({len(ds)} orders over {config.days} days, {config.stores} stores)"
        )
        pricing = ", ".join(f"{s.externalid} {s.pricing}" for s in ds.catalogue.stores)
        say(f"  Till pricing {pricing}  (gross_* = VAT-inclusive shelf prices)")
        say(f"  NetSuite     {stack.netsuite.url}/services/rest")
        say(f"  SMTP sink    127.0.0.1:{stack.smtp.port}  (mail spooled to {VAR / 'mail'})")
        say("Migrating the Airflow metadata DB (SQLite)…")
        migrate_metadata_db()

        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            say(f"DAG import errors: {bag.import_errors}")
            return 1
        dag = bag.get_dag("sitoo_sales_hourly")
        # The first hour of the seeded week: its window pass stages that hour, and the late sweep
        # (everything above the orderid high-water mark) stages the rest of the week. The second
        # run shows a re-run changes nothing: no new documents, same ledger.
        first_hour = datetime(config.start.year, config.start.month, config.start.day, 9, tzinfo=UTC)
        runs = []
        for window_start in (first_hour, first_hour + timedelta(hours=1)):
            say(f"Running sitoo_sales_hourly for the hour from {window_start:%Y-%m-%d %H:%M} UTC (dag.test)…")
            run = dag.test(logical_date=window_start + timedelta(hours=1))
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            say(f"  {run.run_id}: {run.state}  tasks: {states}")
            runs.append(run)
        run = runs[-1]
        ok = all(str(r.state) == "success" for r in runs)

        # Daily stock for each seeded day, after the stores close (02:30 the next morning, store time).
        stock_dag = bag.get_dag("sitoo_stock_daily")
        for offset in range(config.days):
            day = config.start + timedelta(days=offset)
            logical = datetime.combine(day + timedelta(days=1), dtime(2, 30), ZoneInfo(config.timezone))
            stock_run = stock_dag.test(logical_date=logical)
            say(f"Running sitoo_stock_daily for {day} (dag.test): {stock_run.state}")
            ok = ok and str(stock_run.state) == "success"

        # The seeded month's reconciliation, as scheduled (06:00 on the 3rd of the next month).
        os.environ["AIRFLOW_VAR_SITOO_ERP_REPORT_DIR"] = str(VAR / "reports")
        month_end = config.start.replace(day=1) + timedelta(days=32)
        scheduled = datetime(month_end.year, month_end.month, 3, 6, tzinfo=ZoneInfo(config.timezone))
        stack.sitoo.set_clock(int(scheduled.timestamp()))  # every till and Z-report of the month is in
        recon_run = bag.get_dag("sitoo_reconciliation_monthly").test(logical_date=scheduled)
        recon_states = {ti.task_id: str(ti.state) for ti in recon_run.get_task_instances()}
        say(
            f"Running sitoo_reconciliation_monthly for {config.start:%B %Y} (dag.test): {recon_run.state} "
            f"{recon_states}"
        )

        report(stack.database_url, {s.externalid: s.pricing for s in ds.catalogue.stores})
        recon_summary(stack.database_url)
        say(
            f"\nAlert e-mails: {len(stack.smtp.messages)} delivered to the SMTP sink, spooled in {VAR / 'mail'}"
        )
        for message in stack.smtp.messages:
            say(f"  to {message['To']}: {message['Subject']}")
        say(f"\nDone in {time.monotonic() - began:.1f} s. Airflow home: {VAR / 'airflow'}")
        return 0 if ok else 1
    finally:
        stack.stop()


def recon_summary(database_url: str) -> None:
    from include.sitoo_erp.staging.db import connect_url

    with connect_url(database_url) as conn:
        run = conn.execute(
            "select recon_run_id, status, report_path from sitoo_erp.reconciliation_run "
            "order by recon_run_id desc limit 1"
        ).fetchone()
        if run is None:
            say("\nNo reconciliation run.")
            return
        lines = conn.execute(
            "select class, cause, explained, count(*), sum(abs(diff_net) + abs(diff_tax)) from sitoo_erp.reconciliation_line "
            "where recon_run_id = %s group by 1, 2, 3 order by 1, 2, 3",
            (run[0],),
        ).fetchall()
    _print_table(
        f"Monthly reconciliation (run {run[0]}: {run[1]})",
        ("class", "cause", "explained", "lines", "net+tax difference"),
        lines or [("(no differences)", "", "", 0, 0)],
    )
    say(f"Report: {run[2] or '(kept in sitoo_erp.reconciliation_run)'}")


def report(database_url: str, pricing: dict[str, str] | None = None) -> None:
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.orders import state_counts

    with connect_url(database_url) as conn:
        counts = state_counts(conn)
        _print_table(
            "State ledger (invariant 1: seen = posted + held + quarantined + excluded)",
            ("seen", "posted", "held", "quarantined", "excluded"),
            [tuple(counts[k] for k in ("seen", "posted", "held", "quarantined", "excluded"))],
        )
        rows = conn.execute(
            """
            select coalesce(store_externalid, '(web: not POS)'),
                   min(business_date) || '..' || max(business_date), count(distinct business_date),
                   count(*) as orders,
                   count(*) filter (where orderstateid = 10 and paymentstateid = 20) as finalised,
                   count(*) filter (where money_gross < 0) as refunds,
                   sum(money_gross) filter (where orderstateid = 10 and paymentstateid = 20) as gross
            from sitoo_erp.sitoo_order group by 1 order by 1
            """
        ).fetchall()
        _print_table(
            "Staged Sitoo orders per store",
            ("store", "business days", "days", "orders", "finalised", "refunds", "finalised gross"),
            rows,
        )
        exceptions = conn.execute(
            "select kind, owner, count(*), min(message) from sitoo_erp.exception where status = 'open' "
            "group by 1, 2 order by 1"
        ).fetchall()
        _print_table(
            "Open exceptions", ("kind", "owner", "count", "example"), exceptions or [("(none)", "", 0, "")]
        )
        per_store = conn.execute(
            "select store_externalid, count(*) filter (where state = 'posted'), "
            "count(*) filter (where state = 'quarantined'), "
            "count(*) filter (where state = 'quarantined' and exists (select 1 from sitoo_erp.exception e "
            "  where e.orderid = order_state.orderid and e.status = 'open' and e.kind = 'tax_beyond_tolerance')) "
            "from sitoo_erp.order_state where store_externalid is not null group by 1 order by 1"
        ).fetchall()
        _print_table(
            "Receipts per store and till pricing (gross_* = VAT-inclusive; tax quarantines should be 0)",
            ("store", "pricing", "posted", "quarantined", "of which for tax"),
            [(s, (pricing or {}).get(s, "?"), p, q, t) for s, p, q, t in per_store],
        )
        quarantined = conn.execute(
            "select orderid, store_externalid, receipt_id, reason from sitoo_erp.order_state "
            "where state = 'quarantined' order by orderid limit 25"
        ).fetchall()
        _print_table(
            "Quarantined receipts (first 25) and why",
            ("order", "store", "receipt", "reason"),
            [(o, s, r, reason[:110]) for o, s, r, reason in quarantined] or [("(none)", "", "", "")],
        )
        docs = conn.execute(
            "select document_type, count(*), sum(gross_amount), sum(tax_amount), sum(tax_variance) "
            "from sitoo_erp.posting_log group by 1 order by 1"
        ).fetchall()
        _print_table(
            "ERP documents posted",
            ("type", "documents", "gross", "tax (= POS VAT)", "tax variance"),
            docs or [("(none)", 0, 0, 0, 0)],
        )
        from include.sitoo_erp.stock import SUMMARY_HEADER, drift_summary

        _print_table(
            "Stock drift, latest snapshot per location (Sitoo vs ERP on-hand)",
            SUMMARY_HEADER,
            drift_summary(conn) or [("(no snapshot)",) + ("",) * (len(SUMMARY_HEADER) - 1)],
        )
        adjustments = conn.execute(
            "select count(*), count(distinct store_externalid) from sitoo_erp.posting_log "
            "where document_type = 'stock_adjustment'"
        ).fetchone()
        assert adjustments is not None  # an aggregate: always one row
        say(f"\nStock adjustments posted: {adjustments[0]} (one per store per day, {adjustments[1]} stores)")
        mark = conn.execute("select value from sitoo_erp.extract_watermark").fetchall()
        say(f"\nOrderid high-water mark: {mark[0][0] if mark else 'not set'}")


if __name__ == "__main__":
    sys.exit(main())
