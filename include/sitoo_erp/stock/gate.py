"""The stock gate: suite ``stock_drift`` through GX on a snapshot, exceptions per cause, history.

1. GX runs the suite over ``sitoo_erp.stock_drift`` (scoped to the snapshot by a token), SQL pushed
   down, through the gates' shared runner (``quality/runner.py``);
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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from include.sitoo_erp.quality import runner
from include.sitoo_erp.quality.rules import RULE_PREFIX
from include.sitoo_erp.quality.suites import stock_drift
from include.sitoo_erp.staging.exceptions import record_exception, resolve_gone
from include.sitoo_erp.staging.locks import lock_stage
from include.sitoo_erp.stock.snapshot import location_totals, top_drift

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
    """The stock gate's options (:class:`~include.sitoo_erp.quality.runner.RuleOptions`): the snapshot
    and the day it gates, the drift tolerances (the operator's, from Airflow Variables)."""

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
    gx_errors: list[str] = field(default_factory=list)  # rules GX could not evaluate (counted as failed)

    @property
    def success(self) -> bool:
        return all(self.rule_success.values())

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["success"] = self.success
        return json.loads(json.dumps(data, default=str))


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
    failed: if it raises, nothing of this run is committed and the causes stay unannounced.
    ``use_gx=False`` decides each rule by its own SQL instead of GX (same runner, same answer)."""
    started = time.monotonic()
    suite = stock_drift.SUITE
    with conn.transaction():
        # One stock gate at a time, from GX to its writes: a concurrent run never resolves causes
        # this one is raising (staging.locks).
        lock_stage(conn, STOCK_LOCK)
        suites = (suite,)
        validation = (
            runner.validate(database_url, suites, options, stock_drift.BATCH_TABLE)
            if use_gx
            else runner.validate_sql(conn, suites, options, stock_drift.BATCH_TABLE, stock_drift.COLUMNS)
        )
        rows_by_rule = {
            rule.name: runner.failing_rows(
                conn, suite, rule, options, stock_drift.BATCH_TABLE, stock_drift.COLUMNS
            )
            for rule in suite.rules
            if not validation.passed(suite, rule)
        }
        opened, resolved, notes = _write_exceptions(conn, rows_by_rule)
        totals = _totals(conn, options.snapshot_id)
        result = StockGateResult(
            snapshot_id=options.snapshot_id,
            business_date=options.business_date.isoformat(),
            suite=suite.label,
            rule_success={r.name: validation.passed(suite, r) for r in suite.rules},
            rule_counts={name: len(rows) for name, rows in rows_by_rule.items()},
            rule_descriptions={r.name: r.description for r in suite.rules},
            sample_details={
                name: list(dict.fromkeys(str(r[5])[:300] for r in rows))[:5]
                for name, rows in rows_by_rule.items()
            },
            totals=totals,
            top_locations=_top_locations(conn, options.snapshot_id, top_n),
            top_skus=top_drift(conn, options.snapshot_id, top_n),
            unit_tolerance=str(options.unit_tolerance),
            value_tolerance=str(options.value_tolerance),
            exceptions_opened=opened,
            exceptions_resolved=resolved,
            run_label=run_label,
            notes=notes,
            checks=_checks(rows_by_rule),
            gx_errors=list(validation.errors),
        )
        _claim_news(conn, result, rows_by_rule)
        result.duration_s = round(time.monotonic() - started, 3)
        result.gate_run_id = runner.record_gate_run(
            conn,
            suite=suite.name,
            dag_id=dag_id,
            run_id=run_id,
            batch_size=int(totals.get("skus_compared") or 0),
            failed=sum(result.rule_counts.values()),
            success=result.success,
            result=result.summary(),
        )
        if result.alert_due and alert is not None:
            alert(result)
    return result


def _write_exceptions(
    conn: psycopg.Connection, rows_by_rule: dict[str, list[tuple]]
) -> tuple[int, int, list[str]]:
    """One exception per failing cause (``MAX_EXCEPTIONS`` per rule at most), causes gone resolved;
    returns (opened, resolved, notes)."""
    suite = stock_drift.SUITE
    opened = 0
    current: list[str] = []
    notes: list[str] = []
    for rule_name, rows in rows_by_rule.items():
        if rule_name in stock_drift.REPORT_ONLY:
            continue
        rule = suite.rule(rule_name)
        for n, (_oid, store, cause, fld, sku, detail, *_) in enumerate(rows):
            subject = f"{SUBJECT_PREFIX}{cause}"
            current.append(subject)
            if n >= MAX_EXCEPTIONS:
                continue
            before = conn.execute(
                "select 1 from sitoo_erp.exception where kind = %s and subject_key = %s and status = 'open'",
                (str(rule.kind), subject),
            ).fetchone()
            record_exception(
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
    return opened, resolved, notes


def _totals(conn: psycopg.Connection, snapshot_id: int) -> dict[str, Any]:
    """The report's totals of the snapshot (rows compared, drifting, missing, drift value)."""
    head = conn.execute(
        "select business_date, sitoo_rows, erp_rows, drift_rows, locations from sitoo_erp.stock_snapshot "
        "where snapshot_id = %s",
        (snapshot_id,),
    ).fetchone()
    if head is None:
        return {}
    keys = ("business_date", "sitoo_rows", "erp_rows", "drift_rows", "locations")
    return dict(zip(keys, head, strict=True)) | location_totals(conn, snapshot_id)


def _top_locations(conn: psycopg.Connection, snapshot_id: int, top_n: int) -> list[dict[str, Any]]:
    locs = conn.execute(
        """
        select store_externalid, location_id, skus_compared, skus_drifting, missing_in_erp, negative,
               drift_units_abs, drift_value_abs, drift_value_net
        from sitoo_erp.stock_drift_location where snapshot_id = %s
          and (skus_drifting + missing_in_erp + missing_in_sitoo + negative) > 0
        order by drift_value_abs desc, skus_drifting desc, location_id limit %s
        """,
        (snapshot_id, top_n),
    )
    cols = [d.name for d in locs.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in locs.fetchall()]
