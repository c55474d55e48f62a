"""Benchmark: extract ~100,000 seeded Sitoo orders through SitooHook into staging.

    .venv/bin/python -m bench.extract_orders [--stores 20 --days 10 --receipts 500]

Baseline (same run): the same pages fetched through the same hook without staging — what the
API and the HTTP client alone allow. The staging figure is what the DAG's extract task achieves.
"""

from __future__ import annotations

import argparse
import json
import os

from bench.common import ROOT, machine, measure, save, start_process
from include.sandbox.server import free_port


def _conn_env(port: int) -> None:
    os.environ["AIRFLOW_CONN_SITOO_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "login": "90316-1",
            "password": "sandbox-not-a-secret",
            "extra": {"timeout": 60},
        }
    )


def fetch_only(port: int, page_size: int) -> dict:
    _conn_env(port)
    from include.sitoo_erp.sitoo.hook import SitooHook

    count = sum(1 for _ in SitooHook(page_size=page_size).iter_order_payloads())
    return {"orders": count}


def fetch_and_stage(port: int, page_size: int, database_url: str) -> dict:
    _conn_env(port)
    from include.sitoo_erp.prefetch import prefetch
    from include.sitoo_erp.sitoo.hook import SitooHook
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.orders import stage_orders

    with connect_url(database_url) as conn:
        pages = prefetch(SitooHook(page_size=page_size).iter_order_payloads())
        summary = stage_orders(conn, pages, batch_size=page_size)
        rows = conn.execute("select count(*) from sitoo_erp.sitoo_order_row").fetchone()[0]
    return {"orders": summary.fetched, "new": summary.new, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--receipts", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    from include.sandbox.postgres import EmbeddedPostgres
    from include.sitoo_erp.staging.schema import migrate

    pg = EmbeddedPostgres(ROOT / "var" / "bench-pg", port=free_port()).start()
    port = free_port()
    sandbox = start_process(
        [
            "-m",
            "include.sandbox.sitoo",
            "--port",
            str(port),
            "--stores",
            str(args.stores),
            "--days",
            str(args.days),
            "--receipts",
            str(args.receipts),
        ],
        port,
    )
    try:
        pg.drop_database("bench_extract")
        url = pg.ensure_database("bench_extract")
        migrate(url)
        base = measure(fetch_only, port=port, page_size=args.page_size)
        staged = measure(fetch_and_stage, port=port, page_size=args.page_size, database_url=url)
    finally:
        sandbox.terminate()
        sandbox.wait()
        pg.stop()
    figures = {
        "orders": staged["orders"],
        "rows": staged["rows"],
        "baseline_fetch_only_orders_per_s": round(base["orders"] / base["seconds"]),
        "extract_and_stage_orders_per_s": round(staged["orders"] / staged["seconds"]),
        "extract_and_stage_seconds": round(staged["seconds"], 1),
        "extract_and_stage_peak_rss_mb": round(staged["peak_rss_mb"]),
        "baseline_peak_rss_mb": round(base["peak_rss_mb"]),
    }
    print(f"machine: {machine()}")
    for key, value in figures.items():
        print(f"  {key:40s} {value}")
    print(f"saved {save('extract_orders', figures)}")


if __name__ == "__main__":
    main()
