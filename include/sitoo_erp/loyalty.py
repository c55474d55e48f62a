"""One loyalty vocabulary, from Sitoo's documentation: what staging, the gate, documents and reconciliation read.

What Sitoo documents (reference sitoo-api.md 2.4 and 2.8; the OpenAPI schemas
``orderitem-additionaldata-read`` / ``order-additionaldata-read`` of the public ``sitoo-client``):

- a **bonus cheque** is redeemed on a **row**: ``additionaldata["crm-bonuscheckid"]`` (or
  ``customcrm-bonuscheckid``, a custom CRM), "ID of bonus check used". Its value is in the row's price,
  like any discount: ``moneyoriginalprice - moneydiscountedprice = moneydiscount`` per unit, **net**,
  and ``moneyitemtotal_net`` / ``_vat`` are the row *after* it. ``vouchercode`` is ``""`` (the Z-report
  lists bonus cheques under the empty code);
- the **member** is on the order (``crm-membernumber``, ``crm-customerid``, ``customcrm-*``,
  ``voyado-*``): who, never how much. Sitoo defines **no amount key**; this module reads none (the
  receipt-level ``loyalty-moneydiscount*`` keys an earlier version invented are gone: no till writes
  them, so reading them could only ever double-count).

So a row carrying a bonus cheque is **loyalty** (invariant 5: posted at document level on the
``loyalty_discount`` document item): its discount is ``moneydiscount x quantity`` (net, POS sign:
negative on a return of such a row) and its VAT at the row's rate R is ``round(net x R/100)`` HALF_UP,
one rounding per row (the "per line from net" convention of ``posting/vat.py``: Sitoo keeps only
net unit prices, so the cheque's VAT-inclusive face value cannot be recovered exactly; the receipt's
VAT per rate is untouched either way, see below). The document's line posts at the **original**
price (row net + loyalty net, row VAT + loyalty VAT) and the discount carries ``-loyalty`` per rate,
so per rate the ERP's net and tax are the till's rows, to the penny, and the gross is the receipt.

``crm-promotionid`` / ``customcrm-promotionid`` ("ID of promotion used") is **a campaign**, not
loyalty: a CRM promotion is a price offer for members (a member price, "20 % off for members"), a
price reduction with no face value the member earned or the retailer owes, exactly what invariant 5
keeps in the line price. A bonus cheque is value the member earned and redeems like a voucher, a
cost of the loyalty programme finance tracks on its own item. A row carrying both is loyalty (the
cheque is what the discount redeems).

A bonus-cheque row whose ``moneydiscount`` is negative or larger than ``moneyoriginalprice`` cannot be
split into an original price and a discount: rule ``loyalty.row_discount`` (the gate's
``loyalty_row_discount``), a malformed payload, never a VAT difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

BONUS_CHEQUE_KEYS = ("crm-bonuscheckid", "customcrm-bonuscheckid")  # row: loyalty
PROMOTION_KEYS = ("crm-promotionid", "customcrm-promotionid")  # row: a campaign (stays in the price)
MEMBER_KEYS = (
    "crm-membernumber",
    "crm-customerid",
    "customcrm-membernumber",
    "customcrm-contactid",
    "voyado-membernumber",
    "voyado-contactid",
)  # order: who the member is
ROW_DISCOUNT_FIELD = "sitoo_order_row.discount_unit"
ROW_DISCOUNT_RULE = "loyalty.row_discount"

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


class LoyaltyError(ValueError):
    """A bonus-cheque row whose discount cannot be posted: names the field and the rule."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(message)
        self.field, self.rule = field, rule


def bonus_cheque(row_additionaldata: Mapping[str, Any]) -> str | None:
    """The bonus cheque a row redeems (``crm-bonuscheckid``, else ``customcrm-bonuscheckid``), or None."""
    for key in BONUS_CHEQUE_KEYS:
        value = row_additionaldata.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def row_loyalty(
    row_additionaldata: Mapping[str, Any],
    quantity: Decimal,
    discount_unit: Decimal | None,
    original_unit_price: Decimal | None,
    rate: Decimal,
) -> tuple[Decimal, Decimal]:
    """(net, VAT) of the row's bonus cheque, POS sign (negative on a return); (0, 0) without one."""
    if bonus_cheque(row_additionaldata) is None or not discount_unit:
        return ZERO, ZERO
    if discount_unit < 0 or (original_unit_price is not None and discount_unit > original_unit_price):
        raise LoyaltyError(
            f"bonus cheque {bonus_cheque(row_additionaldata)}: moneydiscount {discount_unit} per unit is "
            f"{'negative' if discount_unit < 0 else f'above moneyoriginalprice {original_unit_price}'}",
            field=ROW_DISCOUNT_FIELD,
            rule=ROW_DISCOUNT_RULE,
        )
    net = (discount_unit * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
    return net, vat_of(net, rate)


def vat_of(net: Decimal, rate: Decimal) -> Decimal:
    """VAT of a loyalty net at ``rate``: one HALF_UP rounding (symmetric for negative amounts)."""
    return (net * rate / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def reference(
    additionaldata: Mapping[str, Any], rows_additionaldata: Iterable[Mapping[str, Any]] = ()
) -> str | None:
    """The bonus cheque(s) a receipt redeems, from its rows (Sitoo's place), comma-separated; or None."""
    seen: list[str] = []
    for ad in rows_additionaldata:
        cheque = bonus_cheque(ad)
        if cheque and cheque not in seen:
            seen.append(cheque)
    return ", ".join(seen) if seen else None


def is_bonus_row_sql(row: str) -> str:
    """SQL: the staged row ``row`` (alias of ``sitoo_order_row``) carries a bonus cheque."""
    return " or ".join(f"coalesce({row}.additionaldata ->> '{k}', '') <> ''" for k in BONUS_CHEQUE_KEYS)


def row_net_sql(row: str) -> str:
    """SQL: the staged row's loyalty net (POS sign), the same rule as :func:`row_loyalty`."""
    return (
        f"(case when ({is_bonus_row_sql(row)}) then round(coalesce({row}.discount_unit, 0) * {row}.quantity, 2) "
        "else 0 end)"
    )


def row_vat_sql(row: str) -> str:
    """SQL: the staged row's loyalty VAT (POS sign), one rounding of its net at the row's rate."""
    return f"round({row_net_sql(row)} * {row}.vat_rate / 100, 2)"


def row_discount_invalid_sql(row: str) -> str:
    """SQL: a bonus-cheque row whose discount cannot be split off (rule ``loyalty.row_discount``)."""
    return (
        f"(({is_bonus_row_sql(row)}) and coalesce({row}.discount_unit, 0) <> 0 and ({row}.discount_unit < 0 "
        f"or ({row}.original_unit_price is not null and {row}.discount_unit > {row}.original_unit_price)))"
    )
