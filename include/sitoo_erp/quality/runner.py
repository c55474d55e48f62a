"""The one gate runner: the steps the receipt, stock and reconciliation gates share.

- :func:`validate` builds one ephemeral GX context (a SQL data source on the staging database, the
  gate's batch table or view as a table asset) and runs the suites over it, SQL pushed down
  (``UnexpectedRowsExpectation`` only); it returns each rule's outcome *and* the rules GX raised on.
  A rule GX could not evaluate counts as failed, so the gate re-runs its SQL (and says so).
  :func:`validate_sql` gives the same answer without GX, from the rules' own SQL.
- :func:`failing_rows` re-runs one failed rule's SQL for *all* its rows (GX only counts and samples)
  and checks the columns the gate reads from them.
- :func:`record_gate_run` writes the ``sitoo_erp.gate_run`` row of a receipt or stock gate run.

Each gate keeps only what is its own (quarantine, drift report, counts per difference class).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from include.sitoo_erp.logs import quiet_libraries
from include.sitoo_erp.quality.rules import BATCH_TABLE, RESULT_COLUMNS, Rule, Suite
from include.sitoo_erp.staging.schema import sqlalchemy_url

log = logging.getLogger(__name__)
# Before GX is first imported (its import logs hundreds of DEBUG lines when the task logs at DEBUG);
# _build_context repeats it after the import, for the loggers GX sets to INFO itself.
quiet_libraries()


class RuleOptions(Protocol):
    """What a gate's rules read: the values of their ``__TOKEN__`` placeholders."""

    def tokens(self) -> dict[str, object]: ...


@dataclass
class Validation:
    """What GX (or the rules' SQL) said about a batch."""

    outcome: dict[str, dict[str, bool]]  # suite -> rule -> passed
    errors: list[str] = field(default_factory=list)  # "suite.rule" GX raised on (counted as failed)
    duration_s: float = 0.0

    @classmethod
    def nothing_to_check(cls, suites: Sequence[Suite]) -> Validation:
        """An empty batch: every rule passes without asking GX."""
        return cls({s.name: {r.name: True for r in s.rules} for s in suites})

    def passed(self, suite: Suite, rule: Rule) -> bool:
        return self.outcome.get(suite.name, {}).get(rule.name, True)

    def suite_success(self, suites: Sequence[Suite]) -> dict[str, bool]:
        return {s.name: all(self.passed(s, r) for r in s.rules) for s in suites}


def _build_context(database_url: str, suites: Sequence[Suite], options: RuleOptions, batch_table: str):
    """Ephemeral GX context: SQL data source, the batch table/view as a table asset, suites + validations."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.metadata_types import FailureSeverity

    # GX's INFO chatter stays out of the task log, after GX's own import-time setLevel calls.
    quiet_libraries()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    with warnings.catch_warnings():  # "a more specific PostgresDatasource may be more appropriate": that
        warnings.simplefilter("ignore")  # one rejects Unix-socket URLs; the generic SQL source takes them
        source = ctx.data_sources.add_sql(
            name="sitoo_erp_staging", connection_string=sqlalchemy_url(database_url)
        )
    schema, table = batch_table.split(".")
    asset = source.add_table_asset(name=table, table_name=table, schema_name=schema)
    batch_def = asset.add_batch_definition_whole_table(
        "batch" if batch_table != BATCH_TABLE else "ready_batch"
    )
    validations = []
    for suite in suites:
        suite.check()
        expectations = [
            gxe.UnexpectedRowsExpectation(
                unexpected_rows_query=rule.render(options.tokens()),
                description=f"{suite.name}.{rule.name}: {rule.description}",
                meta={
                    "suite": suite.name,
                    "rule": rule.name,
                    "kind": str(rule.kind),
                    "version": suite.version,
                },
                severity=FailureSeverity.CRITICAL,
            )
            for rule in suite.rules
        ]
        gx_suite = ctx.suites.add(
            gx.ExpectationSuite(name=suite.name, expectations=expectations, meta={"version": suite.version})
        )
        validations.append(
            (
                suite,
                ctx.validation_definitions.add(
                    gx.ValidationDefinition(
                        name=f"{suite.name}@{suite.version}", data=batch_def, suite=gx_suite
                    )
                ),
            )
        )
    return ctx, validations


def _raised(info: Any) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, else None.

    GX reports it either flat (``{"raised_exception": True, "exception_message": …}``) or per
    metric (``{metric id: {…}}``)."""
    if not isinstance(info, dict) or not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message") or "?") if info.get("raised_exception") else None
    for value in info.values():
        message = _raised(value)
        if message is not None:
            return message
    return None


