"""Benchmark: the daily stock snapshot compare, 100 stores x 10,000 SKUs (1,000,000 warehouse items).

    .venv/bin/python -m bench.stock_drift [--stores 100 --skus 10000]

The measured phase (a fresh process, as the DAG's ``snapshot_and_compare`` task) does what the task
does after its HTTP reads start: Sitoo warehouse items per store warehouse parsed into
``WarehouseItem`` and streamed into PostgreSQL with COPY; the ERP's on-hand per location read through
``NetSuiteHook.iter_on_hand`` (real SuiteQL over HTTP, 1,000-row pages, NetSuite sandbox in its own
process) and streamed with COPY; then the one-statement compare (drift per location and SKU, with
held/quarantined sales and unposted movements accounted for) and the per-location totals.

The Sitoo side is read from the seeded generator in-process (the same records the sandbox serves):
the Sitoo sandbox rebuilds a warehouse's 10,000 items on every page request, so over HTTP it measures
the emulator, not the integration; one warehouse over HTTP is timed separately for reference.

Baseline (same run): both sides read and parsed without PostgreSQL (what the sources alone cost).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.common import ROOT, machine, measure, save, start_process
from include.sandbox.server import free_port

DAY = "2026-11-16"


def _netsuite_env(port: int) -> None:
    from include.sandbox.stack import throwaway_private_key

    os.environ["AIRFLOW_CONN_NETSUITE_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "schema": "http",
            "login": "sandbox-client-id",
            "password": throwaway_private_key(),
            "extra": {"timeout": 120, "netsuite": {"certificate_id": "sandbox-cert-id"}},
        }
    )


def _world(stores: int, skus: int):
    from include.sandbox.catalogue import build_catalogue
    from include.sandbox.generator import generate_dataset

    cat = build_catalogue(seed=42, stores=stores, skus=skus)
    return generate_dataset(seed=42, days=1, receipts_per_store_day=1, catalogue=cat)


def _sitoo_items(ds):
    from include.sitoo_erp.sitoo.models import WarehouseItem, parse

    for store in ds.catalogue.stores:
        for item in ds.warehouse_items(store.warehouseid):
            yield parse(WarehouseItem, item, "warehouse item")


def _warehouses(ds):
    from include.sitoo_erp.stock.movements import StoreWarehouse

    return {
        s.warehouseid: StoreWarehouse(s.warehouseid, s.externalid, s.erp_location_id, "1")
        for s in ds.catalogue.stores
    }


def read_only(stores: int, skus: int, ns_port: int) -> dict:
    """Baseline: both sources read and parsed, nothing written."""
    _netsuite_env(ns_port)
    from include.sitoo_erp.erp.netsuite import NetSuiteHook

    ds = _world(stores, skus)
    t0 = time.perf_counter()
    sitoo = sum(1 for _ in _sitoo_items(ds))
    t1 = time.perf_counter()
    locations = [s.erp_location_id for s in ds.catalogue.stores]
    erp = sum(1 for _ in NetSuiteHook().iter_on_hand(locations))
    t2 = time.perf_counter()
    return {"sitoo_rows": sitoo, "erp_rows": erp, "sitoo_s": t1 - t0, "erp_s": t2 - t1}


def snapshot_compare(stores: int, skus: int, ns_port: int, database_url: str) -> dict:
    """The task's work: stream both sides into PostgreSQL with COPY, then compare."""
    _netsuite_env(ns_port)
    from datetime import date

    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.stock import snapshot as S

    ds = _world(stores, skus)
    day = date.fromisoformat(DAY)
    with connect_url(database_url) as conn:
        t0 = time.perf_counter()
        sid = S.begin_snapshot(conn, day, "bench")
        sitoo = S.load_sitoo_items(conn, sid, _sitoo_items(ds), _warehouses(ds))
        t1 = time.perf_counter()
        locations = [s.erp_location_id for s in ds.catalogue.stores]
        erp = S.load_erp_on_hand(conn, sid, NetSuiteHook().iter_on_hand(locations))
        t2 = time.perf_counter()
        totals = S.compare(conn, sid, day)
        t3 = time.perf_counter()
    return {
        "sitoo_rows": sitoo,
        "erp_rows": erp,
        "sitoo_s": t1 - t0,
        "erp_s": t2 - t1,
        "compare_s": t3 - t2,
        "totals": totals,
    }


def sitoo_one_warehouse_http(port: int) -> dict:
    os.environ["AIRFLOW_CONN_SITOO_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "login": "90316-1",
            "password": "sandbox-not-a-secret",
            "extra": {"timeout": 120},
        }
    )
    from include.sitoo_erp.sitoo.hook import SitooHook

    hook = SitooHook(page_size=1000)
    return {"rows": sum(1 for _ in hook.iter_warehouse_items(101))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--skus", type=int, default=10000)
    args = parser.parse_args()

    from include.sandbox.postgres import EmbeddedPostgres
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.schema import migrate

    pg = EmbeddedPostgres(ROOT / "var" / "bench-pg", port=free_port()).start()
    ns_port, sitoo_port = free_port(), free_port()
    common = ["--stores", str(args.stores), "--skus", str(args.skus)]
    ns = start_process(
        ["-m", "include.sandbox.netsuite", "--port", str(ns_port), "--concurrency", "0", *common], ns_port
    )
    sitoo = start_process(
        ["-m", "include.sandbox.sitoo", "--port", str(sitoo_port), "--days", "1", "--receipts", "1", *common],
        sitoo_port,
    )
    try:
        pg.drop_database("bench_stock")
        url = pg.ensure_database("bench_stock")
        migrate(url)
        with connect_url(url) as conn:
            conn.execute(
                "insert into sitoo_erp.map_store_location (store_externalid, location_id, customer_id, subsidiary_id) "
                "select 'ST' || lpad(n::text, 3, '0'), (1000 + n)::text, (5000 + n)::text, '1' "
                "from generate_series(1, %s) n",
                (args.stores,),
            )
        base = measure(read_only, stores=args.stores, skus=args.skus, ns_port=ns_port)
        run = measure(snapshot_compare, stores=args.stores, skus=args.skus, ns_port=ns_port, database_url=url)
        one = measure(sitoo_one_warehouse_http, port=sitoo_port)
    finally:
        for proc in (ns, sitoo):
            proc.terminate()
            proc.wait()
        pg.stop()
    t = run["totals"]
    figures = {
        "stores": args.stores,
        "skus": args.skus,
        "sitoo_rows": run["sitoo_rows"],
        "erp_rows": run["erp_rows"],
        "baseline_read_sitoo_s": round(base["sitoo_s"], 1),
        "baseline_read_erp_suiteql_s": round(base["erp_s"], 1),
        "baseline_peak_rss_mb": round(base["peak_rss_mb"]),
        "sitoo_stream_copy_s": round(run["sitoo_s"], 1),
        "erp_suiteql_stream_copy_s": round(run["erp_s"], 1),
        "compare_s": round(run["compare_s"], 1),
        "total_s": round(run["seconds"], 1),
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "drift_rows": t["drift_rows"],
        "skus_compared": t["skus_compared"],
        "missing_in_erp": t["missing_in_erp"],
        "sitoo_http_one_warehouse_s": round(one["seconds"], 1),
        "sitoo_http_one_warehouse_rows": one["rows"],
    }
    print(f"machine: {machine()}")
    for key, value in figures.items():
        print(f"  {key:40s} {value}")
    print(f"saved {save('stock_drift', figures)}")


if __name__ == "__main__":
    main()
