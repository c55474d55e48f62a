"""Benchmark: posting throughput against a NetSuite account with 150 ms latency and 10 concurrent slots.

    .venv/bin/python -m bench.posting_throughput [--stores 10 --receipts 160 --workers 10]

The NetSuite sandbox runs as its own process through its CLI (``--latency-ms 150 --concurrency 10``:
every API request holds one of 10 account slots for 150 ms, an 11th concurrent one gets 429), so
the ceiling is 10 / 0.150 s = 66.7 documents/s. The receipts are generated, staged, classified and
gated (mappings and the ERP item cache seeded; what fails the gate is quarantined, as in the DAG)
into one prepared database; each measured run posts from its own copy of it (``create database
... template``) through the real ``post_ready`` + ``NetSuiteHook`` in a fresh process, after the
sandbox is reset (no documents, no tokens, counters zero).

Baseline (same run): sequential posting (``max_workers=1``, ceiling 1 / 0.150 s = 6.7/s) of a
smaller prepared batch (the same catalogue, 20 receipts a store), so it stays under a minute.

Per-document latency is timed around ``NetSuiteHook.post_document`` (includes the hook's retries);
the main thread's own work (building documents, recording each success in PostgreSQL, reading
ready receipts) is timed by wrapping those functions of ``include.sitoo_erp.posting.post``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import urllib.request

from bench.common import ROOT, machine, measure, save, start_process

WORK = ROOT / "var" / "bench-posting"
LATENCY_MS = 150.0
CONCURRENCY = 10
SEED = 42
SKUS = 400


def _dataset(stores: int, receipts: int):
    from include.sandbox.generator import generate_dataset

    return generate_dataset(seed=SEED, stores=stores, days=1, receipts_per_store_day=receipts, skus=SKUS)


def prepare(database_url: str, stores: int, receipts: int) -> dict:
    """Stage, seed mappings + erp_item, classify and gate: the state just before the post task."""
    from include.sandbox.catalogue import mapping_seed_rows
    from include.sitoo_erp.posting.classify import classify
    from include.sitoo_erp.quality.gate import run_gate
    from include.sitoo_erp.staging.db import connect_url
    from include.sitoo_erp.staging.mappings import load_mapping_csvs, write_mapping_csvs
    from include.sitoo_erp.staging.orders import stage_orders

    ds = _dataset(stores, receipts)
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
        classify(conn)
        gate = run_gate(database_url, conn, run_label="bench-posting")
        ready = conn.execute("select count(*) from sitoo_erp.ready_receipt").fetchone()[0]
    return {"orders": staged.fetched, "quarantined_by_gate": gate.quarantined, "ready": ready}


def _sandbox(port: int, path: str, body: bytes | None = None) -> dict | None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET"
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        data = resp.read()
    return json.loads(data) if data else None


def _conn_env(port: int, key: str) -> None:
    from include.sandbox.stack import NETSUITE_CERTIFICATE_ID, NETSUITE_CLIENT_ID

    os.environ["AIRFLOW_CONN_NETSUITE_DEFAULT"] = json.dumps(
        {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "schema": "http",
            "login": NETSUITE_CLIENT_ID,
            "password": key,
            "extra": {
                "timeout": 10,
                "netsuite": {"certificate_id": NETSUITE_CERTIFICATE_ID, "algorithm": "PS256"},
            },
        }
    )


def _timed(fn, bucket: list[float]):
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - began)

    return wrapper


def post(database_url: str, port: int, key: str, workers: int) -> dict:
    _conn_env(port, key)
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.posting import post as P
    from include.sitoo_erp.staging.db import connect_url

    latencies: list[float] = []
    lat_lock = threading.Lock()
    main: dict[str, list[float]] = {"build": [], "record": [], "read": []}
    P._build = _timed(P._build, main["build"])
    P._record_posted = _timed(P._record_posted, main["record"])
    real_iter = P._iter_ready

    def timed_iter(*args, **kwargs):
        it = real_iter(*args, **kwargs)
        while True:
            began = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                main["read"].append(time.perf_counter() - began)
                return
            main["read"].append(time.perf_counter() - began)
            yield batch

    P._iter_ready = timed_iter

    class TimedHook(NetSuiteHook):
        def post_document(self, document, created_from_erp_id=None):
            began = time.perf_counter()
            try:
                return super().post_document(document, created_from_erp_id)
            finally:
                with lat_lock:
                    latencies.append(time.perf_counter() - began)

    hook = TimedHook()
    hook.access_token()  # the first token is fetched before the clock starts (once per task run)
    with connect_url(database_url) as conn:
        began = time.perf_counter()
        summary = P.post_ready(conn, hook, P.PostingOptions(max_workers=workers))
        elapsed = time.perf_counter() - began
        posted_rows = conn.execute("select count(*) from sitoo_erp.posting_log").fetchone()[0]
    hook.close()
    lat = sorted(latencies)
    return {
        "post_s": elapsed,
        "posted": summary.posted,
        "posted_rows": posted_rows,
        "ready": summary.ready,
        "awaiting_original": summary.awaiting_original,
        "quarantined": summary.quarantined,
        "attempts": summary.attempts,
        "token_requests": hook.token_requests,
        "p50_ms": 1000 * statistics.median(lat) if lat else None,
        "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))] if lat else None,
        "max_ms": 1000 * lat[-1] if lat else None,
        "main_thread_s": {k: round(sum(v), 2) for k, v in main.items()},
    }


def _run(pg, template: str, name: str, port: int, key: str, workers: int) -> dict:
    import psycopg

    pg.drop_database(name)
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{template}"')
    _sandbox(port, "/_sandbox/reset", b"{}")
    result = measure(post, database_url=pg.url(name), port=port, key=key, workers=workers)
    counters = _sandbox(port, "/_sandbox/counters")
    pg.drop_database(name)
    ceiling = min(workers, CONCURRENCY) / (LATENCY_MS / 1000)
    rate = result["posted"] / result["post_s"]
    return {
        "workers": workers,
        "posted": result["posted"],
        "seconds": round(result["post_s"], 2),
        "docs_per_s": round(rate, 1),
        "ceiling_docs_per_s": round(ceiling, 1),
        "ratio_to_ceiling": round(rate / ceiling, 3),
        "p50_ms": round(result["p50_ms"], 1),
        "p95_ms": round(result["p95_ms"], 1),
        "max_ms": round(result["max_ms"], 1),
        "throttled_429": counters["throttled_429"],
        "api_requests": counters["api_requests"],
        "max_in_flight": counters["max_in_flight"],
        "token_requests": counters["token_requests"],
        "awaiting_original": result["awaiting_original"],
        "quarantined_at_post": result["quarantined"],
        "main_thread_s": result["main_thread_s"],
        "peak_rss_mb": round(result["peak_rss_mb"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--receipts", type=int, default=160, help="receipts per store (parallel run)")
    parser.add_argument("--baseline-receipts", type=int, default=20, help="per store (sequential run)")
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()

    import psycopg

    from include.sandbox.postgres import EmbeddedPostgres
    from include.sandbox.server import free_port
    from include.sandbox.stack import throwaway_private_key
    from include.sitoo_erp.staging.schema import migrate

    WORK.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(WORK / "pgdata", port=free_port()).start()
    port = free_port()
    sandbox = start_process(
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
            str(CONCURRENCY),
            "--latency-ms",
            str(LATENCY_MS),
        ],
        port,
    )
    key = throwaway_private_key()
    try:
        prepared = {}
        for name, receipts in (
            ("bench_post_base", args.baseline_receipts),
            ("bench_post_main", args.receipts),
        ):
            pg.drop_database(name)
            url = pg.ensure_database(name)
            migrate(url)
            prepared[name] = measure(prepare, database_url=url, stores=args.stores, receipts=receipts)
            with psycopg.connect(pg.url(), autocommit=True) as conn:  # a template must have no sessions
                conn.execute(
                    f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'"
                )
        base = _run(pg, "bench_post_base", "bench_post_run", port, key, workers=1)
        par = _run(pg, "bench_post_main", "bench_post_run", port, key, workers=args.workers)
    finally:
        sandbox.terminate()
        sandbox.wait()
        pg.stop()
    figures = {
        "latency_ms": LATENCY_MS,
        "concurrency_limit": CONCURRENCY,
        "prepared": {
            k: {x: v[x] for x in ("orders", "quarantined_by_gate", "ready")} for k, v in prepared.items()
        },
        "parallel": par,
        "baseline_sequential": base,
        "target_ratio": 0.85,
        "target_met": par["ratio_to_ceiling"] >= 0.85,
    }
    print(f"machine: {machine()}")
    print(f"  prepared: {figures['prepared']}")
    for label, fig in ((f"parallel, {args.workers} workers", par), ("baseline: sequential", base)):
        print(f" {label}:")
        for k, v in fig.items():
            print(f"  {k:22s} {v}")
    print(f" target: ratio >= 0.85 -> {'met' if figures['target_met'] else 'NOT met'}")
    print(f"saved {save('posting_throughput', figures)}")


if __name__ == "__main__":
    main()
