"""Exceptions replay: re-post the quarantined and held receipts now, without changing anything."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from include.sitoo_erp.operators.operations import repost_now
from include.sitoo_erp.operators.retry import OPERATIONS_DEFAULT_ARGS

DOC_MD = """
### Re-post now (replay only)

For retail ops and finance: after a fix made elsewhere (a new item created in NetSuite, a mapping
saved on the **Sitoo ERP ops** page), have the affected receipts posted straight away instead of at
the next hourly run. The form has **no fields**: press ▶ *Trigger*.

The run re-classifies every unposted receipt, looks up new SKUs in the ERP, runs the quality gate and
posts what now passes — exactly as the hourly DAG does, with the same idempotent upserts, so running
this while the hourly DAG runs never creates a duplicate.

To change something first, use the DAG for that change (each form asks only what its change needs):

| you want to… | DAG |
|---|---|
| add or correct mappings (SKU → item, store → location, tender → payment method, VAT rate → tax code, document items), several at once | `sitoo_exceptions_fix_mappings` |
| ignore exceptions that will not be fixed, or mark them resolved by hand (several at once, one reason) | `sitoo_exceptions_decide` |

Both re-post at once in the same run, like this one.
"""

with DAG(
    dag_id="sitoo_exceptions_replay",
    description="Re-post quarantined and held receipts now (no changes)",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=OPERATIONS_DEFAULT_ARGS,
    tags=["sitoo", "erp", "operations"],
    doc_md=DOC_MD,
) as dag:
    repost_now()
