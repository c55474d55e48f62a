"""Suite ``stock_drift``: the daily stock gate over one snapshot's drift rows and the day's movements.

Same machinery as the receipt gate (:class:`Rule` / :class:`Suite`, GX ``UnexpectedRowsExpectation``,
one SQL text per rule, the contract columns ``orderid, store_externalid, cause_key, field, sku,
detail``), on another batch: ``sitoo_erp.stock_drift`` scoped to ``__SNAPSHOT_ID__``. ``orderid`` is
always null here. After the contract columns each rule returns ``status, units, value`` (the drift
row's status, its drift in units and value; a movement's quantity): the drift mail counts and values
exactly what failed, and a drift whose units change is a changed cause. Options (tokens): ``snapshot_id``, ``business_date``, ``unit_tolerance``,
``value_tolerance``.

The gate only *reports*: a failing rule raises an exception row and mails the drift report; it never
adjusts either system's stock.
"""

from __future__ import annotations

from include.sitoo_erp.quality.rules import RESULT_COLUMNS, Rule, Suite
from include.sitoo_erp.staging.exceptions import ExceptionKind

VERSION = "1.1.0"  # 1.1.0: status, units, value after the contract columns
BATCH_TABLE = "sitoo_erp.stock_drift"
COLUMNS = (*RESULT_COLUMNS, "status", "units", "value")  # what the stock gate reads of a failing row

_WHERE = "b.snapshot_id = __SNAPSHOT_ID__"
_WHO = (
    "'store ' || coalesce(b.store_externalid, '?') || ' (ERP location ' || b.location_id || ') SKU ' || b.sku"
)

SKU_IN_BOTH = Rule(
    name="sku_in_both_systems",
    kind=ExceptionKind.UNKNOWN_SKU,
    description="every SKU a store stocks exists in both Sitoo and the ERP",
    sql=f"""
select null::bigint as orderid, b.store_externalid, 'location=' || b.location_id || '/sku=' || b.sku as cause_key,
       'sku' as field, b.sku,
       case when b.status = 'missing_in_erp'
            then {_WHO} || ': on hand ' || trim_scale(b.sitoo_on_hand) || ' in Sitoo, but the ERP has no item'
            else {_WHO} || ': the ERP holds ' || trim_scale(b.erp_on_hand) || ' (item ' || coalesce(b.item_id, '?')
                 || ') but no Sitoo store warehouse knows the SKU' end as detail,
       b.status, b.drift_units as units, b.drift_value as value
from {{batch}} b
join sitoo_erp.stock_snapshot s on s.snapshot_id = b.snapshot_id
where {_WHERE} and b.status in ('missing_in_erp', 'missing_in_sitoo')
""",
)

DRIFT_WITHIN_TOLERANCE = Rule(
    name="drift_within_tolerance",
    kind=ExceptionKind.STOCK_DRIFT,
    description="Sitoo on-hand = expected ERP on-hand within the unit and value tolerance",
    sql=f"""
select null::bigint as orderid, b.store_externalid, 'location=' || b.location_id || '/sku=' || b.sku as cause_key,
       'on_hand' as field, b.sku,
       {_WHO} || ' on ' || to_char(s.business_date, 'YYYY-MM-DD') || ': Sitoo ' || trim_scale(coalesce(b.sitoo_on_hand, 0))
         || ' vs ERP expected ' || trim_scale(b.expected_erp) || ' (ERP on hand ' || trim_scale(coalesce(b.erp_on_hand, 0))
         || ', unposted sales ' || trim_scale(b.unposted_sales) || ', unposted movements '
         || trim_scale(b.unposted_movements) || '): drift ' || trim_scale(b.drift_units) || ' units, value '
         || coalesce(b.drift_value::text, 'unknown') as detail,
       b.status, b.drift_units as units, b.drift_value as value
from {{batch}} b
join sitoo_erp.stock_snapshot s on s.snapshot_id = b.snapshot_id
where {_WHERE} and b.status = 'drift'
  and (abs(b.drift_units) > __UNIT_TOLERANCE__ or abs(coalesce(b.drift_value, 0)) > __VALUE_TOLERANCE__)
""",
)

NO_UNEXPLAINED_NEGATIVE = Rule(
    name="no_unexplained_negative",
    kind=ExceptionKind.STOCK_DRIFT,
    description="no negative on-hand (Sitoo or expected ERP) unless an open exception explains the SKU",
    sql=f"""
select null::bigint as orderid, b.store_externalid,
       'negative/location=' || b.location_id || '/sku=' || b.sku as cause_key, 'on_hand' as field, b.sku,
       {_WHO} || ': negative on-hand (Sitoo ' || trim_scale(coalesce(b.sitoo_on_hand, 0)) || ', ERP expected '
         || trim_scale(b.expected_erp) || ') and no open exception explains it' as detail,
       'negative' as status, b.drift_units as units, b.drift_value as value
from {{batch}} b
join sitoo_erp.stock_snapshot s on s.snapshot_id = b.snapshot_id
where {_WHERE} and (coalesce(b.sitoo_on_hand, 0) < 0 or b.expected_erp < 0)
  and not exists (select 1 from sitoo_erp.exception x
                  where x.status = 'open' and x.sku = b.sku and x.kind <> 'stock_drift'
                    and (x.store_externalid = b.store_externalid or x.store_externalid is null))
""",
)

MOVEMENTS_POSTED = Rule(
    name="movements_in_erp",
    kind=ExceptionKind.MISSING_MAPPING,
    description="every non-sale movement line of the business day is in the day's ERP adjustment",
    sql="""
/* the day's movements (not the drift batch {batch}); posting already opened their exceptions */
select null::bigint as orderid, m.store_externalid,
       'movement=' || m.warehousetransactionid || '/' || m.line_no as cause_key, 'sku' as field, m.sku,
       'warehouse transaction ' || m.warehousetransactionid || ' line ' || m.line_no || ' (warehouse '
         || m.warehouseid || ', SKU ' || m.sku || ', ' || trim_scale(m.quantity) || '): ' || m.status
         || coalesce(' - ' || m.status_reason, '') as detail,
       'movement_' || m.status as status, m.quantity as units, null::numeric as value
from sitoo_erp.stock_movement m
where m.business_date = date '__BUSINESS_DATE__' and m.status <> 'posted'
""",
)

# Rules whose failures already have exception rows (raised by the posting step): reported, not re-raised.
REPORT_ONLY = frozenset({MOVEMENTS_POSTED.name})

SUITE = Suite(
    name="stock_drift",
    version=VERSION,
    description="Daily stock: SKUs in both systems, drift within tolerance, no unexplained negative on-hand, "
    "the day's movements in the ERP.",
    rules=(SKU_IN_BOTH, DRIFT_WITHIN_TOLERANCE, NO_UNEXPLAINED_NEGATIVE, MOVEMENTS_POSTED),
)
