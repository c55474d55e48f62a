"""Suite ``tax_rounding``: POS VAT per rate vs the per-line VAT, within what per-line rounding explains.

Per receipt and VAT rate R (the generator's receipt VAT rule, i.e. how the POS computes it):
``net_R = sum(row net at R) - loyalty net at R``, ``POS tax_R = round(net_R * R/100, 2)``;
``line tax_R = sum(row money_vat at R) - loyalty vat at R``. Rounding each line can move the sum by at
most half a penny per line plus half a penny for the receipt-level rounding, hence the tolerance
``per_line_tolerance * (lines at R + 1)`` (default 0.005). Loyalty amounts are read from the order's
``loyalty-moneydiscount-net-{R}`` / ``-vat-{R}`` with R as the POS writes it (``20``, ``5``, ``0``).
"""

from __future__ import annotations

from include.sitoo_erp.quality.rules import Rule, Suite
from include.sitoo_erp.staging.exceptions import ExceptionKind

VERSION = "1.0.0"

_PER_RATE = """
select b.orderid, b.store_externalid, g.vat_rate, g.n, b.money_net, b.money_vat,
       round((g.net - l.loy_net) * g.vat_rate / 100, 2) as pos_tax,
       g.net - l.loy_net as pos_net,
       g.line_vat - l.loy_vat as line_tax
from (
    select r.orderid, r.vat_rate, sum(r.money_net) as net, sum(r.money_vat) as line_vat, count(*) as n
    from sitoo_erp.sitoo_order_row r
    where r.orderid in (select orderid from {batch})
    group by r.orderid, r.vat_rate
) g
join {batch} b on b.orderid = g.orderid
cross join lateral (
    select coalesce((b.additionaldata ->> ('loyalty-moneydiscount-net-' || trim_scale(g.vat_rate)))::numeric, 0)
             as loy_net,
           coalesce((b.additionaldata ->> ('loyalty-moneydiscount-vat-' || trim_scale(g.vat_rate)))::numeric, 0)
             as loy_vat
) l
"""

VAT_PER_RATE = Rule(
    name="vat_per_rate_within_tolerance",
    kind=ExceptionKind.TAX_BEYOND_TOLERANCE,
    description="per VAT rate, |POS tax - sum of line tax| <= per_line_tolerance * (lines + 1)",
    sql=f"""
select t.orderid, t.store_externalid, 'vat_rate=' || trim_scale(t.vat_rate) as cause_key,
       'money_vat' as field, null::text as sku,
       'VAT rate ' || trim_scale(t.vat_rate) || ': POS tax ' || t.pos_tax || ' vs line tax ' || t.line_tax
         || ' (difference ' || (t.line_tax - t.pos_tax) || ' exceeds tolerance '
         || trim_scale(__PER_LINE_TOLERANCE__ * (t.n + 1)) || ' for ' || t.n || ' lines)' as detail
from ({_PER_RATE}) t
where abs(t.pos_tax - t.line_tax) > __PER_LINE_TOLERANCE__ * (t.n + 1)
""",
)

HEADER_MATCHES_RATES = Rule(
    name="header_matches_rate_totals",
    kind=ExceptionKind.TAX_BEYOND_TOLERANCE,
    description="the receipt's money_net / money_vat equal the sums of its per-rate net / POS tax",
    sql=f"""
select h.orderid, h.store_externalid, 'header_vat' as cause_key, 'money_vat' as field, null::text as sku,
       'receipt money_net ' || h.money_net || ' / money_vat ' || h.money_vat
         || ' vs per-rate totals net ' || h.net || ' / tax ' || h.tax as detail
from (
    select t.orderid, t.store_externalid, t.money_net, t.money_vat, sum(t.pos_net) as net,
           sum(t.pos_tax) as tax
    from ({_PER_RATE}) t
    group by t.orderid, t.store_externalid, t.money_net, t.money_vat
) h
where abs(h.money_vat - h.tax) > __HEADER_TOLERANCE__ or abs(h.money_net - h.net) > __HEADER_TOLERANCE__
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
    rules=(VAT_PER_RATE, HEADER_MATCHES_RATES, NET_TAX_ROUNDOFF_GROSS),
    defaults={"per_line_tolerance": "0.005", "header_tolerance": "0.005"},
)
