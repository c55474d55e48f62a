"""Suite ``reconciliation``: zero unexplained difference in one reconciliation run.

Same machinery as the receipt gate (:class:`Rule` / :class:`Suite`, GX ``UnexpectedRowsExpectation``,
one SQL text per rule, the contract columns ``orderid, store_externalid, cause_key, field, sku,
detail``), on another batch: ``sitoo_erp.reconciliation_line`` scoped to ``__RECON_RUN_ID__``. One
rule per difference class, so the GX result says which kind of difference is left unexplained.
"""

from __future__ import annotations

from include.sitoo_erp.quality.rules import Rule, Suite

VERSION = "1.2.0"  # 1.2.0: no_blocked_receipts (systemic stop)
BATCH_TABLE = "sitoo_erp.reconciliation_line"
KIND = "reconciliation_difference"

_SQL = """
select b.orderid, b.store_externalid,
       b.class || '/' || b.cause || '/' || coalesce(b.external_id, b.receipt_id, b.registerid, '')
         || '/' || coalesce(to_char(b.business_date, 'YYYY-MM-DD'), '') as cause_key,
       b.class as field, null::text as sku, b.detail
from {{batch}} b
join sitoo_erp.reconciliation_run r on r.recon_run_id = b.recon_run_id
where b.recon_run_id = __RECON_RUN_ID__ and not b.explained and b.class in ({classes})
"""


def _rule(name: str, classes: tuple[str, ...], description: str) -> Rule:
    return Rule(
        name=name,
        kind=KIND,  # type: ignore[arg-type]  # reported, never quarantined: not an ExceptionKind
        description=description,
        sql=_SQL.format(classes=", ".join(f"'{c}'" for c in classes)),
    )


SUITE = Suite(
    name="reconciliation",
    version=VERSION,
    description="Sitoo vs ERP vs Z-reports: every difference is explained (cause and owner) or raised",
    rules=(
        _rule(
            "no_unexplained_missing",
            ("missing_in_erp",),
            "every finalised receipt missing in the ERP has a known cause",
        ),
        _rule(
            "no_extra_in_erp",
            ("extra_in_erp", "duplicate_in_erp"),
            "no ERP document without a receipt, no duplicate",
        ),
        _rule("documents_match", ("amount_mismatch",), "every ERP document carries the posted amounts"),
        _rule(
            "tax_differences_explained",
            ("tax_variance",),
            "every tax difference equals the recorded tax variance",
        ),
        _rule(
            "zreports_agree", ("zreport_mismatch",), "every register-day's Z-report agrees with its receipts"
        ),
        _rule(
            "no_blocked_receipts",
            ("blocked_systemic_stop",),
            "no finalised receipt held back by the quality gate's systemic stop",
        ),
        _rule("no_residual", ("unexplained_residual",), "no store-day difference left after classification"),
        _rule(
            "receipts_match",
            ("receipt_mismatch",),
            "every posted receipt equals its ERP document (kind, total, tax per rate, date, lines) and Sitoo",
        ),
    ),
)
