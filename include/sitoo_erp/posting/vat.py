"""The receipt's VAT per rate, however the till computed it: ONE rule for documents, gate and reconciliation.

Sitoo records VAT on every row (``moneyitemtotal_vat``) and the receipt total (``moneyfinal_vat``), but
no VAT per rate on the receipt. Tills compute it three ways:

- **per line from net** (net-priced shelf): row VAT = round(row net x R), receipt VAT = sum of rows;
- **per line from gross** (VAT-inclusive shelf, UK/Nordic): row VAT = round(row gross x R/(100+R)),
  row net = row gross - row VAT, receipt VAT = sum of rows;
- **per receipt** (from the net per rate, or from the VAT-inclusive gross per rate): the receipt VAT
  per rate is rounded once, so it can differ from the sum of the row VAT by a few pennies.
  Example: 3 x 0.99 at 20 % VAT-inclusive: each row 0.82 + 0.17, receipt gross 2.97, VAT
  round(2.97 / 6) = 0.50, net 2.47 (the rows sum to 0.51 VAT / 2.46 net).

Per receipt and rate R (POS sign, the rows as the till stored them, i.e. after any campaign or bonus
cheque, which Sitoo keeps in the row price; ``loyalty.py``): ``L_R`` = sum of the row VAT, ``N_R`` = sum
of the row net, ``n_R`` = the roundings behind ``L_R``: the rows' units at R (``max(1, ceil(|quantity|))``
per row), because Sitoo's row totals are the unit price x quantity (reference 2.4) and a till may
round the VAT per unit and multiply (3 x 0.99 at 20 %: 3 x 0.17 = 0.51, three roundings in one row).
The POS VAT per rate ``V_R`` is, in this order:

1. ``L_R`` when they add up to ``moneyfinal_vat`` (per-line tills; nothing else is observable);
2. ``round(N_R x R/100)`` when those add up to ``moneyfinal_vat`` and ``moneyfinal_net`` = sum ``N_R``
   (per-receipt till that keeps the net);
3. ``round((N_R + L_R) x R/(100+R))`` when those add up and ``moneyfinal_net`` = sum ``N_R`` -
   (``moneyfinal_vat`` - sum ``L_R``) (per-receipt till that keeps the VAT-inclusive gross);
4. otherwise (another rounding convention) ``L_R`` plus the receipt's difference in whole cents, each
   cent to the taxable rate whose VAT is then still furthest from its exact value ``N_R x R/100`` in
   the cent's direction (ties: the lower rate), i.e. as close to exact as the total allows. A
   difference beyond the sum of the rates' tolerances goes whole to the first such rate: nothing can
   explain it, and that rate is the one the tolerance check then names.

``V_0 = 0`` always. The receipt's net per rate is ``N_R`` when ``moneyfinal_net`` = sum ``N_R`` (the
till kept the net), or ``N_R - (V_R - L_R)`` when the till kept the gross (``moneyfinal_net`` = sum
``N_R - (V_R - L_R)``); any other ``moneyfinal_net`` is inconsistent (rule ``tax.receipt_net``).

**Tolerance** (rule ``tax.vat_per_rate``): ``|V_R - L_R| <= 0.005 x (1 + n_R x (100+R)/100)`` for
R > 0, and 0 at 0 %. Why: every rounding to the penny is off the exact value by at most 0.005. The
receipt-level value ``V_R`` is one rounding of the exact VAT ``E_R``. Each row VAT is one rounding
(error ``e_i``) of the exact VAT of its row: from net, ``sum e_i`` separates ``L_R`` from
``E_R = N_R x R/100`` (at most 0.005 x n_R); from gross, ``N_R x R/100 = L_R - sum e_i x (1 + R/100)``
because every row net is its gross minus its rounded VAT, so ``|E_R - L_R| <= 0.005 x n_R x
(100+R)/100``, which bounds every mix of row and receipt convention. So an internally consistent
receipt never exceeds it, and a VAT that is off by more is a real error. At 20 % and 3 units: 0.023,
i.e. two cents; 10 units: 0.065. Nothing at 0 %: no rounding produces VAT at 0 %.

:func:`receipt_vat` is the rule in Python (the document builder); :func:`receipt_vat_sql` renders the
same rule, with the same constant, for PostgreSQL (the ``tax_rounding`` gate suite and the monthly
reconciliation); ``tests/integration/test_vat_rule_sql.py`` proves they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
# Largest error of one rounding to the penny (HALF_UP): the unit of the tolerance.
HALF_CENT = Decimal("0.005")

LINES = "lines"
RECEIPT_NET = "receipt_from_net"
RECEIPT_GROSS = "receipt_from_gross"
ALLOCATED = "allocated"


def r2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def tolerance(rate: Decimal, lines: int) -> Decimal:
    """Largest |POS VAT - sum of line VAT| at ``rate`` that rounding can explain (module docstring)."""
    if rate == 0:
        return ZERO
    return HALF_CENT * (1 + lines * (HUNDRED + rate) / HUNDRED)


@dataclass(frozen=True)
class RateLines:
    """One rate of one receipt, POS sign: the rows as the till stored them (discounts already in them)."""

    lines: int  # roundings at the rate: the rows' units (max(1, ceil(|quantity|)) per row)
    net: Decimal  # sum of row net
    vat: Decimal  # sum of row VAT


class VatInconsistent(ValueError):
    """The receipt's VAT cannot come from any till's rounding: names the field and the rule."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(message)
        self.field, self.rule = field, rule


