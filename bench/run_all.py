"""Every benchmark in one command, then the scale record at the top of ``bench/RESULTS.md``.

    .venv/bin/python -m bench.run_all            # all benches (long: ~1 h on 2 cores), then the record
    .venv/bin/python -m bench.run_all --quick    # a small peak hour only; the record from saved figures
    .venv/bin/python -m bench.run_all --only peak_hour,chaos_month
    .venv/bin/python -m bench.run_all --record-only

Each bench runs as ``python -m bench.<name>`` in its own process (each starts its own sandboxes and
PostgreSQL and saves ``bench/out/<name>.json``). A bench that fails is reported with a clear line and
the others still run; the record then shows that bench's last saved figures, marked as such. The
record (each figure, its target, the baseline measured beside it, the machine) is written between
the ``scale-record`` markers of ``bench/RESULTS.md``; nothing else in that file is touched.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime

from bench.common import OUT, ROOT, machine

RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- scale-record:start -->", "<!-- scale-record:end -->"

# (name, arguments of the full run, arguments of --quick or None = skipped in quick mode)
BENCHES: list[tuple[str, list[str], list[str] | None]] = [
    ("extract_orders", [], None),
    ("hourly_gate", [], None),
    ("posting_throughput", [], None),
    ("stock_drift", [], None),
    ("reconciliation", [], None),
    ("ops_page", [], None),
    (
        "peak_hour",
        [],
        ["--stores", "30", "--receipts", "20", "--baseline-receipts", "5", "--save-as", "peak_hour_quick"],
    ),
    (
        "summary_mode",
        [],
        ["--stores", "30", "--receipts", "30", "--receipt-stores", "3", "--save-as", "summary_mode_quick"],
    ),
    ("chaos_month", [], None),
]


def run_bench(name: str, args: list[str], timeout: float) -> dict:
    began = time.monotonic()
    log = OUT / f"{name}.log"
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"== bench.{name} {' '.join(args)}", flush=True)
    try:
        with log.open("w") as fh:
            rc = subprocess.run(
                [sys.executable, "-m", f"bench.{name}", *args],
                cwd=ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            ).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    seconds = round(time.monotonic() - began, 1)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    if rc == 0:
        print(f"   ok in {seconds} s ({tail[0] if tail else ''})", flush=True)
    else:
        print(
            f"   FAILED bench.{name} (exit {rc}) after {seconds} s; last line: {tail}; log: {log}", flush=True
        )
    return {"name": name, "rc": rc, "seconds": seconds, "log": str(log.relative_to(ROOT))}


def _load(name: str) -> dict | None:
    path = OUT / f"{name}.json"  # a full run's figures (quick runs save as <name>_quick.json)
    if not path.exists():
        candidates = sorted(
            (p for p in OUT.glob(f"{name}_*.json") if not p.stem.endswith("_quick")),
            key=lambda p: p.stat().st_mtime,
        )
        if not candidates:
            return None
        path = candidates[-1]
    data = json.loads(path.read_text())
    data["_saved"] = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return data


def _g(data: dict | None, *keys, default="—"):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _n(value, fmt: str = "{:,}") -> str:
    if isinstance(value, int | float):
        return fmt.format(value)
    return str(value)


def record_rows() -> list[tuple[str, str, str, str, str]]:
    """(figure, value, target, baseline, saved) for each bench's saved figures."""
    rows = []
    d = _load("extract_orders")
    rows.append(
        (
            f"extract {_n(_g(d, 'orders'))} orders through `SitooHook` into staging",
            f"**{_n(_g(d, 'extract_and_stage_orders_per_s'))} orders/s**, {_g(d, 'extract_and_stage_peak_rss_mb')} MB",
            "100,000 orders, memory flat",
            f"fetch only: {_n(_g(d, 'baseline_fetch_only_orders_per_s'))} orders/s",
            _g(d, "_saved"),
        )
    )
    d = _load("hourly_gate")
    rows.append(
        (
            f"stage + classify + gate, {_n(_g(d, 'hour', 'orders'))}-receipt hour",
            f"**{_g(d, 'hour', 'total_s')} s** ({_g(d, 'hour', 'total_with_gx_import_s')} s with GX import)",
            "< 30 s",
            f"a tenth: {_g(d, 'baseline_tenth', 'total_s')} s",
            _g(d, "_saved"),
        )
    )
    d = _load("posting_throughput")
    rows.append(
        (
            f"posting, {_g(d, 'latency_ms')} ms latency, {_g(d, 'concurrency_limit')} account slots",
            f"**{_g(d, 'parallel', 'docs_per_s')} docs/s** = {_g(d, 'parallel', 'ratio_to_ceiling')} of ceiling",
            "≥ 0.85 of slots ÷ latency",
            f"sequential: {_g(d, 'baseline_sequential', 'docs_per_s')} docs/s",
            _g(d, "_saved"),
        )
    )
    d = _load("stock_drift")
    rows.append(
        (
            f"stock snapshot compare, {_g(d, 'stores')} stores x {_n(_g(d, 'skus'))} SKUs",
            f"**{_g(d, 'total_s')} s**, {_g(d, 'peak_rss_mb')} MB",
            "< 60 s, < 1 GB",
            f"read + parse only: {_g(d, 'baseline_read_sitoo_s')} + {_g(d, 'baseline_read_erp_suiteql_s')} s",
            _g(d, "_saved"),
        )
    )
    d = _load("reconciliation")
    month = _g(d, "month", default={})
    rows.append(
        (
            f"reconciliation compare + classify, {_n(_g(month, 'receipts'))} receipts",
            f"**{_g(month, 'compare_s')} s** ({_g(month, 'erp_queries')} SuiteQL queries)",
            "a month of 1,000,000 receipts",
            f"1/10: {_g(d, 'baseline_1_10', 'compare_s')} s",
            _g(d, "_saved"),
        )
    )
    d = _load("ops_page")
    first = _g(d, "http", "page: first (no filter)", default={})
    rows.append(
        (
            "operations page, 100,000 open exceptions",
            f"**p50 {_g(first, 'p50_ms')} ms**, p95 {_g(first, 'p95_ms')} ms",
            "< 1 s",
            f"queue query alone: p50 {_g(d, 'queries', 'exceptions: first page', 'p50_ms')} ms",
            _g(d, "_saved"),
        )
    )
    d = _load("peak_hour")
    peak, base = _g(d, "peak", default={}), _g(d, "baseline_tenth", default={})
    rows.append(
        (
            f"**peak hour**: {_n(_g(peak, 'receipts'))} receipts, {_g(peak, 'stores')} stores, end to end "
            f"(latency {_g(d, 'latency_ms')} ms, {_g(d, 'workers_and_account_slots')} workers)",
            f"**{_g(peak, 'total_s')} s**; posting {_g(peak, 'docs_per_s')} docs/s "
            f"(ceiling {_g(peak, 'ceiling_docs_per_s')})",
            "within the hour (< 3,600 s)",
            f"a tenth ({_n(_g(base, 'receipts'))}): {_g(base, 'total_s')} s, {_g(base, 'docs_per_s')} docs/s",
            _g(d, "_saved"),
        )
    )
    d = _load("summary_mode")
    sm, rm = _g(d, "summary_mode", default={}), _g(d, "receipt_mode_baseline", default={})
    rows.append(
        (
            f"**summary mode**: ERP calls per receipt, {_n(_g(sm, 'receipts_posted'))} receipts, "
            f"{_g(d, 'stores')} stores x {_g(d, 'days')} day(s) (calls the NetSuite sandbox served)",
            f"**{_g(sm, 'erp_calls_per_posted_receipt')}** ({_g(d, 'summary_calls_per_store_day')} a store-day); "
            f"summary task {_g(sm, 'posting_wall_s')} s, reconcile {_g(sm, 'reconcile_s')} s",
            "≤ 0.01 calls per receipt",
            f"receipt mode: {_g(rm, 'erp_calls_per_posted_receipt')} calls per receipt",
            _g(d, "_saved"),
        )
    )
    d = _load("chaos_month")
    plan, f = _g(d, "plan", default={}), _g(d, "figures", default={})
    checks = _g(d, "checks", default={})
    ok = checks and all(checks.values())
    rows.append(
        (
            f"**chaos month**: {_g(plan, 'days')} days x {_g(plan, 'stores')} stores, faults on",
            f"**{'all proofs hold' if ok else 'NOT all proofs hold' if checks else '—'}**: "
            f"{_n(_g(f, 'ledger', 'seen'))} receipts, {_g(f, 'duplicates')} duplicates, "
            f"{_g(f, 'reconciliation', 'unexplained')} unexplained; {_g(f, 'timings_s', 'wall')} s",
            "0 duplicates, invariant 1, 0 unexplained",
            "—",
            _g(d, "_saved"),
        )
    )
    return rows


