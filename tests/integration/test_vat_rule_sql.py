"""The VAT-per-rate rule has one definition: its SQL rendering (gate, reconciliation) agrees with Python.

Receipts from the first-principles till of ``tests/property/test_tax_properties.py`` (net or
VAT-inclusive, per line or per receipt), some bent by a few pennies or by more than rounding explains,
are evaluated by :func:`receipt_vat` and by :func:`receipt_vat_sql` on a real PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sitoo_erp.posting.vat import RateLines, VatInconsistent, receipt_vat, receipt_vat_sql
from tests.property.test_tax_properties import baskets, tills

D = Decimal


def _receipt(till, basket, bend_cents: int, bend_net: bool):
    header, rows, _ = till.ring_up(basket)
    by_rate: dict[Decimal, list] = {}
    for r in rows:
        x = by_rate.setdefault(r["vat_rate"], [0, D(0), D(0)])
        x[0] += 1
        x[1] += r["money_net"]
        x[2] += r["money_vat"]
    rates = {r: RateLines(n, net, vat) for r, (n, net, vat) in by_rate.items()}
    money_vat = header["money_vat"] + D(bend_cents) / 100
    money_net = header["money_net"] + (D("0.01") if bend_net else D(0))
    return rates, money_net, money_vat


def test_sql_and_python_give_the_same_vat_net_and_verdict(staging_conn):
    conn = staging_conn
    cases: list[tuple] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        till=tills,
        basket=baskets,
        bend=st.sampled_from([0, 0, 0, 1, -1, 2, -3, 9, -40]),
        bend_net=st.booleans() | st.just(False),
    )
    def collect(till, basket, bend, bend_net):
        cases.append(_receipt(till, basket, bend, bend_net))

    collect()
    values, expected = [], {}
    for oid, (rates, money_net, money_vat) in enumerate(cases):
        for rate, x in rates.items():
            values.append((oid, rate, x.lines, x.net, x.vat, money_net, money_vat))
        try:
            got = receipt_vat(rates, money_net, money_vat)
            expected[oid] = ("ok", got.vat_by_rate, got.net_by_rate)
        except VatInconsistent as exc:
            expected[oid] = ("rejected", exc.rule, None)
    assert {e[0] for e in expected.values()} == {"ok", "rejected"}  # both verdicts are exercised

    conn.execute(
        "create temp table q (orderid int, vat_rate numeric(7,3), lines int, net numeric(14,2), "
        "line_vat numeric(14,2), money_net numeric(14,2), money_vat numeric(14,2))"
    )
    with conn.cursor() as cur:
        cur.executemany("insert into q values (%s, %s, %s, %s, %s, %s, %s)", values)
    rows = conn.execute(
        f"select orderid, vat_rate, pos_vat, pos_net, line_vat, tolerance, money_vat from ({receipt_vat_sql('q')}) t"
    ).fetchall()
    sql: dict[int, dict] = {}
    for oid, rate, pos_vat, pos_net, line_vat, tol, money_vat in rows:
        s = sql.setdefault(oid, {"vat": {}, "net": {}, "bad": False, "money_vat": money_vat})
        s["vat"][D(rate).normalize()] = pos_vat
        s["net"][D(rate).normalize()] = pos_net
        s["bad"] |= abs(pos_vat - line_vat) > tol or pos_net is None
    for oid, s in sql.items():
        s["bad"] |= sum(s["vat"].values()) != s["money_vat"]
        verdict, vat_by_rate, net_by_rate = expected[oid]
        assert s["bad"] == (verdict == "rejected"), (oid, cases[oid], s, expected[oid])
        if verdict == "ok":
            assert s["vat"] == {D(r).normalize(): v for r, v in vat_by_rate.items()}, (oid, cases[oid])
            assert s["net"] == {D(r).normalize(): v for r, v in net_by_rate.items()}, (oid, cases[oid])
