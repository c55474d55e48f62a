"""Hostile batches through ``stage_orders`` and ``classify`` on a real PostgreSQL.

For every page of payloads: no crash; nothing silently dropped (each identifiable order is staged
typed, or quarantined with an open exception naming the order, the field and the rule; each
unidentifiable one leaves an ``order ?`` exception); nothing injected reaches SQL (the schema and
its tables are intact, text round-trips verbatim); the state ledger adds up (invariant 1).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sitoo_erp.posting.classify import classify
from include.sitoo_erp.sitoo.models import SitooPayloadError, parse_order
from include.sitoo_erp.staging.orders import canonical_json, stage_orders, state_counts
from tests.property.strategies import fixed_order, hostile_batches, hostile_orders, valid_orders

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STAGING_TABLES = (
    "sitoo_erp.sitoo_payment, sitoo_erp.sitoo_order_row, sitoo_erp.sitoo_order, sitoo_erp.order_state, "
    "sitoo_erp.exception, sitoo_erp.sitoo_order_raw"
)


def _reset(conn) -> None:
    conn.execute(f"truncate {STAGING_TABLES} cascade")
    conn.commit()


def _schema(conn) -> list[tuple]:
    return conn.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'sitoo_erp' order by 1, 2"
    ).fetchall()


def _identifiable(payload) -> int | None:
    oid = payload.get("orderid") if isinstance(payload, dict) else None
    return oid if isinstance(oid, int) and not isinstance(oid, bool) and 0 < oid < 2**63 else None


def _stored(payload):
    """What PostgreSQL keeps of a payload: NUL and lone surrogates as U+FFFD, the rest verbatim."""
    return json.loads(canonical_json(payload))


@pytest.fixture
def conn(staging_conn):
    staging_conn.autocommit = False
    schema = _schema(staging_conn)
    staging_conn.commit()
    yield staging_conn
    staging_conn.rollback()
    assert _schema(staging_conn) == schema, "the staging schema changed"


def check_batch(conn, batch: list) -> None:
    _reset(conn)
    summary = stage_orders(conn, batch)
    conn.commit()
    assert summary.fetched == len(batch)

    last: dict[int, object] = {}
    unidentifiable: set[str] = set()
    for payload in batch:
        oid = _identifiable(payload)
        if oid is None:
            unidentifiable.add(hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16])
        else:
            last[oid] = payload  # a replay of the same orderid in one page: the later one wins

    raw = dict(conn.execute("select orderid, payload from sitoo_erp.sitoo_order_raw").fetchall())
    assert set(raw) == set(last), "every identifiable order is kept raw, nothing else"
    states = {
        o: (s, r) for o, s, r in conn.execute("select orderid, state, reason from sitoo_erp.order_state")
    }
    assert set(states) == set(last), "every identifiable order has exactly one state"

    malformed = 0
    for oid, payload in last.items():
        stored = _stored(payload)
        assert raw[oid] == stored, "raw payload stored verbatim"
        try:
            order = parse_order(stored)
        except SitooPayloadError as err:
            malformed += 1
            state, reason = states[oid]
            assert state == "quarantined" and reason.startswith(f"malformed payload: order {oid}: ")
            rows = conn.execute(
                "select field, rule, message from sitoo_erp.exception "
                "where kind = 'malformed_payload' and orderid = %s and status = 'open'",
                (oid,),
            ).fetchall()
            assert rows == [(err.field, err.rule, str(err)[:2000])]
            field, rule, message = rows[0]
            assert message.startswith(f"order {oid}: field '{field}'") and f"(rule: {rule})" in message
            assert (
                conn.execute("select 1 from sitoo_erp.sitoo_order where orderid = %s", (oid,)).fetchone()
                is None
            )
            continue
        assert states[oid][0] == "held"
        header = conn.execute(
            "select receipt_id, store_externalid, registerid, money_gross, money_net, money_vat, additionaldata "
            "from sitoo_erp.sitoo_order where orderid = %s",
            (oid,),
        ).fetchone()
        assert header == (
            order.receipt_id,
            order.store_externalid,
            order.registerid,
            order.moneytotal_gross_all,
            order.moneyfinal_net,
            order.moneyfinal_vat,
            dict(order.additionaldata),
        ), "typed header round-trips verbatim"
        rows = conn.execute(
            "select orderitemid, sku, productname, quantity, money_net, money_vat from sitoo_erp.sitoo_order_row "
            "where orderid = %s order by orderitemid",
            (oid,),
        ).fetchall()
        expected_rows = sorted(
            (i.orderitemid, i.sku, i.productname, i.quantity, i.moneyitemtotal_net, i.moneyitemtotal_vat)
            for i in order.orderitems
        )
        assert rows == expected_rows, "typed rows round-trip verbatim"
        pays = conn.execute(
            "select name, amount from sitoo_erp.sitoo_payment where orderid = %s order by payment_index",
            (oid,),
        ).fetchall()
        assert pays == [(p.name, p.moneyamount) for p in order.payments]

    anonymous = conn.execute(
        "select subject_key, message, field, rule from sitoo_erp.exception "
        "where kind = 'malformed_payload' and orderid is null and status = 'open'"
    ).fetchall()
    assert {k for k, *_ in anonymous} == unidentifiable, "an unidentifiable payload is never silent"
    for _, message, field, rule in anonymous:
        assert message.startswith("order ?: ") and field == "orderid" and rule

    assert summary.malformed == malformed + sum(1 for p in batch if _identifiable(p) is None)
    assert summary.new == len(last)

    # Classification: no crash, malformed stay quarantined, the ledger still adds up (invariant 1).
    classify(conn)
    conn.commit()
    counts = state_counts(conn)
    assert (
        counts["seen"] == len(last) == sum(counts[s] for s in ("posted", "held", "quarantined", "excluded"))
    )
    after = dict(conn.execute("select orderid, state from sitoo_erp.order_state").fetchall())
    for oid, (state, reason) in states.items():
        if state == "quarantined":
            assert after[oid] == "quarantined", reason

    # Re-staging the same page changes nothing.
    again = stage_orders(conn, batch)
    conn.commit()
    assert again.new == 0 and again.changed == 0


@SETTINGS
@given(batch=hostile_batches())
def test_hostile_batches_are_staged_or_quarantined_never_lost(conn, batch):
    check_batch(conn, batch)


@settings(SETTINGS, max_examples=25)
@given(
    batch=st.lists(valid_orders(), min_size=1, max_size=3),
    text=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
    target=st.sampled_from(("sku", "productname", "receipt", "store", "tender")),
)
def test_any_text_round_trips_verbatim(conn, batch, text, target):
    """Arbitrary unicode (control characters included) in names and keys is data, stored as sent."""
    seen = set()
    batch = [o for o in batch if not (o["orderid"] in seen or seen.add(o["orderid"]))]
    for order in batch:
        if target in ("sku", "productname"):
            order["orderitems"][0][target] = text
        elif target == "receipt":
            order["additionaldata"]["pos-receiptid"] = text
        elif target == "store":
            order["additionaldata"]["store-externalid"] = text
        else:
            order["payments"][0]["name"] = text
    check_batch(conn, batch)


def test_nul_and_lone_surrogates_do_not_fail_the_batch(conn):
    """PostgreSQL cannot store NUL or a lone surrogate: they become U+FFFD; the order still stages."""
    a = fixed_order(1)
    b = fixed_order(2)
    c = fixed_order(3)
    a["orderitems"][0]["productname"] = "Milk\x00 1L"
    b["additionaldata"]["pos-receiptid"] = "R-\ud800-1"  # what json.loads makes of "\\ud800"
    c["additionaldata"]["store-\x00"] = "x"
    check_batch(conn, [a, b, c])
    names = conn.execute("select productname from sitoo_erp.sitoo_order_row where orderid = 1").fetchone()
    assert names == ("Milk\ufffd 1L",)
    receipt = conn.execute("select receipt_id from sitoo_erp.sitoo_order where orderid = 2").fetchone()[0]
    assert receipt.startswith("R-") and "\ufffd" in receipt and receipt.endswith("-1")


@settings(SETTINGS, max_examples=30)
@given(order=hostile_orders(orderid=7, max_mutations=2))
def test_one_bad_order_never_stops_the_good_ones(conn, order):
    """Invariant 7: the run goes on for the rest of the page."""
    good = [fixed_order(oid) for oid in (5, 6)]
    check_batch(conn, [good[0], order, good[1]])
    assert {o for (o,) in conn.execute("select orderid from sitoo_erp.sitoo_order")} >= {5, 6}
