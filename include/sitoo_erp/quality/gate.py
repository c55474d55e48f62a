"""The quality gate (invariant 6): GX suites over the ready batch, quarantine, exceptions, history.

``run_gate`` runs before any posting task:

1. the shared runner (``quality/runner.py``) runs the suites through GX over the
   ``sitoo_erp.ready_receipt`` view (the batch), SQL pushed down; a rule GX raised on counts as
   failed and is listed in ``gx_errors``;
2. every failed expectation's own SQL (the same text) is re-run to get *all* failing rows (GX only
   counts and samples);
3. failing receipts are quarantined (``order_state`` -> ``quarantined``, reason names
   suite.rule and the detail) and one exception per cause is raised (de-duplicated per cause);
4. open gate exceptions of batch receipts whose cause is gone are resolved;
5. a ``gate_run`` row records the run, and the receipts that passed are marked validated by it
   (``order_state.gate_run_id``: posting posts only those);
6. if more than ``systemic_share`` of a batch of at least ``min_systemic_batch`` receipts fails, the
   failure is *systemic*: nothing new is quarantined, the caller fails the run and posts nothing.
   Receipts already under an open exception of any kind (the known backlog) count in neither the
   batch nor the failures of that share;
7. the causes this run is first to see are claimed for the alert e-mail (``exception.alerted_at``,
   ``systemic_alert``) and ``alert`` is called, so each new cause is e-mailed once.

All steps are one transaction under the ``receipts`` stage lock (``staging.locks``): no classify,
staging or mapping edit of another run changes the batch between reading it, GX and the writes, so
the gate resolves only what it has itself re-validated. Re-running is safe: quarantined receipts
leave the batch, a cause seen again bumps its exception's ``occurrences`` (after classification
puts the receipt back).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import psycopg

from include.sitoo_erp.posting import states as S
from include.sitoo_erp.quality import runner
from include.sitoo_erp.quality.rules import BATCH_TABLE, RULE_PREFIX, Suite
from include.sitoo_erp.quality.suites import resolve_suites
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.exceptions import (
    DEFAULT_OWNER,
    ExceptionKind,
    claim_unalerted,
    record_exception,
    resolve_gone,
)
from include.sitoo_erp.staging.locks import lock_stage

log = logging.getLogger(__name__)

SAMPLE_IDS = 10
SAMPLE_KEYS = 10
NEW_CAUSES_LISTED = 100
SAMPLE_DETAILS = 3
DETAIL_CHARS = 300
REASON_PREFIX = "quality gate"


@dataclass
class GateOptions:
    """The receipt gate's options (:class:`~include.sitoo_erp.quality.runner.RuleOptions`)."""

    min_systemic_batch: int = 20  # below this a high failure share is not called systemic

    def tokens(self) -> dict[str, object]:
        """No receipt rule takes an option any more: the VAT tolerance lives in ``posting/vat.py``."""
        return {}


@dataclass(frozen=True)
class Failure:
    suite: str
    rule: str
    kind: str
    orderid: int | None
    store_externalid: str | None
    cause_key: str
    field: str | None
    sku: str | None
    detail: str

    @property
    def rule_id(self) -> str:
        return f"{self.suite}.{self.rule}"

    @property
    def subject_key(self) -> str:
        return f"order:{self.orderid}:{self.kind}:{self.cause_key}"


