"""The reconciliation gate: the ``reconciliation`` GX suite over one run's lines (zero unexplained).

GX runs the suite through the gates' shared runner (``quality/runner.py``, SQL pushed down to
PostgreSQL); the counts per class come from the same table. Records the outcome on the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import psycopg

from include.sitoo_erp.quality import runner
from include.sitoo_erp.quality.suites import reconciliation as suite_mod


@dataclass
class ReconciliationGateOptions:
    """The reconciliation gate's options (:class:`~include.sitoo_erp.quality.runner.RuleOptions`)."""

    recon_run_id: int

    def tokens(self) -> dict[str, object]:
        return {"recon_run_id": int(self.recon_run_id)}


@dataclass
class ReconGateResult:
    recon_run_id: int
    success: bool
    rules: dict[str, bool]
    unexplained_by_class: dict[str, int] = field(default_factory=dict)
    suite: str = suite_mod.SUITE.label
    gx_errors: list[str] = field(default_factory=list)  # rules GX could not evaluate (counted as failed)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def run_reconciliation_gate(
    database_url: str, conn: psycopg.Connection, recon_run_id: int
) -> ReconGateResult:
    suite = suite_mod.SUITE
    validation = runner.validate(
        database_url, (suite,), ReconciliationGateOptions(recon_run_id), batch_table=suite_mod.BATCH_TABLE
    )
    rules = validation.outcome.get(suite.name, {})
    counts: dict[str, int] = dict(
        conn.execute(
            "select class, count(*) from sitoo_erp.reconciliation_line where recon_run_id = %s and not explained "
            "group by class",
            (recon_run_id,),
        ).fetchall()
    )
    # GX and the table must agree: a rule GX could not evaluate counts as failed when rows exist.
    success = all(rules.values()) and not counts
    result = ReconGateResult(recon_run_id, success, rules, counts, gx_errors=list(validation.errors))
    conn.execute(
        "update sitoo_erp.reconciliation_run set status = %s, gated_at = now(), gate_result = %s "
        "where recon_run_id = %s",
        ("passed" if success else "failed", json.dumps(result.as_dict()), recon_run_id),
    )
    return result