def phase_rows() -> list[str]:
    d = _load("peak_hour")
    if not d:
        return []
    peak, base = d["peak"], d["baseline_tenth"]
    lines = [
        "",
        "Peak hour by phase (seconds; each phase a fresh process):",
        "",
        "| phase | baseline: a tenth | **peak hour** |",
        "|---|---|---|",
    ]
    for phase in peak["phase_s"]:
        lines.append(f"| {phase} | {base['phase_s'].get(phase)} | **{peak['phase_s'][phase]}** |")
    lines += [
        f"| total | {base['total_s']} | **{peak['total_s']}** |",
        f"| receipts / ready / posted | {base['receipts']:,} / {base['ready']:,} / {base['posted']:,} | "
        f"{peak['receipts']:,} / {peak['ready']:,} / {peak['posted']:,} |",
        f"| ERP calls per posted receipt (API + token) | {base['erp_calls_per_posted_receipt']} | "
        f"{peak['erp_calls_per_posted_receipt']} |",
        f"| 429s / max in flight | {base['erp']['throttled_429']} / {base['erp']['max_in_flight']} | "
        f"{peak['erp']['throttled_429']} / {peak['erp']['max_in_flight']} |",
    ]
    return lines


def chaos_rows() -> list[str]:
    d = _load("chaos_month")
    if not d:
        return []
    f, plan = d["figures"], d["plan"]
    return [
        "",
        f"Chaos month ({plan['days']} days x {plan['stores']} stores x {plan['receipts_per_store_day']} receipts a "
        f"store-day; `python -m bench.chaos_month`): Sitoo {plan['sitoo_rate_rps']} rps (burst "
        f"{plan['sitoo_burst']}) with a 0.5 rps storm every {plan['storm_every_hours']} h and "
        f"{plan['sitoo_error_rate']:.0%} 5xx; NetSuite {plan['erp_concurrency']} slots for 4 workers, latency "
        f"{plan['erp_latency_ms']:.0f} + U(0, {plan['erp_jitter_ms']:.0f}) ms, "
        f"{plan['erp_timeout_after_commit']:.0%} timeout after commit; PostgreSQL restarted every "
        f"{plan['restart_every_hours']} h; one posting task killed half-way and cleared.",
        "",
        "| chaos figure | value |",
        "|---|---|",
        *(
            f"| {k} | `{json.dumps(f.get(k), default=str)}` |"
            for k in (
                "ledger",
                "finalised_fate",
                "erp_documents",
                "duplicates",
                "posting_log",
                "hook_attempts_beyond_first",
                "airflow_task_retries",
                "faults_sitoo",
                "faults_netsuite",
                "exceptions_by_kind",
                "reconciliation",
                "hourly_runs",
                "pg_restarts",
                "sitoo_429_storms",
                "kill_and_clear",
                "timings_s",
            )
        ),
        "| proofs | " + ", ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in d["checks"].items()) + " |",
    ]


