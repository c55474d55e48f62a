"""Suite ``tax_rounding``: the receipt's VAT per rate, by the one rule the documents post with.

Per receipt and VAT rate R the POS VAT ``V_R`` and its tolerance come from ``posting/vat.py``
(:func:`~include.sitoo_erp.posting.vat.receipt_vat_sql`, the SQL rendering of the rule the document
builder runs in Python): whether the till derived VAT from net lines, from VAT-inclusive lines or once
per receipt, a receipt passes when ``|V_R - sum of line VAT at R| <= 0.005 x (1 + lines x (100+R)/100)``
(0 at 0 %), ``sum V_R = money_vat`` and ``money_net`` is either the rows' net or their gross minus
``money_vat``. Loyalty per rate is read with the one vocabulary (``include/sitoo_erp/loyalty.py``:
``loyalty-moneydiscount-net-{R}`` / ``-vat-{R}``, or the gross ``loyalty-moneydiscount`` split on a
single-rate receipt); a gross loyalty amount that cannot be split is its own cause
(``loyalty_split_by_rate``), never a VAT difference.
"""

from __future__ import annotations

from include.sitoo_erp import loyalty
from include.sitoo_erp.posting.vat import receipt_vat_sql, staged_rates_sql
from include.sitoo_erp.quality.rules import Rule, Suite
from include.sitoo_erp.staging.exceptions import ExceptionKind

VERSION = "2.0.0"


# A gross loyalty amount without its per-rate split on a receipt whose rows do not carry exactly one
# VAT rate: the split is unknown, so the VAT rules leave the receipt to ``LOYALTY_SPLIT``.
def _split_missing(o: str) -> str:
    """SQL: receipt ``o`` has a gross loyalty amount, no per-rate split and not exactly one VAT rate."""
    return f"""
    ({o}.loyalty_discount <> 0
     and not exists (select 1 from jsonb_object_keys({o}.additionaldata) k
                     where starts_with(k, '{loyalty.NET_PREFIX}') and {o}.additionaldata ->> k <> '')
     and (select count(distinct r2.vat_rate) from sitoo_erp.sitoo_order_row r2
           where r2.orderid = {o}.orderid and r2.vat_rate <> 0) <> 1)
"""


_PER_RATE_INPUT = staged_rates_sql("{batch}", where=f"not {_split_missing('o')}")

_PER_RATE = f"""
select t.*, b.store_externalid
from ({receipt_vat_sql(_PER_RATE_INPUT)}) t
join {{batch}} b on b.orderid = t.orderid
"""

VAT_PER_RATE = Rule(
    name="vat_per_rate_within_tolerance",
    kind=ExceptionKind.TAX_BEYOND_TOLERANCE,
    description="per VAT rate, |POS VAT - sum of line VAT| <= 0.005 x (1 + lines x (100+R)/100) (posting/vat.py)",
    sql=f"""
select t.orderid, t.store_externalid, 'vat_rate=' || trim_scale(t.vat_rate) as cause_key,
       'money_vat' as field, null::text as sku,
       'VAT rate ' || trim_scale(t.vat_rate) || ': POS VAT ' || t.pos_vat || ' vs line VAT ' || t.line_vat
         || ' (difference ' || (t.pos_vat - t.line_vat) || ' exceeds tolerance '
         || trim_scale(round(t.tolerance, 5)) || ' for ' || t.lines || ' lines)' as detail
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

LOYALTY_SPLIT = Rule(
    name="loyalty_split_by_rate",
    kind=ExceptionKind.MALFORMED_PAYLOAD,
    description="a gross loyalty amount on a receipt with several VAT rates carries its per-rate split",
    sql=f"""
select b.orderid, b.store_externalid, 'loyalty_split' as cause_key,
       '{loyalty.SPLIT_FIELD}' as field, null::text as sku,
       'loyalty discount ' || b.loyalty_discount || ' has no per-rate split ({loyalty.NET_PREFIX}R / '
         || '{loyalty.VAT_PREFIX}R) and the rows carry ' || x.rates || ' VAT rates' as detail
from {{batch}} b
join lateral (select count(distinct r.vat_rate) as rates from sitoo_erp.sitoo_order_row r
              where r.orderid = b.orderid and r.vat_rate <> 0) x on true
where {_split_missing("b")}
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
    rules=(VAT_PER_RATE, HEADER_MATCHES_RATES, NET_TAX_ROUNDOFF_GROSS, LOYALTY_SPLIT),
)