@dataclass(frozen=True)
class ReceiptVat:
    vat_by_rate: dict[Decimal, Decimal]  # V_R: what the ERP gets (taxDetailsOverride)
    net_by_rate: dict[Decimal, Decimal]  # the receipt's net per rate
    line_vat_by_rate: dict[Decimal, Decimal]  # L_R
    tolerance_by_rate: dict[Decimal, Decimal]
    convention: str  # LINES, RECEIPT_NET, RECEIPT_GROSS or ALLOCATED
    keeps_gross: bool  # the till kept the rows' gross: a VAT cent moved is a net cent moved back


def _fmt(rate: Decimal) -> str:
    return f"{rate.normalize():f}%"


def receipt_vat(rates: Mapping[Decimal, RateLines], money_net: Decimal, money_vat: Decimal) -> ReceiptVat:
    """POS VAT and net per rate of one receipt (rule in the module docstring); raises VatInconsistent."""
    line_vat = {r: x.vat for r, x in rates.items()}
    total_lines = sum(line_vat.values(), ZERO)
    total_net = sum((x.net for x in rates.values()), ZERO)
    delta = money_vat - total_lines
    dnet = money_net - total_net
    by_net = {r: r2(x.net * r / HUNDRED) for r, x in rates.items()}
    by_gross = {r: r2((x.net + x.vat) * r / (HUNDRED + r)) for r, x in rates.items()}
    taxable = sorted(r for r in rates if r != 0)
    tol = {r: tolerance(r, x.lines) for r, x in rates.items()}
    if delta == 0:
        vat, convention = {r: (ZERO if r == 0 else v) for r, v in line_vat.items()}, LINES
    elif dnet == 0 and sum(by_net.values(), ZERO) == money_vat:
        vat, convention = by_net, RECEIPT_NET
    elif dnet == -delta and sum(by_gross.values(), ZERO) == money_vat:
        vat, convention = by_gross, RECEIPT_GROSS
    else:
        vat = {r: (ZERO if r == 0 else v) for r, v in line_vat.items()}
        cents = int((delta / CENT).to_integral_value())
        if taxable and delta == cents * CENT:
            step = CENT if cents > 0 else -CENT

            def neediest() -> Decimal:  # the rate furthest below (above) its exact VAT
                gap = {r: Decimal(1).copy_sign(step) * (rates[r].net * r / HUNDRED - vat[r]) for r in taxable}
                return max(taxable, key=lambda r: (gap[r], -r))

            if abs(delta) > sum(tol.values(), ZERO):
                vat[neediest()] += delta
            else:
                for _ in range(abs(cents)):
                    vat[neediest()] += step
        convention = ALLOCATED
    for r in sorted(rates):
        if abs(vat[r] - line_vat[r]) > tol[r]:
            raise VatInconsistent(
                f"VAT at {_fmt(r)}: POS {vat[r]} vs rows {line_vat[r]} (difference {vat[r] - line_vat[r]} "
                f"exceeds the rounding tolerance {tol[r].normalize():f} for {rates[r].lines} units)",
                field="money_vat",
                rule="tax.vat_per_rate",
            )
    if sum(vat.values(), ZERO) != money_vat:
        detail = ", ".join(f"{_fmt(r)}: {v}" for r, v in sorted(vat.items()))
        raise VatInconsistent(
            f"VAT per rate ({detail}) cannot add up to moneyfinal_vat {money_vat}: the rows carry "
            f"{total_lines}, a difference of {delta} that rounding cannot explain "
            f"(at most {sum(tol.values(), ZERO).normalize():f})",
            field="money_vat",
            rule="tax.receipt_vat_by_rate",
        )
    moved = {r: vat[r] - line_vat[r] for r in rates}
    if dnet == 0:
        net, keeps_gross = {r: x.net for r, x in rates.items()}, False
    elif dnet == -delta:
        net, keeps_gross = {r: x.net - moved[r] for r, x in rates.items()}, True
    else:
        raise VatInconsistent(
            f"moneyfinal_net {money_net} is neither the rows' net {total_net} (net-priced till) nor "
            f"their gross minus moneyfinal_vat {total_net - delta} (VAT-inclusive till)",
            field="money_net",
            rule="tax.receipt_net",
        )
    return ReceiptVat(vat, net, line_vat, tol, convention, keeps_gross)