@dataclass
class GateResult:
    batch_size: int
    failed_receipts: int
    systemic: bool
    suite_success: dict[str, bool]
    suite_versions: dict[str, str]
    rule_counts: dict[str, int]  # "suite.rule" -> failing receipts (rules that failed only)
    rule_kinds: dict[str, str]
    rule_descriptions: dict[str, str]
    stores_affected: dict[str, int]  # store -> failing receipts
    samples: dict[str, list[int | None]]  # "suite.rule" -> up to 10 orderids (None: a failure without one)
    sample_details: dict[str, list[str]]  # "suite.rule" -> one line per cause (first 3), with its receipts
    quarantined: int = 0
    resolved: int = 0
    exceptions_raised: int = 0
    oldest_open_exception_hours: float | None = None
    gate_run_id: int | None = None
    run_label: str | None = None
    duration_s: float = 0.0
    gx_duration_s: float = 0.0
    gx_errors: list[str] = field(default_factory=list)  # rules GX could not evaluate (re-run by the gate)
    owners: dict[str, str] = field(default_factory=dict)  # kind -> default owner of the failing kinds
    rule_keys: dict[str, list[str]] = field(
        default_factory=dict
    )  # "suite.rule" -> failing keys (what to fix)
    fresh_batch: int = 0  # batch receipts without an open exception (the systemic share's base)
    fresh_failed: int = 0  # ... of which failed now
    new_causes: int = 0  # causes this run is the first to announce (the alert e-mail's news)
    new_counts: dict[str, int] = field(default_factory=dict)  # "suite.rule" -> new causes
    new_cause_keys: list[str] = field(default_factory=list)  # "kind subject_key" of new causes (first 100)
    alert_due: bool = False  # new causes, or a systemic stop with a cause not e-mailed yet
    # "suite.rule" -> the sample receipts as store staff know them: "receipt 0042-17 (order 10665)"
    sample_receipts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return all(self.suite_success.values())

    @property
    def failed_share(self) -> float:
        return self.failed_receipts / self.batch_size if self.batch_size else 0.0

    @property
    def kind_counts(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for rule_id, n in self.rule_counts.items():
            out[self.rule_kinds[rule_id]] += n
        return dict(out)

    def summary(self) -> dict:
        """Small and JSON-able (XCom, gate_run.result)."""
        data = asdict(self)
        data["success"] = self.success
        data["failed_share"] = round(self.failed_share, 4)
        data["kind_counts"] = self.kind_counts
        return json.loads(json.dumps(data, default=str))


def run_gate(
    database_url: str,
    conn: psycopg.Connection,
    suites: Iterable[Suite | str] | None = None,
    systemic_share: float = 0.2,
    run_label: str | None = None,
    *,
    options: GateOptions | None = None,
    dag_id: str | None = None,
    alert: Callable[[GateResult], None] | None = None,
    prepare: Callable[[psycopg.Connection], object] | None = None,
) -> GateResult:
    """Validate the ready batch, quarantine what fails, resolve what passes; see the module docstring.

    ``alert`` (e.g. send the e-mail) is called inside the transaction when ``alert_due``: if it
    raises, nothing of this gate run is committed and the causes stay unannounced. ``prepare`` runs
    under the lock before the batch is read (the operator refreshes the ERP item cache there: another
    run's classify may have made receipts ready whose SKUs its own refresh has not looked up yet).
    """
    started = time.monotonic()
    options = options or GateOptions()
    chosen = resolve_suites(suites)
    with conn.transaction():
        lock_stage(conn)
        if prepare is not None:
            prepare(conn)
        batch_ids = _read_batch(conn)
        validation = (
            runner.validate(database_url, chosen, options)
            if batch_ids
            else runner.Validation.nothing_to_check(chosen)
        )
        failures = _collect_failures(conn, chosen, validation, options)
        result, by_receipt = _tally(conn, chosen, validation, batch_ids, failures, run_label)
        _decide_systemic(conn, result, batch_ids, by_receipt, options, systemic_share)
        rule_ids: dict[str, str] = {}  # "gx:..." exception rule -> "suite.rule"
        if not result.systemic:
            rule_ids = _write_exceptions(conn, result, batch_ids, failures, by_receipt)
        if failures:
            result.oldest_open_exception_hours = _oldest_open_exception_hours(conn)
        result.gate_run_id = runner.record_gate_run(
            conn,
            suite=",".join(s.label for s in chosen),
            dag_id=dag_id,
            run_id=run_label,
            batch_size=result.batch_size,
            failed=result.failed_receipts,
            success=result.success,
            systemic=result.systemic,
        )
        if not result.systemic:
            ledger.mark_validated(conn, result.gate_run_id, sorted(set(batch_ids) - set(by_receipt)))
        _claim_news(conn, result, failures, rule_ids)
        result.duration_s = round(time.monotonic() - started, 3)
        runner.record_gate_result(conn, result.gate_run_id, result.summary())
        if result.alert_due and alert is not None:
            alert(result)
    log.info(
        "gate: %d receipts, %d failed, %d quarantined, %d exceptions resolved, systemic=%s (%.2fs, GX %.2fs)",
        result.batch_size,
        result.failed_receipts,
        result.quarantined,
        result.resolved,
        result.systemic,
        result.duration_s,
        result.gx_duration_s,
    )
    return result


def _read_batch(conn: psycopg.Connection) -> list[int]:
    """The ready receipts this run validates (read under the stage lock: nothing changes them)."""
    return [r[0] for r in conn.execute(f"select orderid from {BATCH_TABLE}").fetchall()]


def _collect_failures(
    conn: psycopg.Connection, suites: tuple[Suite, ...], validation: runner.Validation, options: GateOptions
) -> list[Failure]:
    """All failing rows of every failed rule (re-run by the gate's own SQL), one per cause."""
    unique: dict[tuple[str, str], Failure] = {}
    for suite in suites:
        for rule in suite.rules:
            if validation.passed(suite, rule):
                continue
            for oid, store, key, fld, sku, detail, *_ in runner.failing_rows(conn, suite, rule, options):
                f = Failure(
                    suite.name, rule.name, str(rule.kind), oid, store, str(key), fld, sku, str(detail)[:1000]
                )
                # One cause once (e.g. two payments with the same unmapped tender on one receipt).
                unique.setdefault((f.kind, f.subject_key), f)
    return list(unique.values())


def _tally(
    conn: psycopg.Connection,
    suites: tuple[Suite, ...],
    validation: runner.Validation,
    batch_ids: list[int],
    failures: list[Failure],
    run_label: str | None,
) -> tuple[GateResult, dict[int, list[Failure]]]:
    """The result's counts, samples and e-mail lines; and the failures of each batch receipt."""
    batch = set(batch_ids)
    by_receipt: dict[int, list[Failure]] = defaultdict(list)
    for f in failures:
        if f.orderid is not None and f.orderid in batch:
            by_receipt[f.orderid].append(f)
    receipts_by_rule: dict[str, list[int | None]] = defaultdict(list)
    keys_by_rule: dict[str, dict[str, None]] = defaultdict(dict)
    stores: Counter[str] = Counter()
    for oid in sorted(by_receipt):
        fs = by_receipt[oid]
        stores[fs[0].store_externalid or "(none)"] += 1
        for rule_id in dict.fromkeys(f.rule_id for f in fs):
            receipts_by_rule[rule_id].append(oid)
    for f in failures:
        if len(keys_by_rule[f.rule_id]) < SAMPLE_KEYS:
            keys_by_rule[f.rule_id][f.cause_key] = None
        if f.orderid not in batch:  # orphans: not a batch receipt, still counted per rule
            receipts_by_rule[f.rule_id].append(f.orderid)
    labels = receipt_labels(conn, [f.orderid for f in failures if f.orderid is not None])
    rules = {f"{s.name}.{r.name}": r for s in suites for r in s.rules}
    result = GateResult(
        batch_size=len(batch_ids),
        # What failed, counted from the same failures the e-mail lists (batch receipts and orphans).
        failed_receipts=len({f.orderid for f in failures}),
        systemic=False,
        suite_success=validation.suite_success(suites),
        suite_versions={s.name: s.version for s in suites},
        rule_counts={rid: len(dict.fromkeys(ids)) for rid, ids in receipts_by_rule.items()},
        rule_kinds={rid: str(r.kind) for rid, r in rules.items()},
        rule_descriptions={rid: r.description for rid, r in rules.items()},
        stores_affected=dict(sorted(stores.items())),
        samples={rid: list(dict.fromkeys(ids))[:SAMPLE_IDS] for rid, ids in receipts_by_rule.items()},
        sample_receipts={
            rid: [_label(labels, oid) for oid in list(dict.fromkeys(ids))[:SAMPLE_IDS]]
            for rid, ids in receipts_by_rule.items()
        },
        sample_details=_cause_lines(failures, labels),
        run_label=run_label,
        gx_errors=list(validation.errors),
        gx_duration_s=validation.duration_s,
        owners={k: DEFAULT_OWNER.get(ExceptionKind(k), "retail_ops") for k in {f.kind for f in failures}},
        rule_keys={rid: list(keys) for rid, keys in keys_by_rule.items()},
    )
    return result, by_receipt


def _decide_systemic(
    conn: psycopg.Connection,
    result: GateResult,
    batch_ids: list[int],
    by_receipt: dict[int, list[Failure]],
    options: GateOptions,
    systemic_share: float,
) -> None:
    """Systemic is about *new* failures: receipts already under an open exception of any kind (the
    gate's own, or one posting or staging raised) are known to be bad; a backlog nobody has fixed yet
    must not turn an ordinary hour into a "systemic" stop of all posting."""
    batch = set(batch_ids)
    known = {
        r[0]
        for r in conn.execute(
            "select distinct orderid from sitoo_erp.exception where status = 'open' and orderid = any(%s)",
            (batch_ids,),
        ).fetchall()
    }
    fresh = len(batch) - len(known & batch)
    fresh_failed = sum(1 for oid in by_receipt if oid not in known)
    result.fresh_batch, result.fresh_failed = fresh, fresh_failed
    result.systemic = bool(fresh >= options.min_systemic_batch and fresh_failed / fresh > systemic_share)
    if result.systemic:
        log.error(
            "gate: systemic failure, %d of %d new receipts fail (> %.0f%%); nothing quarantined",
            fresh_failed,
            fresh,
            systemic_share * 100,
        )


def _write_exceptions(
    conn: psycopg.Connection,
    result: GateResult,
    batch_ids: list[int],
    failures: list[Failure],
    by_receipt: dict[int, list[Failure]],
) -> dict[str, str]:
    """Quarantine the failing receipts, one exception per cause, resolve the causes gone; returns the
    exception rule of each failing rule (``"gx:suite@version/rule" -> "suite.rule"``)."""
    rule_ids: dict[str, str] = {}
    result.quarantined = _quarantine(conn, by_receipt)
    for f in failures:
        exc_rule = f"{RULE_PREFIX}{f.suite}@{result.suite_versions[f.suite]}/{f.rule}"
        rule_ids[exc_rule] = f.rule_id
        record_exception(
            conn,
            ExceptionKind(f.kind),
            subject_key=f.subject_key,
            rule=exc_rule,
            message=f"order {f.orderid}: {f.detail}",
            orderid=f.orderid,
            store_externalid=f.store_externalid,
            sku=f.sku,
            field=f.field,
        )
    result.exceptions_raised = len(failures)
    result.resolved = _resolve_gone(conn, batch_ids, [f.subject_key for f in failures])
    conn.execute("delete from sitoo_erp.systemic_alert")  # a stop that comes back is news again
    return rule_ids


def _oldest_open_exception_hours(conn: psycopg.Connection) -> float | None:
    row = conn.execute(
        f"""select extract(epoch from now() - min(first_seen_at)) / 3600
              from sitoo_erp.exception
             where status = 'open' and starts_with(rule, '{RULE_PREFIX}')"""
    ).fetchone()
    return round(float(row[0]), 2) if row and row[0] is not None else None


def receipt_labels(conn: psycopg.Connection, orderids: Iterable[int]) -> dict[int, str]:
    """``orderid -> "receipt 0042-17 (order 10665)"``: the POS receipt number (``pos-receiptid``,
    staged as ``sitoo_order.receipt_id``) is what store staff look up; the order id is Sitoo's key."""
    ids = sorted(set(orderids))
    if not ids:
        return {}
    rows = conn.execute(
        "select orderid, receipt_id from sitoo_erp.sitoo_order where orderid = any(%s::bigint[])", (ids,)
    ).fetchall()
    known = {oid: f"receipt {rid} (order {oid})" for oid, rid in rows if rid}
    return {oid: known.get(oid, f"order {oid} (no receipt number)") for oid in ids}


def _label(labels: dict[int, str], orderid: int | None) -> str:
    """How an e-mail names a receipt (also a failure without an order id)."""
    return labels.get(orderid, f"order {orderid}") if orderid is not None else f"order {orderid}"


def _cause_lines(failures: list[Failure], labels: dict[int, str]) -> dict[str, list[str]]:
    """One example line per *cause* of a rule (first ``SAMPLE_DETAILS``), naming its receipts.

    One cause (an unknown SKU, an unmapped tender) usually fails many receipts with the same detail
    text; listing a line per failing receipt repeated that text once per receipt. Grouped by cause,
    each line says what to fix once and which receipts it stops.
    """
    by_cause: dict[str, dict[str, list[Failure]]] = defaultdict(dict)
    for f in failures:
        by_cause[f.rule_id].setdefault(f.cause_key, []).append(f)
    out: dict[str, list[str]] = {}
    for rule_id, causes in by_cause.items():
        lines: list[str] = []
        for fs in list(causes.values())[:SAMPLE_DETAILS]:
            named = list(dict.fromkeys(_label(labels, f.orderid) for f in fs))
            more = f" and {len(named) - 3} more" if len(named) > 3 else ""
            who = f"{len(named)} receipts: " if len(named) > 1 else ""
            lines.append(f"{fs[0].detail[:DETAIL_CHARS]} [{who}{', '.join(named[:3])}{more}]")
        out[rule_id] = lines
    return out


def _claim_news(
    conn: psycopg.Connection, result: GateResult, failures: list[Failure], rule_ids: dict[str, str]
) -> None:
    """Claim, in this transaction, the causes no e-mail has announced yet: the alert's news."""
    if not result.systemic:
        claimed = claim_unalerted(conn, [f.kind for f in failures], [f.subject_key for f in failures])
        counts = Counter(rule_ids.get(rule) or rule for rule, _, _ in claimed)
        result.new_cause_keys = sorted(f"{kind} {key}" for _, kind, key in claimed)[:NEW_CAUSES_LISTED]
        result.new_causes = len(claimed)
        result.new_counts = dict(counts)
        result.alert_due = bool(claimed)
        return
    causes = sorted({f"{f.rule_id} {f.cause_key}" for f in failures})
    new = conn.execute(
        """
        insert into sitoo_erp.systemic_alert (cause, gate_run_id)
        select c, %s from unnest(%s::text[]) as c
        on conflict (cause) do nothing
        returning cause
        """,
        (result.gate_run_id, causes),
    ).fetchall()
    result.new_causes = len(new)
    result.new_cause_keys = sorted(c for (c,) in new)[:NEW_CAUSES_LISTED]
    result.new_counts = dict(Counter(c.split(" ", 1)[0] for (c,) in new))
    result.alert_due = bool(new)


def _quarantine(conn: psycopg.Connection, by_receipt: dict[int, list[Failure]]) -> int:
    if not by_receipt:
        return 0
    ids, reasons = [], []
    for oid, fs in by_receipt.items():
        first = fs[0]
        more = f" (+{len(fs) - 1} more)" if len(fs) > 1 else ""
        ids.append(oid)
        reasons.append(f"{REASON_PREFIX} {first.rule_id} [{first.kind}]: {first.detail}{more}"[:1000])
    return ledger.quarantine_ready(conn, ids, reasons, S.ReasonCode.QUALITY_GATE)


def _resolve_gone(conn: psycopg.Connection, batch_ids: list[int], current_keys: list[str]) -> int:
    """Open gate exceptions of batch receipts whose cause did not fail this time: resolved."""
    if not batch_ids:
        return 0
    return resolve_gone(
        conn,
        rule_prefix=RULE_PREFIX,
        still_failing=current_keys,
        note="quality gate passed: cause gone",
        orderids=batch_ids,
    )
