"""One loyalty vocabulary: the ``additionaldata`` keys staging, the gate, documents and reconciliation read.

What Sitoo documents (reference sitoo-api.md 2.4, 2.6, 2.8; the OpenAPI schemas
``order-additionaldata-read`` / ``orderitem-additionaldata-read`` of the public ``sitoo-client``):

- on the **row**: ``crm-bonuscheckid`` / ``customcrm-bonuscheckid`` ("ID of bonus check used") and
  ``crm-promotionid`` / ``customcrm-promotionid``; a discount on a row is in its price
  (``moneydiscount``, ``orderitem-moneyrowdiscount``) and so stays in the line (a campaign price);
- on the **order**: ``crm-customerid``, ``crm-membernumber``, ``customcrm-contactid``,
  ``customcrm-membernumber`` (who the member is), no amount.

Sitoo defines no key for a *receipt-level* loyalty amount; ``additionaldata`` allows any other string
key, so the receipt-level bonus cheque (posted at document level, invariant 5) uses these, in Sitoo's
``money…`` naming and nothing else:

- ``loyalty-moneydiscount``: the gross amount (VAT included, positive);
- ``loyalty-moneydiscount-net-{R}`` / ``loyalty-moneydiscount-vat-{R}``: its split per VAT rate R as
  the POS writes the rate (``20``, ``5``, ``12.5``), positive; net + VAT over the rates = the gross;
- ``crm-bonuscheckid`` on the order (or, Sitoo's documented place, on a row): the cheque's reference.

Without the split a gross amount is split only when the rows carry one VAT rate (net =
round(gross x 100/(100+R))); with several rates it is an error of the payload (rule
``loyalty.split_by_rate``), never a VAT difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

GROSS_KEY = "loyalty-moneydiscount"
NET_PREFIX = "loyalty-moneydiscount-net-"
VAT_PREFIX = "loyalty-moneydiscount-vat-"
REFERENCE_KEYS = ("crm-bonuscheckid", "customcrm-bonuscheckid")  # order, then rows (Sitoo's place)
SPLIT_FIELD = f"additionaldata.{NET_PREFIX}R"
SPLIT_RULE = "loyalty.split_by_rate"

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


class LoyaltyError(ValueError):
    """The loyalty amount cannot be split per VAT rate: names the field and the rule."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(message)
        self.field, self.rule = field, rule


def _money(value: Any, key: str) -> Decimal:
    try:
        out = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise LoyaltyError(
            f"{key} is not a number: {value!r}", field=f"additionaldata.{key}", rule=f"{key}.number"
        ) from exc
    if not out.is_finite():
        raise LoyaltyError(f"{key} is not finite", field=f"additionaldata.{key}", rule=f"{key}.number")
    return out


def split_keys(additionaldata: Mapping[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """{rate as written: (net, vat)} from the per-rate keys, both positive; empty when none."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for key, value in additionaldata.items():
        if not key.startswith(NET_PREFIX) or value in (None, ""):
            continue
        suffix = key[len(NET_PREFIX) :]
        net = abs(_money(value, key))
        vat_key = VAT_PREFIX + suffix
        raw_vat = additionaldata.get(vat_key)
        vat = abs(_money(raw_vat, vat_key)) if raw_vat not in (None, "") else None
        if vat is None:
            vat = (net * Decimal(suffix) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
        if net or vat:
            out[suffix] = (net, vat)
    return out


def gross_amount(additionaldata: Mapping[str, Any]) -> Decimal:
    """The receipt-level loyalty amount incl. VAT (positive): the gross key, else the split's sum."""
    raw = additionaldata.get(GROSS_KEY)
    if raw not in (None, ""):
        return abs(_money(raw, GROSS_KEY)).quantize(CENT)
    return sum((n + v for n, v in split_keys(additionaldata).values()), ZERO).quantize(CENT)


def split_by_rate(
    additionaldata: Mapping[str, Any], gross: Decimal, row_rates: Iterable[Decimal]
) -> dict[Decimal, tuple[Decimal, Decimal]]:
    """{rate: (net, vat)} of the receipt's loyalty discount, positive; ``gross`` when there is no split.

    ``row_rates``: the VAT rates of the receipt's taxable rows (percent, any Decimal scale).
    """
    split = split_keys(additionaldata)
    if split:
        return {Decimal(k): v for k, v in split.items()}
    gross = abs(gross)
    if not gross:
        return {}
    taxable = sorted({Decimal(r) for r in row_rates if r})
    if len(taxable) != 1:
        raise LoyaltyError(
            f"loyalty discount {gross} has no per-rate split ({NET_PREFIX}R / {VAT_PREFIX}R) and the rows "
            f"carry {len(taxable)} VAT rates",
            field=SPLIT_FIELD,
            rule=SPLIT_RULE,
        )
    rate = taxable[0]
    net = (gross * HUNDRED / (HUNDRED + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return {rate: (net, gross - net)}


def reference(
    additionaldata: Mapping[str, Any], rows_additionaldata: Iterable[Mapping[str, Any]] = ()
) -> str | None:
    """The bonus cheque's id: on the order, else on the first row that carries one (Sitoo's place)."""
    for ad in (additionaldata, *rows_additionaldata):
        for key in REFERENCE_KEYS:
            if ad.get(key):
                return str(ad[key])
    return None


def net_at_rate_sql(additionaldata: str, gross: str, rate: str, taxable_rates: str) -> str:
    """SQL: loyalty net at ``rate`` (positive), the same rule as :func:`split_by_rate`.

    ``additionaldata`` (jsonb), ``gross`` (the staged ``loyalty_discount``), ``rate`` (numeric) and
    ``taxable_rates`` (how many non-zero VAT rates the receipt's rows carry) are SQL expressions. A
    gross amount without a split on a multi-rate receipt gives 0 here; the gate quarantines it
    (:func:`missing_split_sql`).
    """
    return _at_rate_sql(additionaldata, gross, rate, taxable_rates, "net")


def vat_at_rate_sql(additionaldata: str, gross: str, rate: str, taxable_rates: str) -> str:
    """SQL: loyalty VAT at ``rate`` (positive); see :func:`net_at_rate_sql`."""
    return _at_rate_sql(additionaldata, gross, rate, taxable_rates, "vat")


def _has_split_sql(additionaldata: str) -> str:
    return (
        f"exists (select 1 from jsonb_object_keys({additionaldata}) k "
        f"where starts_with(k, '{NET_PREFIX}') and {additionaldata} ->> k <> '')"
    )


def _at_rate_sql(additionaldata: str, gross: str, rate: str, taxable_rates: str, part: str) -> str:
    key_net = f"({additionaldata} ->> ('{NET_PREFIX}' || trim_scale({rate})::text))"
    key_vat = f"({additionaldata} ->> ('{VAT_PREFIX}' || trim_scale({rate})::text))"
    net_key = f"abs(coalesce(nullif({key_net}, '')::numeric, 0))"
    if part == "net":
        split_value = net_key
        single = f"round(abs({gross}) * 100 / (100 + {rate}), 2)"
    else:
        split_value = f"abs(coalesce(nullif({key_vat}, '')::numeric, round({net_key} * {rate} / 100, 2)))"
        single = f"abs({gross}) - round(abs({gross}) * 100 / (100 + {rate}), 2)"
    return (
        f"(case when {additionaldata} is null then 0 "
        f"when nullif({key_net}, '') is not null then {split_value} "
        f"when {gross} <> 0 and {rate} <> 0 and {taxable_rates} = 1 "
        f"and not {_has_split_sql(additionaldata)} then {single} else 0 end)"
    )
