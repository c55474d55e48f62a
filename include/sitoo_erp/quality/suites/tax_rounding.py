"""Suite ``tax_rounding``: the receipt's VAT per rate, by the one rule the documents post with.

Per receipt and VAT rate R the POS VAT ``V_R`` and its tolerance come from ``posting/vat.py``
(:func:`~include.sitoo_erp.posting.vat.receipt_vat_sql`, the SQL rendering of the rule the document
builder runs in Python): whether the till derived VAT from net lines, from VAT-inclusive lines or once
per receipt, a receipt passes when ``|V_R - sum of line VAT at R| <= 0.005 x (1 + units x (100+R)/100)``
(0 at 0 %; units: the rows' quantities, as a till may round VAT per unit), ``sum V_R = money_vat`` and
``money_net`` is either the rows' net or their gross minus ``money_vat``. Loyalty is Sitoo's (``include/sitoo_erp/loyalty.py``): a bonus cheque is in its row's
price, so the rows are the receipt and the VAT rule reads them as they are; a bonus-cheque row whose
discount cannot be split off (negative, or above the original price) is its own cause
(``loyalty_row_discount``, a malformed payload), never a VAT difference.
"""

from __future__ import annotations

from include.sitoo_erp import loyalty
from include.sitoo_erp.posting.vat import receipt_vat_sql, staged_rates_sql
from include.sitoo_erp.quality.rules import Rule, Suite
from include.sitoo_erp.staging.exceptions import ExceptionKind

VERSION = "2.1.0"


_PER_RATE_INPUT = staged_rates_sql("{batch}")

_PER_RATE = f"""
select t.*, b.store_externalid
from ({receipt_vat_sql(_PER_RATE_INPUT)}) t
join {{batch}} b on b.orderid = t.orderid
"""

VAT_PER_RATE = Rule(
    name="vat_per_rate_within_tolerance",
    kind=ExceptionKind.TAX_BEYOND_TOLERANCE,
    description="per VAT rate, |POS VAT - sum of line VAT| <= 0.005 x (1 + units x (100+R)/100) (posting/vat.py)",
    sql=f"""
select t.orderid, t.store_externalid, 'vat_rate=' || trim_scale(t.vat_rate) as cause_key,
       'money_vat' as field, null::text as sku,
       'VAT rate ' || trim_scale(t.vat_rate) || ': POS VAT ' || t.pos_vat || ' vs line VAT ' || t.line_vat
         || ' (difference ' || (t.pos_vat - t.line_vat) || ' exceeds tolerance '
         || trim_scale(round(t.tolerance, 5)) || ' for ' || t.lines || ' units)' as detail
from ({_PER_RATE}) t
where abs(t.pos_vat - t.line_vat) > t.tolerance
""",
)

HEADER_MATCHES_RATES = Rule(
    name="header_matches_rate_totals",
    kind=ExceptionKind.TAX_BEYOND_TOLERANCE,
    description="money_vat = sum of the POS VAT per rate; money_net = the rows' net or their gross - money_vat",
    sql=f"""
select h.orderid, h.store_externalid, 'header_vat' as cause_key,
       case when h.tax = h.money_vat then 'money_net' else 'money_vat' end as field, null::text as sku,
       'receipt money_net ' || h.money_net || ' / money_vat ' || h.money_vat
         || ' vs rows net ' || h.net || ' / line VAT ' || h.line_vat
         || ' (money_net must be the rows'' net, or their gross minus money_vat)' as detail
from (
    select t.orderid, t.store_externalid, t.money_net, t.money_vat, sum(t.net) as net,
           sum(t.line_vat) as line_vat, sum(t.pos_vat) as tax, count(*) - count(t.pos_net) as unfit
    from ({_PER_RATE}) t
    group by t.orderid, t.store_externalid, t.money_net, t.money_vat
) h
where h.tax <> h.money_vat or h.unfit > 0
""",
)

LOYALTY_ROW_DISCOUNT = Rule(
    name="loyalty_row_discount",
    kind=ExceptionKind.MALFORMED_PAYLOAD,
    description="a row redeeming a bonus cheque has 0 <= moneydiscount <= moneyoriginalprice (loyalty.py)",
    sql=f"""
select b.orderid, b.store_externalid, 'loyalty_row_discount' as cause_key,
       '{loyalty.ROW_DISCOUNT_FIELD}' as field, r.sku,
       'row ' || r.orderitemid || ' (SKU ' || coalesce(r.sku, '?') || ') redeems a bonus cheque but its moneydiscount '
         || r.discount_unit || ' per unit is '
         || case when r.discount_unit < 0 then 'negative'
                 else 'above moneyoriginalprice ' || r.original_unit_price end
         || ': the original price and the loyalty discount cannot be posted' as detail
from {{batch}} b
join sitoo_erp.sitoo_order_row r on r.orderid = b.orderid
where {loyalty.row_discount_invalid_sql("r")}
""",
)

NET_TAX_ROUNDOFF_GROSS = Rule(
    name="net_tax_roundoff_equals_gross",
    kind=ExceptionKind.TAX_BEYOND_TOLERANCE,
    description="money_net + money_vat + money_roundoff = money_gross",
    sql="""
select b.orderid, b.store_externalid, 'gross' as cause_key, 'money_gross' as field, null::text as sku,
       'money_net ' || b.money_net || ' + money_vat ' || b.money_vat || ' + money_roundoff ' || b.money_roundoff
         || ' = ' || t.total || ', not money_gross ' || b.money_gross || ' (difference '
         || (t.total - b.money_gross) || ')' as detail
from {batch} b
cross join lateral (select b.money_net + b.money_vat + b.money_roundoff as total) t
where t.total <> b.money_gross
""",
)

SUITE = Suite(
    name="tax_rounding",
    version=VERSION,
    description="Tax rounding: per-rate POS VAT vs line VAT within the rounding tolerance; totals add up.",
    rules=(VAT_PER_RATE, HEADER_MATCHES_RATES, NET_TAX_ROUNDOFF_GROSS, LOYALTY_ROW_DISCOUNT),
)
