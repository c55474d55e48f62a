"""The operations page with 100,000 open exceptions: its queries, then full HTTP loads through Airflow.

Seeds (COPY) a staging DB with 100,000 open exceptions (10 kinds, 200 stores, first seen over 60 days)
beside 300,000 closed ones, 250,000 receipts in the state ledger (2 % held or quarantined),
300,000 tax-variance rows this month and 2,000 audit rows; VACUUM ANALYZE. Then:
1. each read-side query of the page, p50/p95 over ``--loads`` runs, with the plan's scan nodes;
2. a real ``airflow api-server`` (this project's plugin, SimpleAuthManager login), and the whole page
   (auth + every query + Airflow metadata + rendering) loaded ``--loads`` times per variant.

Run: ``.venv/bin/python -m bench.ops_page`` (about a minute). Figures go to bench/out/ops_page.json.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.sandbox.airflow_env import configure, migrate_metadata_db  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="bench-ops-page-"))
configure(WORK / "airflow")

from bench.common import machine, save  # noqa: E402
from include.sandbox.postgres import EmbeddedPostgres  # noqa: E402
from include.sandbox.server import free_port  # noqa: E402
from include.sitoo_erp.operations import queries  # noqa: E402
from include.sitoo_erp.staging.db import connect_url  # noqa: E402
from include.sitoo_erp.staging.schema import migrate  # noqa: E402

KINDS = {
    "unknown_sku": "retail_ops",
    "inactive_item": "retail_ops",
    "missing_mapping": "retail_ops",
    "orphaned_return": "retail_ops",
    "tender_mismatch": "finance",
    "tax_beyond_tolerance": "finance",
    "erp_rejected": "finance",
    "stalled": "retail_ops",
    "stock_drift": "retail_ops",
    "malformed_payload": "data_engineering",
}
STORES = [f"ST{n:03d}" for n in range(1, 201)]


def _copy(conn, table: str, columns: str, rows) -> None:
    with conn.cursor() as cur, cur.copy(f"copy sitoo_erp.{table} ({columns}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def seed(url: str, open_n: int, closed_n: int, orders_n: int, seed_: int = 7) -> dict:
    rng = random.Random(seed_)
    now = datetime.now(UTC)
    kinds = list(KINDS)
    t0 = time.perf_counter()
    with connect_url(url) as conn:
        _copy(
            conn,
            "map_store_location",
            "store_externalid, location_id, customer_id, subsidiary_id",
            ((s, str(100 + i), str(900 + i), "1") for i, s in enumerate(STORES)),
        )
        _copy(
            conn,
            "sitoo_order_raw",
            "orderid, payload, payload_sha256",
            ((10_000 + i, "{}", "x") for i in range(orders_n)),
        )

        def state_rows():
            for i in range(orders_n):
                r = rng.random()
                state, reason, code = ("posted", "posted", "posted")
                if r < 0.005:
                    state, reason, code = "held", "not finalised: parked", "not_finalised_parked"
                elif r < 0.01:
                    state, reason, code = "held", "ready to post", "ready"
                elif r < 0.02:
                    state, reason, code = "quarantined", "gate: sku_has_erp_item", "quality_gate"
                od = now - timedelta(minutes=rng.randint(0, 60 * 24 * 30))
                yield (10_000 + i, state, reason, code, rng.choice(STORES), f"R{i}", od)

        _copy(
            conn,
            "order_state",
            "orderid, state, reason, reason_code, store_externalid, receipt_id, orderdate",
            state_rows(),
        )

        def exception_rows(n: int, status: str, start: int):
            for i in range(start, start + n):
                kind = rng.choice(kinds)
                first = now - timedelta(seconds=rng.randint(0, 60 * 86400))
                oid = 10_000 + rng.randrange(orders_n)
                sku = f"SKU-{rng.randrange(50_000):06d}" if kind in ("unknown_sku", "inactive_item") else None
                yield (
                    kind,
                    f"bench:{i}",
                    oid,
                    rng.choice(STORES),
                    sku,
                    "rule",
                    f"order {oid}: synthetic {kind} #{i}",
                    KINDS[kind],
                    status,
                    rng.randint(1, 30),
                    first,
                    first + timedelta(hours=rng.randint(0, 48)),
                )

        cols = (
            "kind, subject_key, orderid, store_externalid, sku, rule, message, owner, status, occurrences, "
            "first_seen_at, last_seen_at"
        )
        _copy(conn, "exception", cols, exception_rows(closed_n, "resolved", 0))
        _copy(conn, "exception", cols, exception_rows(open_n, "open", closed_n))

        def variance_rows():
            for i in range(300_000):
                pos = round(rng.uniform(0.5, 60), 2)
                var = rng.choice((0, 0, 0, 0, 0.01, -0.01))
                yield (
                    10_000 + i,
                    rng.choice((0, 5, 20)),
                    pos,
                    round(pos - var, 2),
                    var,
                    now - timedelta(hours=i % 500),
                )

        _copy(
            conn,
            "receipt_tax_variance",
            "orderid, vat_rate, pos_tax, erp_line_tax, variance, recorded_at",
            variance_rows(),
        )
        buf = io.StringIO()
        for i in range(2_000):
            buf.write(f'map_sku_item\tSKU-{i:06d}\tupdate\t{{}}\t{{"item_id": "{i}"}}\tops{i % 7}\tui\n')
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy sitoo_erp.audit_log (entity, entity_key, action, before, after, actor, source) from stdin"
            ) as copy,
        ):
            copy.write(buf.getvalue())
        # 90 days of run history (the retention the operators keep): the hourly DAG's 2,160 runs of
        # 11 tasks, the daily stock DAG's 90 runs of 5, each try with its counts.
        conn.execute(
            """
            insert into sitoo_erp.task_run (dag_id, run_id, task_id, try_number, run_type, logical_date,
                data_interval_start, data_interval_end, state, started_at, ended_at, counts)
            select d.dag_id, 'scheduled__' || to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS'), 'task_' || k, 1,
                   'scheduled', t, t - d.every, t, 'success', t + make_interval(secs => k * 20),
                   t + make_interval(secs => k * 20 + 15), jsonb_build_object('posted', k * 7, 'ready', k * 8)
              from (values ('sitoo_sales_hourly', interval '1 hour', 11),
                           ('sitoo_stock_daily', interval '1 day', 5)) as d(dag_id, every, tasks)
              cross join lateral generate_series(now() - interval '90 days', now(), d.every) as t
              cross join lateral generate_series(1, d.tasks) as k
            """
        )
        conn.execute("vacuum analyze")
        counts = dict(
            conn.execute("select status, count(*) from sitoo_erp.exception group by status").fetchall()
        )
    return {"seed_seconds": round(time.perf_counter() - t0, 1), "exceptions": counts, "orders": orders_n}


def pct(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "p50_ms": round(statistics.median(s), 1),
        "p95_ms": round(s[min(len(s) - 1, round(0.95 * (len(s) - 1)))], 1),
        "max_ms": round(s[-1], 1),
    }


def time_queries(url: str, loads: int) -> dict:
    out: dict[str, dict] = {}
    with connect_url(url) as conn:
        first = queries.open_exceptions(conn)
        deep_cursor = None
        page = first
        for _ in range(200):  # 200 pages in = the 10,001st oldest open exception
            page = queries.open_exceptions(conn, cursor=page.next_cursor)
        deep_cursor = page.next_cursor
        cases = {
            "exceptions: first page": lambda: queries.open_exceptions(conn),
            "exceptions: kind=unknown_sku": lambda: queries.open_exceptions(
                conn, queries.ExceptionFilters(kind="unknown_sku")
            ),
            "exceptions: store=ST042": lambda: queries.open_exceptions(
                conn, queries.ExceptionFilters(store="ST042")
            ),
            "exceptions: owner=finance, >7d": lambda: queries.open_exceptions(
                conn, queries.ExceptionFilters(owner="finance", min_age="7d")
            ),
            "exceptions: kind+store+24h": lambda: queries.open_exceptions(
                conn, queries.ExceptionFilters(kind="erp_rejected", store="ST042", min_age="24h")
            ),
            "exceptions: page 201 (keyset)": lambda: queries.open_exceptions(conn, cursor=deep_cursor),
            "counts by kind/store/owner": lambda: queries.open_counts(conn),
            "stalled receipts by age bucket": lambda: queries.stalled_receipts(conn),
            "tax variance this month": lambda: queries.month_tax_variance(conn),
            "reconciliation per store": lambda: queries.reconciliation_status(conn),
            "recent mapping edits": lambda: queries.recent_mapping_edits(conn),
            "last run of each DAG (task_run)": lambda: queries.last_dag_runs(conn),
        }
        for name, fn in cases.items():
            fn()  # warm
            samples = []
            for _ in range(loads):
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1000)
            out[name] = pct(samples)
        plans = {}
        for name, sql_text in {
            "first page": "select exception_id from sitoo_erp.exception where status = 'open' "
            "order by first_seen_at, exception_id limit 51",
            "kind filter": "select exception_id from sitoo_erp.exception where status = 'open' and kind = "
            "'unknown_sku' order by first_seen_at, exception_id limit 51",
            "counts by kind": "select kind, count(*), min(first_seen_at) from sitoo_erp.exception "
            "where status = 'open' group by kind",
        }.items():
            plan = conn.execute("explain (format text) " + sql_text).fetchall()
            plans[name] = [line for (line,) in plan if "Scan" in line]
        out["_plans"] = plans
    return out


def time_http(url: str, loads: int) -> dict:
    from tests.ui.apiserver import ApiServer

    migrate_metadata_db()
    db = url.rsplit("/", 1)[-1]
    port = int(url.rsplit(":", 1)[-1].split("/")[0])
    env = {
        "AIRFLOW_CONN_SITOO_ERP_DB": json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "postgres", "schema": db}
        )
    }
    out: dict[str, dict] = {}
    with ApiServer(WORK / "api", env) as server, server.client("ops") as client:
        first = client.get("/sitoo-erp-ops/")
        assert first.status_code == 200, first.text[:500]

        nxt = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
        variants = {
            "page: first (no filter)": "/sitoo-erp-ops/",
            "page: kind=unknown_sku": "/sitoo-erp-ops/?kind=unknown_sku",
            "page: store=ST042 owner=finance >24h": "/sitoo-erp-ops/?store=ST042&owner=finance&min_age=24h",
            "page: next page (keyset)": nxt,
            "api: exceptions JSON, kind filter": "/sitoo-erp-ops/api/exceptions?kind=stalled",
        }
        for name, path in variants.items():
            client.get(path)  # warm
            samples, server_ms = [], []
            for _ in range(loads):
                t0 = time.perf_counter()
                r = client.get(path)
                samples.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code)
                timing = r.headers.get("server-timing", "")
                if "dur=" in timing:
                    server_ms.append(float(timing.split("dur=")[1]))
            out[name] = pct(samples) | (
                {"server_p50_ms": round(statistics.median(server_ms), 1)} if server_ms else {}
            )
            out[name]["bytes"] = len(r.content)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--closed", type=int, default=300_000)
    parser.add_argument("--orders", type=int, default=250_000)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    pg = EmbeddedPostgres(WORK / "pgdata", port=free_port()).start()
    try:
        url = pg.ensure_database("bench_ops")
        migrate(url)
        seeded = seed(url, args.open, args.closed, args.orders)
        print(f"seeded in {seeded['seed_seconds']} s: {seeded['exceptions']}", flush=True)
        q = time_queries(url, args.loads)
        print(f"\nqueries ({args.loads} runs each, ms):")
        for name, f in q.items():
            if not name.startswith("_"):
                print(f"  {name:38s} p50 {f['p50_ms']:7.1f}  p95 {f['p95_ms']:7.1f}")
        for name, lines in q["_plans"].items():
            print(f"  plan {name}: {' / '.join(x.strip() for x in lines)}")
        h = time_http(url, args.loads)
        print(f"\nHTTP through airflow api-server ({args.loads} loads each, ms, client-side wall time):")
        for name, f in h.items():
            print(
                f"  {name:40s} p50 {f['p50_ms']:7.1f}  p95 {f['p95_ms']:7.1f}  "
                f"(server {f.get('server_p50_ms', '?')} ms, {f['bytes']:,} bytes)"
            )
        path = save("ops_page", {"seeded": seeded, "queries": q, "http": h, "loads": args.loads})
        print(f"\n{machine()}\nfigures: {path}")
    finally:
        pg.stop(mode="immediate")


if __name__ == "__main__":
    main()
