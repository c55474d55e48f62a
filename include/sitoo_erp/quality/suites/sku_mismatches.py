"""Suite ``sku_mismatches``: everything the ERP document needs must map (items, store, tenders, VAT, doc items)."""

from __future__ import annotations

from include.sitoo_erp import loyalty
from include.sitoo_erp.quality.rules import GIFT_CARD_ROW, Rule, Suite
from include.sitoo_erp.staging.exceptions import ExceptionKind

VERSION = "1.1.0"

SKU_HAS_ERP_ITEM = Rule(
    name="sku_has_erp_item",
    kind=ExceptionKind.UNKNOWN_SKU,
    description="every sold SKU has an ERP item (erp_item cache or a map_sku_item override)",
    sql=f"""
select b.orderid, b.store_externalid, 'sku=' || coalesce(r.sku, '(none) row ' || r.orderitemid) as cause_key,
       'sku' as field, r.sku,
       case when r.sku is null then 'row ' || r.orderitemid || ' has no SKU'
            else 'SKU ' || r.sku || ' (row ' || r.orderitemid || ') has no ERP item: not in erp_item'
                 || ' and no map_sku_item override' end as detail
from {{batch}} b
join sitoo_erp.sitoo_order_row r on r.orderid = b.orderid
where not {GIFT_CARD_ROW}
  and (r.sku is null
       or (not exists (select 1 from sitoo_erp.erp_item e where e.sku = r.sku)
           and not exists (select 1 from sitoo_erp.map_sku_item m where m.sku = r.sku)))
""",
)

ITEM_ACTIVE = Rule(
    name="erp_item_active",
    kind=ExceptionKind.INACTIVE_ITEM,
    description="the ERP item a SKU resolves to (override first, then the item cache) is active",
    sql=f"""
select b.orderid, b.store_externalid, 'sku=' || r.sku as cause_key, 'sku' as field, r.sku,
       'SKU ' || r.sku || ' (row ' || r.orderitemid || ') maps to ERP item '
         || coalesce(m.item_id, e.item_id) || ', which is inactive in the ERP' as detail
from {{batch}} b
join sitoo_erp.sitoo_order_row r on r.orderid = b.orderid
left join sitoo_erp.map_sku_item m on m.sku = r.sku
left join sitoo_erp.erp_item e on e.sku = r.sku
where not {GIFT_CARD_ROW}
  and ((m.sku is null and e.is_inactive)
       or m.item_id in (select i.item_id from sitoo_erp.erp_item i where i.is_inactive))
""",
)

STORE_MAPPED = Rule(
    name="store_mapped",
    kind=ExceptionKind.MISSING_MAPPING,
    description="the receipt's store has a map_store_location row",
    sql="""
select b.orderid, b.store_externalid, 'store=' || coalesce(b.store_externalid, '(none)') as cause_key,
       'store_externalid' as field, null::text as sku,
       'store ' || coalesce(b.store_externalid, '(none)') || ' has no map_store_location row'
         || ' (ERP location, customer, subsidiary)' as detail
from {batch} b
left join sitoo_erp.map_store_location m on m.store_externalid = b.store_externalid
where m.store_externalid is null
""",
)

TENDER_MAPPED = Rule(
    name="tender_mapped",
    kind=ExceptionKind.TENDER_MISMATCH,
    description="every tender (virtual Exchange included) has a map_tender_payment row",
    sql="""
select b.orderid, b.store_externalid, 'tender=' || p.name as cause_key, 'payments.name' as field,
       null::text as sku,
       'tender "' || p.name || '" (payment ' || p.payment_index || ', amount ' || p.amount
         || case when p.is_virtual then ', virtual' else '' end
         || ') has no map_tender_payment row' as detail
from {batch} b
join sitoo_erp.sitoo_payment p on p.orderid = b.orderid
where not exists (select 1 from sitoo_erp.map_tender_payment t where t.tender = p.name)
""",
)

VAT_RATE_MAPPED = Rule(
    name="vat_rate_mapped",
    kind=ExceptionKind.MISSING_MAPPING,
    description="every VAT rate on the receipt has a map_vat_tax_code row",
    sql="""
select b.orderid, b.store_externalid, 'vat_rate=' || trim_scale(r.vat_rate) as cause_key,
       'vat_rate' as field, r.sku,
       'VAT rate ' || trim_scale(r.vat_rate) || ' (row ' || r.orderitemid || ', SKU ' || coalesce(r.sku, '?')
         || ') has no map_vat_tax_code row' as detail
from {batch} b
join sitoo_erp.sitoo_order_row r on r.orderid = b.orderid
where not exists (select 1 from sitoo_erp.map_vat_tax_code v where v.vat_rate = r.vat_rate)
""",
)

DOCUMENT_ITEM_MAPPED = Rule(
    name="document_item_mapped",
    kind=ExceptionKind.MISSING_MAPPING,
    description="receipts with loyalty, cash round-off or gift cards have the document item mapped",
    sql=f"""
select n.orderid, n.store_externalid, 'document_item=' || n.purpose as cause_key,
       'map_document_item.purpose' as field, null::text as sku,
       'receipt needs the ' || n.purpose || ' document item (' || n.why || ') but map_document_item has no '
         || n.purpose || ' row' as detail
from (
    select b.orderid, b.store_externalid, 'loyalty_discount'::text as purpose, 'loyalty discount' as why
    from {{batch}} b
    where b.loyalty_discount <> 0
       or exists (select 1 from sitoo_erp.sitoo_order_row r
                   where r.orderid = b.orderid and {loyalty.row_net_sql("r")} <> 0)
    union all
    select b.orderid, b.store_externalid, 'cash_rounding', 'cash round-off ' || b.money_roundoff
    from {{batch}} b
    where b.money_roundoff <> 0
    union all
    select b.orderid, b.store_externalid, 'gift_card', 'gift card row'
    from {{batch}} b
    where exists (select 1 from sitoo_erp.sitoo_order_row r where r.orderid = b.orderid and {GIFT_CARD_ROW})
) n
left join sitoo_erp.map_document_item d on d.purpose = n.purpose
where d.purpose is null
""",
)

SUITE = Suite(
    name="sku_mismatches",
    version=VERSION,
    description="SKU and mapping mismatches: unknown or inactive items, unmapped store, tender, VAT rate "
    "or document item.",
    rules=(SKU_HAS_ERP_ITEM, ITEM_ACTIVE, STORE_MAPPED, TENDER_MAPPED, VAT_RATE_MAPPED, DOCUMENT_ITEM_MAPPED),
)