def write_record(runs: list[dict] | None = None) -> str:
    lines = [
        START,
        "## Scale record",
        "",
        f"Written by `python -m bench.run_all` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC). Machine: {machine()}.",
        "Each figure is the latest saved by its bench (`bench/out/*.json`); the baseline was measured in",
        "the same run as the figure. Details and method of each bench: the sections below.",
        "",
        "| figure | value | target | baseline (same run) | measured |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in record_rows()]
    lines += phase_rows()
    lines += chaos_rows()
    if runs:
        failed = [r for r in runs if r["rc"] != 0]
        lines += ["", "This run: " + ", ".join(f"{r['name']} {r['seconds']} s" for r in runs) + "."]
        if failed:
            lines.append(
                "**Failed in this run** (figures above are older): "
                + ", ".join(f"{r['name']} (exit {r['rc']}, log `{r['log']}`)" for r in failed)
            )
    lines.append(END)
    block = "\n".join(lines)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{block}\n{body}"
    RESULTS.write_text(text)
    return block


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--quick", action="store_true", help="a small peak hour only; record from saved figures"
    )
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--record-only", action="store_true", help="rewrite the record from saved figures")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="per bench, seconds")
    args = parser.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    runs = []
    if not args.record_only:
        for name, full, quick in BENCHES:
            if only and name not in only:
                continue
            if args.quick and quick is None:
                continue
            runs.append(run_bench(name, quick if args.quick else full, args.timeout))
    block = write_record(runs)
    print(block)
    print(f"written to {RESULTS}")
    return 1 if any(r["rc"] != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
