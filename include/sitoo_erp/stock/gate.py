"""The stock gate: suite ``stock_drift`` through GX on a snapshot, exceptions per cause, history.

1. GX runs the suite over ``sitoo_erp.stock_drift`` (scoped to the snapshot by a token), SQL pushed
   down, through the receipt gate's own runner (:func:`quality.gate.validate_suites`);
2. each failing rule's SQL is re-run for *all* rows; drift, missing SKUs and negatives open one
   exception per cause (``stock_drift:location=…:sku=…``), re-seen causes bump ``occurrences``, causes
   that no longer fail are resolved;
3. a ``gate_run`` row records the run; the result carries the report's top locations and SKUs;
4. the failing causes (location/SKU and, for a drift, its units) are compared with the set the last
   run saw (``ops_alert`` key ``stock_gate:failing_causes``): only a new or changed cause makes the
   drift mail due (``alert_due``; ``alert`` is called inside the transaction, so a mail that fails
   leaves the causes unannounced). An unchanged set is not mailed again: its exceptions stay open and
   are in the daily digest (``sitoo_exceptions_digest``). A day that passes clears the set, so a
   drift that comes back is news again.

It never writes stock anywhere: drift is reported, never "fixed" by an adjustment.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from include.sitoo_erp.quality.rules import RESULT_COLUMNS, RULE_PREFIX
from include.sitoo_erp.quality.suites import stock_drift
from include.sitoo_erp.staging.exceptions import raise_exception, resolve_gone
from include.sitoo_erp.staging.locks import lock_stage
from include.sitoo_erp.stock.snapshot import top_drift

SUBJECT_PREFIX = "stock_drift:"
STOCK_LOCK = "stock"
MAX_EXCEPTIONS = 5000  # per run; beyond that the report says how many more (a systemic break, not news)
ALERT_KEY = "stock_gate:failing_causes"  # sitoo_erp.ops_alert: the causes the last run saw failing
NEWS_LISTED = 20

# What failed, in the words the mail leads with: check -> (one, many). A check is a rule, or for
# ``sku_in_both_systems`` the side the SKU is missing on.
CHECK_WORDS: dict[str, tuple[str, str]] = {
    "missing_in_erp": ("SKU missing in the ERP", "SKUs missing in the ERP"),
    "missing_in_sitoo": ("SKU missing in Sitoo", "SKUs missing in Sitoo"),
    "drift_within_tolerance": (
        "SKU/location pair drifting beyond tolerance",
        "SKU/location pairs drifting beyond tolerance",
    ),
    "no_unexplained_negative": ("unexplained negative on-hand", "unexplained negative on-hands"),
    "movements_in_erp": ("stock movement line not in the ERP", "stock movement lines not in the ERP"),
}


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
    # What failed: one entry per failing check (count, units, value of the failing rows only).
    checks: list[dict[str, Any]] = field(default_factory=list)
    new_causes: int = 0  # failing causes the last run did not see
    changed_causes: int = 0  # ... it saw with other drift units
    unchanged_causes: int = 0  # ... it saw as they are (not news: in the daily digest)
    gone_causes: int = 0  # ... it saw failing that pass now
    news: list[str] = field(default_factory=list)  # detail of the new/changed causes (first 20)
    alert_due: bool = False  # a new or changed cause: the drift mail goes out
    last_seen_at: str | None = None  # when the previous failing set was recorded

    @property
    def success(self) -> bool:
        return all(self.rule_success.values())

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["success"] = self.success
        return json.loads(json.dumps(data, default=str))


def _failing_rows(conn: psycopg.Connection, rule, options: StockGateOptions) -> list[tuple]:
    cur = conn.execute(rule.for_batch(options.tokens(), batch=stock_drift.BATCH_TABLE))
    cols = [d.name for d in cur.description or ()]
    want = (*RESULT_COLUMNS, "status", "units", "value")
    if tuple(cols[: len(want)]) != want:
        raise RuntimeError(f"stock rule {rule.name} returns {cols}, expected {want}")
    return cur.fetchall()


def _check_of(rule_name: str, status: str | None) -> str:
    return status if rule_name == stock_drift.SKU_IN_BOTH.name and status else rule_name


def _checks(rows_by_rule: dict[str, list[tuple]]) -> list[dict[str, Any]]:
    """Per failing check: how many (SKUs for a missing SKU, pairs/lines otherwise), units, value."""
    acc: dict[str, dict[str, Any]] = {}
    for rule_name, rows in rows_by_rule.items():
        for row in rows:
            sku, status, units, value = row[4], row[6], row[7], row[8]
            check = _check_of(rule_name, status)
            a = acc.setdefault(
                check, {"check": check, "rule": rule_name, "rows": 0, "skus": set(), "units": 0, "value": 0}
            )
            a["rows"] += 1
            a["skus"].add(sku)
            a["units"] += abs(Decimal(str(units or 0)))
            a["value"] += abs(Decimal(str(value or 0)))
    out = []
    for check in sorted(acc, key=lambda c: list(CHECK_WORDS).index(c) if c in CHECK_WORDS else 99):
        a = acc[check]
        count = len(a["skus"]) if check in ("missing_in_erp", "missing_in_sitoo") else a["rows"]
        one, many = CHECK_WORDS.get(check, (check, check))
        out.append(
            {
                "check": check,
                "rule": a["rule"],
                "count": count,
                "rows": a["rows"],
                "label": f"{count} {one if count == 1 else many}",
                "units": _units_text(a["units"]),
                "value": f"{a['value']:.2f}",
            }
        )
    return out


def _units_text(units: Any) -> str:
    """``370.000`` -> ``370``, ``2.50`` -> ``2.5`` (never ``3.7E+2``)."""
    return f"{Decimal(str(units)).normalize():f}" if units is not None else "?"


def _claim_news(
    conn: psycopg.Connection,
    result: StockGateResult,
    rows_by_rule: dict[str, list[tuple]],
) -> None:
    """Compare the failing causes with the last run's; record this run's set (see module doc)."""
    current: dict[str, str] = {}
    details: dict[str, str] = {}
    for rule_name, rows in rows_by_rule.items():
        for row in rows:
            key = f"{rule_name} {row[2]}"
            current[key] = _units_text(row[7])
            details.setdefault(key, str(row[5])[:300])
    last = conn.execute(
        "select detail, sent_at from sitoo_erp.ops_alert where alert_key = %s for update", (ALERT_KEY,)
    ).fetchone()
    previous: dict[str, str] = dict((last[0] or {}).get("causes") or {}) if last else {}
    new = [k for k in current if k not in previous]
    changed = [k for k in current if k in previous and previous[k] != current[k]]
    result.new_causes, result.changed_causes = len(new), len(changed)
    result.unchanged_causes = len(current) - len(new) - len(changed)
    result.gone_causes = sum(1 for k in previous if k not in current)
    result.last_seen_at = last[1].isoformat() if last else None
    result.news = [
        ("changed: " if k in previous else "new: ") + details[k] for k in (new + changed)[:NEWS_LISTED]
    ]
    result.alert_due = bool(new or changed)
    if not current:
        conn.execute("delete from sitoo_erp.ops_alert where alert_key = %s", (ALERT_KEY,))
        return
    conn.execute(
        """
        insert into sitoo_erp.ops_alert (alert_key, detail) values (%s, %s::jsonb)
        on conflict (alert_key) do update set detail = excluded.detail, sent_at = now()
        """,
        (ALERT_KEY, json.dumps({"business_date": result.business_date, "causes": current})),
    )


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
    alert: Callable[[StockGateResult], None] | None = None,
) -> StockGateResult:
    """Validate one snapshot (see module doc); returns what the drift report shows.

    ``alert`` (send the drift mail) is called inside the transaction when a new or changed cause
    failed: if it raises, nothing of this run is committed and the causes stay unannounced."""
    from include.sitoo_erp.quality.gate import validate_suites

    started = time.monotonic()
    suite = stock_drift.SUITE
    suite.check()
    rule_counts: dict[str, int] = {}
    samples: dict[str, list[str]] = {}
    opened = 0
    current: list[str] = []
    notes: list[str] = []
    rows_by_rule: dict[str, list[tuple]] = {}
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
            rows_by_rule[rule.name] = rows
            rule_counts[rule.name] = len(rows)
            samples[rule.name] = list(dict.fromkeys(str(r[5])[:300] for r in rows))[:5]
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
        resolved = resolve_gone(
            conn,
            rule_prefix=f"{RULE_PREFIX}{suite.name}.",
            still_failing=current,
            note="stock gate passed: drift gone",
            subject_prefix=SUBJECT_PREFIX,
        )
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
        cols = [d.name for d in locs.description or ()]
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
            checks=_checks(rows_by_rule),
        )
        _claim_news(conn, result, rows_by_rule)
        result.duration_s = round(time.monotonic() - started, 3)
        failed = sum(Counter(rule_counts).values())
        run_row = conn.execute(
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
        ).fetchone()
        assert run_row is not None  # insert … returning: always one row
        result.gate_run_id = run_row[0]
        if result.alert_due and alert is not None:
            alert(result)
    return result
