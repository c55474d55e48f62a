"""The stock gate: suite ``stock_drift`` through GX on a snapshot, exceptions per cause, history.

1. GX runs the suite over ``sitoo_erp.stock_drift`` (scoped to the snapshot by a token), SQL pushed
   down, through the receipt gate's own runner (:func:`quality.gate.validate_suites`);
2. each failing rule's SQL is re-run for *all* rows; drift, missing SKUs and negatives open one
   exception per cause (``stock_drift:location=…:sku=…``), re-seen causes bump ``occurrences``, causes
   that no longer fail are resolved;
3. a ``gate_run`` row records the run; the result carries the report's top locations and SKUs.

It never writes stock anywhere: drift is reported, never "fixed" by an adjustment.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import psycopg

from include.sitoo_erp.quality.rules import RESULT_COLUMNS, RULE_PREFIX
from include.sitoo_erp.quality.suites import stock_drift
from include.sitoo_erp.staging.exceptions import raise_exception
from include.sitoo_erp.staging.locks import lock_stage
from include.sitoo_erp.stock.snapshot import top_drift

SUBJECT_PREFIX = "stock_drift:"
STOCK_LOCK = "stock"
MAX_EXCEPTIONS = 5000  # per run; beyond that the report says how many more (a systemic break, not news)


@dataclass
class StockGateOptions:
    snapshot_id: int
    business_date: date
    unit_tolerance: str = "0"
    value_tolerance: str = "0.00"

    def tokens(self) -> dict[str, object]:
        return {
            "snapshot_id": int(self.snapshot_id),
            "business_date": self.business_date.isoformat(),
            "unit_tolerance": str(self.unit_tolerance),
            "value_tolerance": str(self.value_tolerance),
        }


@dataclass
class StockGateResult:
    snapshot_id: int
    business_date: str
    suite: str
    rule_success: dict[str, bool]
    rule_counts: dict[str, int]
    rule_descriptions: dict[str, str]
    sample_details: dict[str, list[str]]
    totals: dict[str, Any]
    top_locations: list[dict[str, Any]]
    top_skus: list[dict[str, Any]]
    unit_tolerance: str
    value_tolerance: str
    exceptions_opened: int = 0
    exceptions_resolved: int = 0
    gate_run_id: int | None = None
    run_label: str | None = None
    duration_s: float = 0.0
    stock_written: bool = False  # never: the gate reports, it does not adjust
    notes: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(self.rule_success.values())

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["success"] = self.success
        return json.loads(json.dumps(data, default=str))


def _failing_rows(conn: psycopg.Connection, rule, options: StockGateOptions) -> list[tuple]:
    cur = conn.execute(rule.for_batch(options.tokens(), batch=stock_drift.BATCH_TABLE))
    cols = [d.name for d in cur.description]
    if tuple(cols[: len(RESULT_COLUMNS)]) != RESULT_COLUMNS:
        raise RuntimeError(f"stock rule {rule.name} returns {cols}, expected {RESULT_COLUMNS}")
    return cur.fetchall()


def run_stock_gate(
    database_url: str,
    conn: psycopg.Connection,
    options: StockGateOptions,
    *,
    run_label: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    use_gx: bool = True,
    top_n: int = 10,
) -> StockGateResult:
    """Validate one snapshot (see module doc); returns what the drift report shows."""
    from include.sitoo_erp.quality.gate import validate_suites

    started = time.monotonic()
    suite = stock_drift.SUITE
    suite.check()
    rule_counts: dict[str, int] = {}
    samples: dict[str, list[str]] = {}
    opened = 0
    current: list[str] = []
    notes: list[str] = []
    with conn.transaction():
        # One stock gate at a time, from GX to its writes: a concurrent run never resolves causes
        # this one is raising (staging.locks).
        lock_stage(conn, STOCK_LOCK)
        if use_gx:
            outcome = validate_suites(database_url, (suite,), options, stock_drift.BATCH_TABLE)[suite.name]
        else:
            outcome = {r.name: True for r in suite.rules}
            for r in suite.rules:
                outcome[r.name] = not _failing_rows(conn, r, options)
        for rule in suite.rules:
            if outcome.get(rule.name, True):
                continue
            rows = _failing_rows(conn, rule, options)
            rule_counts[rule.name] = len(rows)
            samples[rule.name] = [str(r[5])[:300] for r in rows[:5]]
            if rule.name in stock_drift.REPORT_ONLY:
                continue
            for n, (_oid, store, cause, fld, sku, detail, *_) in enumerate(rows):
                subject = f"{SUBJECT_PREFIX}{cause}"
                current.append(subject)
                if n >= MAX_EXCEPTIONS:
                    continue
                before = conn.execute(
                    "select 1 from sitoo_erp.exception where kind = %s and subject_key = %s and status = 'open'",
                    (str(rule.kind), subject),
                ).fetchone()
                raise_exception(
                    conn,
                    rule.kind,
                    subject,
                    f"{RULE_PREFIX}{suite.name}.{rule.name}",
                    str(detail),
                    store_externalid=store,
                    sku=sku,
                    field=fld,
                )
                opened += 0 if before else 1
            if len(rows) > MAX_EXCEPTIONS:
                notes.append(
                    f"{rule.name}: {len(rows) - MAX_EXCEPTIONS} more failing rows without exception rows"
                )
        resolved = conn.execute(
            """
            update sitoo_erp.exception set status = 'resolved', resolved_at = now(),
                   resolution_note = 'stock gate passed: drift gone'
             where status = 'open' and starts_with(subject_key, %s) and starts_with(rule, %s)
               and not (subject_key = any(%s::text[]))
            """,
            (SUBJECT_PREFIX, f"{RULE_PREFIX}{suite.name}.", current),
        ).rowcount
        totals = conn.execute(
            """
            select s.business_date, s.sitoo_rows, s.erp_rows, s.drift_rows, s.locations,
                   coalesce(sum(l.skus_compared), 0), coalesce(sum(l.skus_drifting), 0),
                   coalesce(sum(l.missing_in_erp), 0), coalesce(sum(l.missing_in_sitoo), 0),
                   coalesce(sum(l.negative), 0), coalesce(sum(l.drift_units_abs), 0),
                   coalesce(sum(l.drift_value_abs), 0), coalesce(sum(l.drift_value_net), 0)
            from sitoo_erp.stock_snapshot s
            left join sitoo_erp.stock_drift_location l using (snapshot_id)
            where s.snapshot_id = %s
            group by s.snapshot_id
            """,
            (options.snapshot_id,),
        ).fetchone()
        keys = (
            "business_date",
            "sitoo_rows",
            "erp_rows",
            "drift_rows",
            "locations",
            "skus_compared",
            "skus_drifting",
            "missing_in_erp",
            "missing_in_sitoo",
            "negative",
            "drift_units_abs",
            "drift_value_abs",
            "drift_value_net",
        )
        totals_d = dict(zip(keys, totals, strict=True)) if totals else {}
        locs = conn.execute(
            """
            select store_externalid, location_id, skus_compared, skus_drifting, missing_in_erp, negative,
                   drift_units_abs, drift_value_abs, drift_value_net
            from sitoo_erp.stock_drift_location where snapshot_id = %s
              and (skus_drifting + missing_in_erp + missing_in_sitoo + negative) > 0
            order by drift_value_abs desc, skus_drifting desc, location_id limit %s
            """,
            (options.snapshot_id, top_n),
        )
        cols = [d.name for d in locs.description]
        top_locations = [dict(zip(cols, r, strict=True)) for r in locs.fetchall()]
        top_skus = top_drift(conn, options.snapshot_id, top_n)
        result = StockGateResult(
            snapshot_id=options.snapshot_id,
            business_date=options.business_date.isoformat(),
            suite=suite.label,
            rule_success={r.name: bool(outcome.get(r.name, True)) for r in suite.rules},
            rule_counts=rule_counts,
            rule_descriptions={r.name: r.description for r in suite.rules},
            sample_details=samples,
            totals=totals_d,
            top_locations=top_locations,
            top_skus=top_skus,
            unit_tolerance=str(options.unit_tolerance),
            value_tolerance=str(options.value_tolerance),
            exceptions_opened=opened,
            exceptions_resolved=resolved,
            run_label=run_label,
            notes=notes,
        )
        result.duration_s = round(time.monotonic() - started, 3)
        failed = sum(Counter(rule_counts).values())
        result.gate_run_id = conn.execute(
            """
            insert into sitoo_erp.gate_run (suite, dag_id, run_id, batch_size, failed_receipts, success, systemic,
                                            result)
            values (%s, %s, %s, %s, %s, %s, false, %s) returning gate_run_id
            """,
            (
                suite.name,
                dag_id,
                run_id,
                int(totals_d.get("skus_compared") or 0),
                failed,
                result.success,
                json.dumps(result.summary()),
            ),
        ).fetchone()[0]
    return result
