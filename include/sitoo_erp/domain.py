"""The ledger's business vocabulary, defined once (no I/O).

*Finalised* decides what may reach the ERP (invariant 3), so it must have one answer everywhere:
the classification that moves receipts through the state ledger, the reconciliation's and stock
snapshot's SQL, the after-posting review and the intents resolver all use the rule table below —
as SQL (``FINALISED_SQL``, ``classification_case``) or as Python (``not_finalised_reason``). The
Sitoo codes are the ones the Sitoo API documents (``orderstateid``, ``paymentstateid``,
``ordertypeid``); state names and reasons live in ``posting/states.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum, StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.sitoo_erp.posting import states as S

# Where a store has no timezone of its own (sitoo_erp.store.timezone, the DAGs' store timezone).
DEFAULT_TIMEZONE = "Europe/London"


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def business_date(moment: datetime, timezone: str | None = None) -> date:
    """The store's trading day: a sale at 23:30 local belongs to that day, whatever UTC says (and a
    run's data interval covers the day it starts on). An unknown timezone falls back to the default."""
    try:
        zone = _zone(timezone or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = _zone(DEFAULT_TIMEZONE)
    return moment.astimezone(zone).date()


# ---------------------------------------------------------------------------- gift cards
# A row that sells (or refunds) a gift card posts to the gift-card document item (a liability), not
# to a SKU item: Sitoo marks it by the gift-card SKU, product group type 30, or a card number.
GIFT_CARD_SKU = "GIFTCARD"
GIFT_CARD_GROUP_TYPE = "30"
GIFT_CARD_ROW_SQL = (  # over sitoo_erp.sitoo_order_row aliased r; the same rule as is_gift_card_row
    f"(coalesce(r.sku, '') = '{GIFT_CARD_SKU}' or coalesce(r.giftcard_number, '') <> '' "
    f"or coalesce(r.additionaldata ->> 'product-group-type', '') = '{GIFT_CARD_GROUP_TYPE}')"
)


def is_gift_card_row(
    sku: str | None, additionaldata: Mapping[str, object], giftcard_number: str | None
) -> bool:
    """The Python side of ``GIFT_CARD_ROW_SQL`` (an empty card number is no card, on both sides)."""
    return (
        sku == GIFT_CARD_SKU
        or str(additionaldata.get("product-group-type", "")) == GIFT_CARD_GROUP_TYPE
        or bool(giftcard_number)
    )


class DocumentKind(StrEnum):
    """What a receipt (or a day, or a store's stock movements) becomes in the ERP."""

    SALE = "sale"
    REFUND = "refund"
    CREDIT_MEMO = "credit_memo"
    STOCK_ADJUSTMENT = "stock_adjustment"
    TENDER_JOURNAL = "tender_journal"  # moves a split-tender receipt to each tender's account


# ---------------------------------------------------------------------------- a receipt's ERP key
# ``SITOO-S-{store}-{receipt key}`` (sale) / ``SITOO-R-…`` (return). The receipt key is the Sitoo
# receipt id (the orderid when a till sent none) in NetSuite's externalId alphabet; staging stores it
# on the order (``sitoo_order.receipt_key``), so no query re-derives it.
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_RECEIPT_EID = re.compile(r"^SITOO-([SR])-(.+)$")


def sanitise_key(text: str) -> str:
    """Map every character outside ``[A-Za-z0-9_-]`` to ``-`` (NetSuite externalId alphabet)."""
    return _UNSAFE.sub("-", text)


def receipt_key(receipt_id: str | None, orderid: int) -> str:
    """The receipt's part of its externalId: the receipt id, else the orderid."""
    return sanitise_key(receipt_id if receipt_id not in (None, "") else str(orderid))


def receipt_external_id(prefix: str, store_externalid: str, key: str) -> str:
    """``SITOO-{S|R}-{store}-{receipt key}``."""
    return f"SITOO-{prefix}-{sanitise_key(store_externalid)}-{key}"


def parse_receipt_external_id(external_id: str, store_externalid: str) -> str | None:
    """The receipt key of one of ``store``'s sale/return externalIds; None if it is not one."""
    m = _RECEIPT_EID.match(external_id)
    prefix = f"{sanitise_key(store_externalid)}-"
    if m is None or not m.group(2).startswith(prefix):
        return None
    return m.group(2)[len(prefix) :] or None


class OrderState(IntEnum):
    OPEN = 0
    CLOSED = 10
    CANCELLED = 20
    ABANDONED = -1


class PaymentState(IntEnum):
    NONE = 0
    PENDING = 10
    RESERVED = 15
    SUCCESSFUL = 20
    CANCELLED = 30
    FAILED = 40


class OrderType(IntEnum):
    ORDER = 10
    BOOKING = 100
    POS_PARKED = 110


@dataclass(frozen=True)
class _Rule:
    """One step of the classification: the first rule that matches decides state and reason."""

    sql: str  # over the staged order ``o``
    matches: Callable[[int | None, int | None, int | None, str | None], bool]
    state: str
    reason: str
    code: str


# In order: a booking, a cancelled/abandoned order or a web order (no till) is never a POS sale;
# an open or unpaid POS order is held until it closes. ``is distinct from`` so that a missing code
# holds the receipt (never lets it through), the same in SQL as in Python.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        f"o.ordertypeid = {OrderType.BOOKING}",
        lambda st, pay, typ, reg: typ == OrderType.BOOKING,
        S.EXCLUDED,
        S.EXCLUDED_BOOKING,
        S.ReasonCode.BOOKING,
    ),
    _Rule(
        f"o.orderstateid = {OrderState.CANCELLED}",
        lambda st, pay, typ, reg: st == OrderState.CANCELLED,
        S.EXCLUDED,
        S.EXCLUDED_CANCELLED,
        S.ReasonCode.CANCELLED,
    ),
    _Rule(
        f"o.orderstateid = {OrderState.ABANDONED}",
        lambda st, pay, typ, reg: st == OrderState.ABANDONED,
        S.EXCLUDED,
        S.EXCLUDED_ABANDONED,
        S.ReasonCode.ABANDONED,
    ),
    _Rule(
        "coalesce(o.registerid, '') = ''",
        lambda st, pay, typ, reg: not reg,
        S.EXCLUDED,
        S.EXCLUDED_NOT_POS,
        S.ReasonCode.NOT_POS,
    ),
    _Rule(
        f"o.orderstateid is distinct from {OrderState.CLOSED} and o.ordertypeid = {OrderType.POS_PARKED}",
        lambda st, pay, typ, reg: st != OrderState.CLOSED and typ == OrderType.POS_PARKED,
        S.HELD,
        S.NOT_FINALISED_PARKED,
        S.ReasonCode.NOT_FINALISED_PARKED,
    ),
    _Rule(
        f"o.orderstateid is distinct from {OrderState.CLOSED}",
        lambda st, pay, typ, reg: st != OrderState.CLOSED,
        S.HELD,
        S.NOT_FINALISED_OPEN,
        S.ReasonCode.NOT_FINALISED_OPEN,
    ),
    _Rule(
        f"o.paymentstateid is distinct from {PaymentState.SUCCESSFUL}",
        lambda st, pay, typ, reg: pay != PaymentState.SUCCESSFUL,
        S.HELD,
        S.NOT_FINALISED_PAYMENT,
        S.ReasonCode.NOT_FINALISED_PAYMENT,
    ),
)

