"""Fix mappings from a trigger form (checked against the ERP), then re-post the affected receipts at once."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from include.sitoo_erp.operators.operations import SaveMappingsOperator, mapping_row_schema, repost_now
from include.sitoo_erp.operators.retry import OPERATIONS_DEFAULT_ARGS

DOC_MD = """
### Add or correct mappings and re-post now

For retail ops and finance: map what the queue says is unknown **without a deployment**, several
mappings in one go, and have the affected receipts posted straight away. Fill only the lists you
need (each row asks exactly the fields its mapping needs; leave the others `[]`):

| list | one row | fixes |
|---|---|---|
| `sku_items` | `{"sku": "SKU-000164", "item_id": "<ERP item internal id>"}` | `unknown_sku`, `inactive_item` |
| `store_locations` | `{"store": "ST006", "location_id": "1006", "customer_id": "5006", "subsidiary_id": "1"}` | `missing_mapping` (store) |
| `tender_payments` | `{"tender": "Foreign Currency", "payment_method_id": "1"}` (+ `account_id` for split tenders) | `tender_mismatch` |
| `vat_tax_codes` | `{"vat_rate": "12.5", "tax_code_id": "44", "tax_type_id": "7"}` | `missing_mapping` (VAT rate) |
| `document_items` | `{"purpose": "loyalty_discount", "item_id": "…"}` | `missing_mapping` (document item) |

**Every mapping is checked against NetSuite before anything is saved**: the item, location,
customer, subsidiary, payment method, account and tax code must exist and be active, a location
and customer must belong to the subsidiary given, a tax code must have the VAT rate it is mapped
from. One refusal (e.g. item `100164` for `SKU-000164` when NetSuite has no such item) fails the
first task with the key, the field and the rule, and **nothing** is saved.

Saved mappings are written to `sitoo_erp.audit_log` with who (the Airflow user who triggered the
run, and `changed_by` if given), when and before → after. The exceptions they fix are closed in the
same step; then the run re-classifies, gates and posts as the hourly DAG does (idempotent upserts).
"""


def _mapping_list(param: str, description: str) -> Param:
    # null allowed: the trigger form does not mark an unused list as required.
    return Param([], type=["null", "array"], items=mapping_row_schema(param), description=description)


with DAG(
    dag_id="sitoo_exceptions_fix_mappings",
    description="Add or correct mappings (checked against the ERP) and re-post the affected receipts at once",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=OPERATIONS_DEFAULT_ARGS,
    tags=["sitoo", "erp", "operations"],
    doc_md=DOC_MD,
    params={
        "sku_items": _mapping_list("sku_items", 'SKU → ERP item: [{"sku": "...", "item_id": "..."}]'),
        "store_locations": _mapping_list(
            "store_locations",
            'Store → ERP location: [{"store": "...", "location_id": "...", "customer_id": "...", "subsidiary_id": "..."}]',
        ),
        "tender_payments": _mapping_list(
            "tender_payments", 'Tender → payment method: [{"tender": "...", "payment_method_id": "..."}]'
        ),
        "vat_tax_codes": _mapping_list(
            "vat_tax_codes",
            'VAT rate → tax code: [{"vat_rate": "...", "tax_code_id": "...", "tax_type_id": "..."}]',
        ),
        "document_items": _mapping_list(
            "document_items", 'Document item: [{"purpose": "loyalty_discount", "item_id": "..."}]'
        ),
        "reason": Param(None, type=["null", "string"], description="Why (kept in the audit log)."),
        "changed_by": Param(
            None, type=["null", "string"], description="Your name, if the run is not triggered by you."
        ),
    },
) as dag:
    repost_now(SaveMappingsOperator(task_id="save_mappings"))