def tolerance_sql(rate: str, lines: str) -> str:
    """:func:`tolerance` as a SQL expression over the columns ``rate`` and ``lines``."""
    return f"(case when {rate} = 0 then 0 else {HALF_CENT} * (1 + {lines} * (100 + {rate}) / 100.0) end)"


def receipt_vat_sql(per_rate: str) -> str:
    """:func:`receipt_vat` for PostgreSQL, one row per receipt and rate.

    ``per_rate`` is a relation (table, CTE name or parenthesised subquery) with the columns
    ``orderid, vat_rate, lines, net, line_vat, money_net, money_vat`` (the :class:`RateLines` of each
    rate and the receipt's header). The result adds ``pos_vat`` (V_R), ``pos_net`` (the receipt's net
    at R; null when ``moneyfinal_net`` fits neither till), ``tolerance`` and ``convention``; a receipt
    whose ``pos_vat`` does not add up to ``money_vat`` or whose ``abs(pos_vat - line_vat)`` exceeds
    ``tolerance`` is inconsistent, exactly where :func:`receipt_vat` raises.
    """
    return f"""
with p as (
    select q.orderid, q.vat_rate, q.lines, q.net, q.line_vat, q.money_net, q.money_vat,
           round(q.net * q.vat_rate / 100, 2) as by_net,
           round((q.net + q.line_vat) * q.vat_rate / (100 + q.vat_rate), 2) as by_gross,
           {tolerance_sql("q.vat_rate", "q.lines")} as tolerance
    from {per_rate} q
), d as (
    select p.*,
           p.money_vat - sum(p.line_vat) over o as delta,
           p.money_net - sum(p.net) over o as dnet,
           sum(p.by_net) over o as tot_net,
           sum(p.by_gross) over o as tot_gross,
           sum(p.tolerance) over o as tot_tolerance
    from p
    window o as (partition by p.orderid)
), c as (
    select d.*,
           case when d.delta = 0 then '{LINES}'
                when d.dnet = 0 and d.tot_net = d.money_vat then '{RECEIPT_NET}'
                when d.dnet = -d.delta and d.tot_gross = d.money_vat then '{RECEIPT_GROSS}'
                else '{ALLOCATED}' end as convention
    from d
), slot as (
    select c.orderid, c.vat_rate,
           row_number() over (
               partition by c.orderid
               order by sign(c.delta) * (c.net * c.vat_rate / 100 - c.line_vat) - (k.k - 1) * {CENT} desc,
                        c.vat_rate, k.k) as pick,
           abs(c.delta) * 100 as cents
    from c
    cross join lateral generate_series(1, (abs(c.delta) * 100)::int) as k(k)
    where c.convention = '{ALLOCATED}' and c.vat_rate <> 0 and abs(c.delta) <= c.tot_tolerance
      and c.delta * 100 = trunc(c.delta * 100)
), first_pick as (
    select distinct on (c.orderid) c.orderid, c.vat_rate as first_rate
    from c
    where c.convention = '{ALLOCATED}' and c.vat_rate <> 0 and c.delta * 100 = trunc(c.delta * 100)
    order by c.orderid, sign(c.delta) * (c.net * c.vat_rate / 100 - c.line_vat) desc, c.vat_rate
), alloc as (
    select orderid, vat_rate, count(*) filter (where pick <= cents) as cents
    from slot group by orderid, vat_rate
), w as (
    select c.*,
           case when c.vat_rate = 0 then 0
                when c.convention = '{LINES}' then c.line_vat
                when c.convention = '{RECEIPT_NET}' then c.by_net
                when c.convention = '{RECEIPT_GROSS}' then c.by_gross
                when abs(c.delta) > c.tot_tolerance then
                    c.line_vat + case when f.first_rate = c.vat_rate then c.delta else 0 end
                else c.line_vat + sign(c.delta) * {CENT} * coalesce(a.cents, 0) end as pos_vat
    from c
    left join alloc a on a.orderid = c.orderid and a.vat_rate = c.vat_rate
    left join first_pick f on f.orderid = c.orderid
)
select w.orderid, w.vat_rate, w.lines, w.net, w.line_vat, w.money_net, w.money_vat, w.convention,
       w.pos_vat, w.tolerance,
       case when w.dnet = 0 then w.net
            when w.dnet = -w.delta then w.net - (w.pos_vat - w.line_vat) end as pos_net
from w"""


