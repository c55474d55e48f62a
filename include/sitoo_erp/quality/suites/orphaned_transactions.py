"""Suite ``orphaned_transactions``: rows/payments without a receipt, unknown originals, payments != total."""

from __future__ import annotations

from include.sitoo_erp.quality.rules import Rule, Suite
from include.sitoo_erp.staging.exceptions import ExceptionKind

VERSION = "1.1.0"  # 1.1.0: receipt_id_unique

# The foreign keys make orphans impossible; while they are in place (validated) the planner skips the
# scan entirely (one-time filter on an InitPlan), so the safety check costs nothing.
_FK_GUARD = """
not exists (select 1 from pg_catalog.pg_constraint c
             where c.conrelid = 'sitoo_erp.{table}'::regclass and c.contype = 'f'
               and c.confrelid = 'sitoo_erp.sitoo_order'::regclass and c.convalidated)
"""

ORPHANED_ROWS = Rule(
    name="rows_have_receipt",
    kind=ExceptionKind.MALFORMED_PAYLOAD,
    description="every order row belongs to a staged receipt",
    sql=f"""
/* whole table, not only the batch ({{batch}}): an orphan cannot be in the batch */
select r.orderid, null::text as store_externalid, 'row=' || r.orderitemid as cause_key,
       'sitoo_order_row.orderid' as field, r.sku,
       'order row ' || r.orderid || '/' || r.orderitemid || ' has no receipt header in sitoo_order' as detail
from sitoo_erp.sitoo_order_row r
where {_FK_GUARD.format(table="sitoo_order_row").strip()}
  and not exists (select 1 from sitoo_erp.sitoo_order o where o.orderid = r.orderid)
""",
)

ORPHANED_PAYMENTS = Rule(
    name="payments_have_receipt",
    kind=ExceptionKind.MALFORMED_PAYLOAD,
    description="every payment belongs to a staged receipt",
    sql=f"""
/* whole table, not only the batch ({{batch}}): an orphan cannot be in the batch */
select p.orderid, null::text as store_externalid, 'payment=' || p.payment_index as cause_key,
       'sitoo_payment.orderid' as field, null::text as sku,
       'payment ' || p.orderid || '/' || p.payment_index || ' (' || p.name || ') has no receipt header in sitoo_order'
         as detail
from sitoo_erp.sitoo_payment p
where {_FK_GUARD.format(table="sitoo_payment").strip()}
  and not exists (select 1 from sitoo_erp.sitoo_order o where o.orderid = p.orderid)
""",
)

RETURN_ORIGINAL_KNOWN = Rule(
    name="return_original_known",
    kind=ExceptionKind.ORPHANED_RETURN,
    description="a return refers to a known, not excluded, original sale",
    sql="""
select b.orderid, b.store_externalid, 'refund_of=' || b.refund_of_orderid as cause_key,
       'refund_of_orderid' as field, null::text as sku,
       'return ' || coalesce(b.receipt_id, '?') || ' (order ' || b.orderid || ') refers to original sale '
         || b.refund_of_orderid
         || case when o.orderid is null then ', which is not in staging (unknown)'
                 else ', which is excluded (' || coalesce(s.reason, '?') || ')' end as detail
from {batch} b
left join sitoo_erp.sitoo_order o on o.orderid = b.refund_of_orderid
left join sitoo_erp.order_state s on s.orderid = b.refund_of_orderid
where b.refund_of_orderid is not null
  and (o.orderid is null or s.state = 'excluded')
""",
)

# Two orders of one store with one receipt id would share an ERP externalId, and the second upsert
# would silently overwrite the first document. The later order (higher orderid) is stopped.
RECEIPT_ID_UNIQUE = Rule(
    name="receipt_id_unique",
    kind=ExceptionKind.DUPLICATE_RECEIPT,
    description="a receipt id is used by one sale and one return at most per store (the ERP key)",
    sql="""
select b.orderid, b.store_externalid, 'receipt=' || b.receipt_id as cause_key, 'receipt_id' as field,
       null::text as sku,
       'receipt ' || b.receipt_id || ' (order ' || b.orderid || ', store ' || coalesce(b.store_externalid, '?')
         || ') repeats the receipt id of order ' || min(o.orderid)
         || '; posting both would overwrite one ERP document with the other' as detail
from {batch} b
join sitoo_erp.sitoo_order o
  on o.store_externalid = b.store_externalid and o.receipt_id = b.receipt_id and o.orderid < b.orderid
 and (o.money_gross < 0 or (o.money_gross = 0 and o.refund_of_orderid is not null))
   = (b.money_gross < 0 or (b.money_gross = 0 and b.refund_of_orderid is not null))
join sitoo_erp.order_state s on s.orderid = o.orderid and s.state <> 'excluded'
where b.receipt_id is not null
group by b.orderid, b.store_externalid, b.receipt_id
""",
)

PAYMENTS_EQUAL_TOTAL = Rule(
    name="payments_equal_total",
    kind=ExceptionKind.TENDER_MISMATCH,
    description="the payments add up to the receipt total (money_gross)",
    sql="""
select b.orderid, b.store_externalid, 'payments_total' as cause_key, 'sitoo_payment.amount' as field,
       null::text as sku,
       'receipt ' || coalesce(b.receipt_id, '?') || ': ' || p.n || ' payments sum to ' || p.paid
         || ' but money_gross is ' || b.money_gross || ' (difference ' || (p.paid - b.money_gross) || ')'
         as detail
from {batch} b
cross join lateral (
    select coalesce(sum(x.amount), 0) as paid, count(*) as n
    from sitoo_erp.sitoo_payment x where x.orderid = b.orderid
) p
where p.paid <> b.money_gross
""",
)

SUITE = Suite(
    name="orphaned_transactions",
    version=VERSION,
    description="Orphaned transactions: rows/payments without a receipt, returns without their sale, "
    "receipt ids used twice, payments that do not add up to the receipt.",
    rules=(ORPHANED_ROWS, ORPHANED_PAYMENTS, RETURN_ORIGINAL_KNOWN, RECEIPT_ID_UNIQUE, PAYMENTS_EQUAL_TOTAL),
)
