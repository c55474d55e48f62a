"""Exceptions replay: apply a fix from the trigger form, then re-post the affected receipts at once."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from include.sitoo_erp.operators.operations import ACTIONS, ApplyOpsFixOperator
from include.sitoo_erp.operators.posting import (
    ClassifyOrdersOperator,
    ErpPostingOperator,
    RefreshErpItemsOperator,
    StateLedgerSummaryOperator,
)
from include.sitoo_erp.operators.quality import QualityGateOperator
from include.sitoo_erp.operators.retry import TRANSIENT_ONLY

DOC_MD = """
### Fix an exception and re-post now

For retail ops and finance: correct a mapping or decide on an exception **without a deployment**,
and have the affected receipts posted straight away instead of at the next hourly run.

Trigger this DAG (▶ *Trigger DAG*) and fill the form:

| you want to… | action | key | values (JSON) | exception_id / reason |
|---|---|---|---|---|
| map an unknown SKU to an ERP item | `map_sku_item` | the SKU, e.g. `SKU-000164` | `{"item_id": "100164"}` | reason optional |
| map a store to its ERP location | `map_store_location` | store external id, e.g. `ST006` | `{"location_id": "1006", "customer_id": "5006", "subsidiary_id": "1"}` | |
| map a tender to a payment method | `map_tender_payment` | tender name, e.g. `Foreign Currency` | `{"payment_method_id": "1", "account_id": "1220"}` (the account for split tenders) | |
| map a VAT rate to a tax code | `map_vat_tax_code` | rate, e.g. `12.5` | `{"tax_code_id": "44", "tax_type_id": "7"}` | |
| accept that a gap will not be fixed | `ignore_exception` | | | the exception id and **why** |
| say a cause is fixed by hand | `resolve_exception` | | | the exception id and a note |
| just re-run the quarantined receipts | `replay_only` | | | |

Every change is written to `sitoo_erp.audit_log` with who (the Airflow user who triggered the run),
when and before → after. Then the run re-classifies every unposted receipt, looks up new SKUs in the
ERP, runs the quality gate and posts what now passes — exactly as the hourly DAG does, with the
same idempotent upserts, so running this while the hourly DAG runs never creates a duplicate.
An ignored exception leaves the queue for good; its receipt is *excluded* with your reason.
"""

with DAG(
    dag_id="sitoo_exceptions_replay",
    description="Apply an ops fix (mapping, ignore/resolve) and re-post the affected receipts at once",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "retail-ops",
        "retries": 1,
        "retry_policy": TRANSIENT_ONLY,
        "retry_delay": timedelta(minutes=1),
    },
    tags=["sitoo", "erp", "operations"],
    doc_md=DOC_MD,
    params={
        "action": Param("map_sku_item", type="string", enum=list(ACTIONS), description="What to change."),
        "key": Param("", type="string", description="SKU, store external id, tender name or VAT rate."),
        "values": Param({}, type="object", description='Mapping values, e.g. {"item_id": "100164"}.'),
        "exception_id": Param(None, type=["null", "integer"], description="For ignore/resolve."),
        "reason": Param("", type="string", description="Why (required to ignore an exception)."),
        "changed_by": Param("", type="string", description="Your name, if the run is not triggered by you."),
    },
) as dag:
    apply_fix = ApplyOpsFixOperator(task_id="apply_fix")
    classify = ClassifyOrdersOperator(task_id="classify", business_now=None)  # on demand: the Sitoo clock
    items = RefreshErpItemsOperator(task_id="refresh_erp_items", pool="erp_api")
    gate = QualityGateOperator(task_id="quality_gate")
    post = ErpPostingOperator(task_id="post_to_erp", pool="erp_api")
    summarise = StateLedgerSummaryOperator(task_id="summarise")
    apply_fix >> classify >> items >> gate >> post >> summarise