def staged_rates_sql(orders: str, where: str = "true") -> str:
    """The :class:`RateLines` of staged receipts as a SQL relation, the input of :func:`receipt_vat_sql`.

    ``orders`` is a relation (the gate's ``{batch}``, a CTE name) with the staged ``sitoo_order``
    columns ``orderid, money_net, money_vat``; rows come from ``sitoo_order_row`` as the till stored
    them (a bonus cheque is in the row price, ``loyalty.py``: it changes how the document presents the
    line, never the receipt's VAT per rate). ``where`` filters the receipts (alias ``o``).
    """
    return f"""(
    select o.orderid, g.vat_rate, g.n as lines, g.net, g.line_vat, o.money_net, o.money_vat
    from (
        select r.orderid, r.vat_rate, sum(r.money_net) as net, sum(r.money_vat) as line_vat,
               sum(greatest(1, ceil(abs(r.quantity))))::int as n
        from sitoo_erp.sitoo_order_row r
        where r.orderid in (select orderid from {orders})
        group by r.orderid, r.vat_rate
    ) g
    join {orders} o on o.orderid = g.orderid
    where {where}
)"""


__all__ = [
    "ALLOCATED",
    "HALF_CENT",
    "LINES",
    "RECEIPT_GROSS",
    "RECEIPT_NET",
    "RateLines",
    "ReceiptVat",
    "VatInconsistent",
    "receipt_vat",
    "receipt_vat_sql",
    "staged_rates_sql",
    "tolerance",
    "tolerance_sql",
]