def validate(
    database_url: str, suites: Sequence[Suite], options: RuleOptions, batch_table: str = BATCH_TABLE
) -> Validation:
    """Run every suite through GX over ``batch_table``; a rule GX raised on is failed and listed."""
    started = time.monotonic()
    _, validations = _build_context(database_url, suites, options, batch_table)
    outcome: dict[str, dict[str, bool]] = {}
    errors: list[str] = []
    for suite, vd in validations:
        res = vd.run(result_format="BASIC")
        rules: dict[str, bool] = {r.name: True for r in suite.rules}
        for er in res.results:
            meta = er.expectation_config.meta or {}
            name = str(meta.get("rule"))  # set on every expectation by _build_context
            message = _raised(er.exception_info)
            if message is not None:
                log.warning("gate rule %s.%s raised in GX: %s", suite.name, name, message)
                errors.append(f"{suite.name}.{name}")
            rules[name] = bool(er.success) and message is None
        outcome[suite.name] = rules
    return Validation(outcome, errors, round(time.monotonic() - started, 3))


def validate_sql(
    conn: psycopg.Connection,
    suites: Sequence[Suite],
    options: RuleOptions,
    batch_table: str = BATCH_TABLE,
    columns: tuple[str, ...] = RESULT_COLUMNS,
) -> Validation:
    """The same outcome without GX: a rule passes when its own SQL returns no row."""
    started = time.monotonic()
    for suite in suites:
        suite.check()
    outcome = {
        s.name: {r.name: not failing_rows(conn, s, r, options, batch_table, columns) for r in s.rules}
        for s in suites
    }
    return Validation(outcome, [], round(time.monotonic() - started, 3))


def failing_rows(
    conn: psycopg.Connection,
    suite: Suite,
    rule: Rule,
    options: RuleOptions,
    batch_table: str = BATCH_TABLE,
    columns: tuple[str, ...] = RESULT_COLUMNS,
) -> list[tuple[Any, ...]]:
    """All rows a rule fails (its GX text with ``{batch}`` bound); they start with ``columns``."""
    cur = conn.execute(rule.for_batch(options.tokens(), batch=batch_table))
    cols = [d.name for d in cur.description or ()]
    if tuple(cols[: len(columns)]) != columns:
        raise RuntimeError(f"gate rule {suite.name}.{rule.name} returns {cols}, expected {columns}")
    return cur.fetchall()


def record_gate_run(
    conn: psycopg.Connection,
    *,
    suite: str,
    dag_id: str | None,
    run_id: str | None,
    batch_size: int,
    failed: int,
    success: bool,
    systemic: bool = False,
    result: dict[str, Any] | None = None,
) -> int:
    """One ``sitoo_erp.gate_run`` row (``failed_receipts``: what failed, receipts or stock rows)."""
    row = conn.execute(
        """
        insert into sitoo_erp.gate_run (suite, dag_id, run_id, batch_size, failed_receipts, success,
                                        systemic, result)
        values (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) returning gate_run_id
        """,
        (suite, dag_id, run_id, batch_size, failed, success, systemic, json.dumps(result or {})),
    ).fetchone()
    assert row is not None  # insert … returning: always one row
    return int(row[0])


def record_gate_result(conn: psycopg.Connection, gate_run_id: int, result: dict[str, Any]) -> None:
    """The result of a run recorded before it was complete (it needed its ``gate_run_id``)."""
    conn.execute(
        "update sitoo_erp.gate_run set result = %s::jsonb where gate_run_id = %s",
        (json.dumps(result), gate_run_id),
    )