# A finalised POS receipt: closed, paid, not a booking, rung up on a till. The one SQL fragment.
FINALISED_SQL = (
    f"(o.orderstateid = {OrderState.CLOSED} and o.paymentstateid = {PaymentState.SUCCESSFUL}"
    f" and o.ordertypeid is distinct from {OrderType.BOOKING} and coalesce(o.registerid, '') <> '')"
)


_READY = _Rule("true", lambda st, pay, typ, reg: True, S.HELD, S.READY, S.ReasonCode.READY)


def _rule_for(
    orderstateid: int | None, paymentstateid: int | None, ordertypeid: int | None, registerid: str | None
) -> _Rule:
    for rule in _RULES:
        if rule.matches(orderstateid, paymentstateid, ordertypeid, registerid):
            return rule
    return _READY


def classify_order(
    orderstateid: int | None, paymentstateid: int | None, ordertypeid: int | None, registerid: str | None
) -> tuple[str, str]:
    """(state, reason) of a staged, not yet posted order: ``held``/``ready to post`` if finalised."""
    rule = _rule_for(orderstateid, paymentstateid, ordertypeid, registerid)
    return rule.state, rule.reason


def reason_code(
    orderstateid: int | None, paymentstateid: int | None, ordertypeid: int | None, registerid: str | None
) -> str:
    """The ``order_state.reason_code`` classification gives the order (``ready`` if finalised)."""
    return _rule_for(orderstateid, paymentstateid, ordertypeid, registerid).code


def not_finalised_reason(
    orderstateid: int | None, paymentstateid: int | None, ordertypeid: int | None, registerid: str | None
) -> str | None:
    """Why the order is not a finalised POS receipt (a state-ledger reason), or None if it is."""
    _, reason = classify_order(orderstateid, paymentstateid, ordertypeid, registerid)
    return None if reason == S.READY else reason


def is_finalised(
    orderstateid: int | None, paymentstateid: int | None, ordertypeid: int | None, registerid: str | None
) -> bool:
    return not_finalised_reason(orderstateid, paymentstateid, ordertypeid, registerid) is None


def classification_case() -> tuple[str, str, str]:
    """The SQL ``case`` expressions (state, reason, reason code) of ``classify_order``, over the
    staged order ``o``."""
    state = " ".join(f"when {r.sql} then '{r.state}'" for r in _RULES)
    reason = " ".join(f"when {r.sql} then '{r.reason}'" for r in _RULES)
    code = " ".join(f"when {r.sql} then '{r.code}'" for r in _RULES)
    return (
        f"case {state} else '{S.HELD}' end",
        f"case {reason} else '{S.READY}' end",
        f"case {code} else '{S.ReasonCode.READY}' end",
    )
