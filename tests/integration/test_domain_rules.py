"""*Finalised* and *gift-card row* have one answer each: the SQL every query uses and the Python the
checks use agree on every combination, including missing values (evaluated by a real PostgreSQL)."""

from __future__ import annotations

import itertools
import json

from include.sitoo_erp.domain import (
    FINALISED_SQL,
    GIFT_CARD_ROW_SQL,
    OrderState,
    OrderType,
    PaymentState,
    classification_case,
    classify_order,
    is_finalised,
    is_gift_card_row,
    reason_code,
)
from include.sitoo_erp.posting import states as S

ORDER_STATES = [*OrderState, None]
PAYMENT_STATES = [*PaymentState, None]
ORDER_TYPES = [*OrderType, None]
REGISTERS = ["R1", "", None]


def test_sql_and_python_classify_every_combination_alike(staging_conn):
    combos = list(itertools.product(ORDER_STATES, PAYMENT_STATES, ORDER_TYPES, REGISTERS))
    state_case, reason_case, code_case = classification_case()
    rows = staging_conn.execute(
        f"""
        select o.i, {state_case}, {reason_case}, {code_case}, {FINALISED_SQL}
          from unnest(%s::int[], %s::int[], %s::int[], %s::int[], %s::text[])
               as o(i, orderstateid, paymentstateid, ordertypeid, registerid)
         order by o.i
        """,
        (
            list(range(len(combos))),
            [None if c[0] is None else int(c[0]) for c in combos],
            [None if c[1] is None else int(c[1]) for c in combos],
            [None if c[2] is None else int(c[2]) for c in combos],
            [c[3] for c in combos],
        ),
    ).fetchall()
    assert len(rows) == len(combos)
    for (_i, state, reason, code, finalised), combo in zip(rows, combos, strict=True):
        assert (state, reason) == classify_order(*combo), combo
        assert code == reason_code(*combo), combo
        assert (code == S.ReasonCode.READY) == is_finalised(*combo), combo
        assert (code in S.NOT_FINALISED_CODES) == reason.startswith("not finalised"), combo
        assert finalised is True if is_finalised(*combo) else finalised in (False, None), combo
        assert (reason == S.READY) == is_finalised(*combo), combo


def test_the_rules_finance_relies_on():
    closed, paid, sale = OrderState.CLOSED, PaymentState.SUCCESSFUL, OrderType.ORDER
    assert is_finalised(closed, paid, sale, "R1")
    assert is_finalised(closed, paid, OrderType.POS_PARKED, "R1")  # a parked order that closed later
    assert classify_order(closed, paid, OrderType.BOOKING, "R1") == (S.EXCLUDED, S.EXCLUDED_BOOKING)
    assert classify_order(closed, paid, sale, "") == (S.EXCLUDED, S.EXCLUDED_NOT_POS)  # web order
    assert classify_order(OrderState.CANCELLED, paid, sale, "R1") == (S.EXCLUDED, S.EXCLUDED_CANCELLED)
    assert classify_order(OrderState.OPEN, paid, OrderType.POS_PARKED, "R1") == (
        S.HELD,
        S.NOT_FINALISED_PARKED,
    )
    assert classify_order(closed, PaymentState.PENDING, sale, "R1") == (S.HELD, S.NOT_FINALISED_PAYMENT)
    assert classify_order(closed, None, sale, "R1") == (S.HELD, S.NOT_FINALISED_PAYMENT)  # never let through


def test_sql_and_python_agree_on_every_gift_card_row(staging_conn):
    """The gate's SQL (sku_mismatches) and the document builder must call the same rows gift cards:
    otherwise the gate lets a row through as a gift card that the builder posts to a SKU item, or the
    reverse. Sitoo sends ``product-group-type`` as text, but a number must not change the answer."""
    skus = ["GIFTCARD", "giftcard", "SKU-1", "", None]
    groups = [{"product-group-type": "30"}, {"product-group-type": 30}, {"product-group-type": "3"}, {}]
    cards = ["6001-0042", "", None]
    combos = list(itertools.product(skus, groups, cards))
    rows = staging_conn.execute(
        f"""
        select r.i, {GIFT_CARD_ROW_SQL}
          from unnest(%s::int[], %s::text[], %s::jsonb[], %s::text[]) as r(i, sku, additionaldata, giftcard_number)
         order by r.i
        """,
        (
            list(range(len(combos))),
            [c[0] for c in combos],
            [json.dumps(c[1]) for c in combos],
            [c[2] for c in combos],
        ),
    ).fetchall()
    assert len(rows) == len(combos)
    for (_i, sql_says), (sku, ad, card) in zip(rows, combos, strict=True):
        assert sql_says is is_gift_card_row(sku, ad, card), (sku, ad, card)
    # Not a gift card: another SKU (4) x no group 30 (2) x no card number (2); the other 44 are.
    assert sum(1 for _, says in rows if not says) == 16
