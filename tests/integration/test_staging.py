"""Staging database on a real PostgreSQL: migrations, idempotent staging, nothing lost."""

from __future__ import annotations

import copy

import psycopg

from include.sitoo_erp.staging.orders import advance_watermark, get_watermark, stage_orders, state_counts
from include.sitoo_erp.staging.schema import current_revision, head_revision, migrate, sqlalchemy_url
from tests.unit.test_sitoo_models import order


def test_migrations_applied_twice_are_a_no_op(postgres):
    url = postgres.ensure_database("migrate_twice")
    try:
        assert migrate(url) == head_revision()
        with psycopg.connect(url) as conn:
            before = conn.execute(
                "select table_name from information_schema.tables where table_schema = 'sitoo_erp' order by 1"
            ).fetchall()
        assert migrate(url) == head_revision()
        with psycopg.connect(url) as conn:
            after = conn.execute(
                "select table_name from information_schema.tables where table_schema = 'sitoo_erp' order by 1"
            ).fetchall()
            versions = conn.execute("select version_num from sitoo_erp.alembic_version").fetchall()
        assert before == after and len(before) >= 12
        assert ",".join(sorted(v for (v,) in versions)) == head_revision()
        from sqlalchemy import create_engine

        assert current_revision(create_engine(sqlalchemy_url(url))) == head_revision()
    finally:
        postgres.drop_database("migrate_twice")


def test_staging_is_idempotent_and_keeps_every_order(staging_conn):
    payloads = [order(orderid=i) for i in range(1, 6)]
    first = stage_orders(staging_conn, payloads)
    assert (first.fetched, first.new, first.changed, first.unchanged) == (5, 5, 0, 0)
    again = stage_orders(staging_conn, copy.deepcopy(payloads))
    assert (again.new, again.changed, again.unchanged) == (0, 0, 5)

    changed = order(orderid=3, orderstateid=20)
    third = stage_orders(staging_conn, [changed])
    assert (third.new, third.changed) == (0, 1)
    assert staging_conn.execute(
        "select orderstateid from sitoo_erp.sitoo_order where orderid = 3"
    ).fetchone() == (20,)
    rows = staging_conn.execute("select count(*) from sitoo_erp.sitoo_order_row").fetchone()[0]
    assert rows == 5  # replaced, not duplicated

    counts = state_counts(staging_conn)
    assert counts["seen"] == 5
    assert counts["seen"] == counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"]


def test_malformed_payload_is_kept_quarantined_and_named(staging_conn):
    bad = order(orderid=7, moneytotal_gross_all="12,50")
    summary = stage_orders(staging_conn, [order(orderid=6), bad])
    assert summary.malformed == 1 and summary.malformed_ids == ["7"]
    raw = staging_conn.execute(
        "select payload->>'moneytotal_gross_all' from sitoo_erp.sitoo_order_raw where orderid = 7"
    )
    assert raw.fetchone() == ("12,50",)  # nothing lost: the raw payload is kept
    state = staging_conn.execute(
        "select state, reason from sitoo_erp.order_state where orderid = 7"
    ).fetchone()
    assert state[0] == "quarantined" and "moneytotal_gross_all" in state[1]
    exc = staging_conn.execute(
        "select kind, orderid, field, rule, message from sitoo_erp.exception where orderid = 7"
    ).fetchall()
    assert len(exc) == 1
    kind, orderid, field, rule, message = exc[0]
    assert (kind, orderid, field) == ("malformed_payload", 7, "moneytotal_gross_all")
    assert rule and "order 7" in message
    # The good order of the same batch went on.
    assert staging_conn.execute(
        "select count(*) from sitoo_erp.sitoo_order where orderid = 6"
    ).fetchone() == (1,)
    # Seeing the same bad payload again is the same exception, not a second one.
    stage_orders(staging_conn, [order(orderid=7, moneytotal_gross_all="12,50", comment="x")])
    assert staging_conn.execute("select count(*), max(occurrences) from sitoo_erp.exception").fetchone() == (
        1,
        2,
    )


def test_order_without_usable_id_becomes_an_exception(staging_conn):
    summary = stage_orders(staging_conn, [order(orderid="abc"), order(orderid=8)])
    assert summary.malformed == 1
    message = staging_conn.execute("select message from sitoo_erp.exception").fetchone()[0]
    assert "orderid must be a positive integer" in message
    assert state_counts(staging_conn)["seen"] == 1


def test_business_date_follows_the_store_timezone(staging_conn):
    # 2026-10-31 23:30 Europe/London (GMT) is 23:30 UTC; 2026-07-31 23:30 BST is 22:30 UTC.
    import datetime as dt

    summer = int(dt.datetime(2026, 7, 31, 22, 30, tzinfo=dt.UTC).timestamp())
    stage_orders(
        staging_conn,
        [
            order(
                orderid=9,
                orderdate=summer,
                additionaldata={"pos-timezone": "Europe/London", "store-externalid": "ST001"},
            )
        ],
    )
    day = staging_conn.execute(
        "select business_date from sitoo_erp.sitoo_order where orderid = 9"
    ).fetchone()[0]
    assert day.isoformat() == "2026-07-31"
    late = summer + 3600  # 23:30 UTC = 00:30 BST on 1 August
    stage_orders(
        staging_conn,
        [
            order(
                orderid=10,
                orderdate=late,
                additionaldata={"pos-timezone": "Europe/London", "store-externalid": "ST001"},
            )
        ],
    )
    day = staging_conn.execute(
        "select business_date from sitoo_erp.sitoo_order where orderid = 10"
    ).fetchone()[0]
    assert day.isoformat() == "2026-08-01"


def test_watermark_only_moves_forward(staging_conn):
    assert get_watermark(staging_conn, "s") is None
    advance_watermark(staging_conn, "s", 100)
    advance_watermark(staging_conn, "s", 50)
    assert get_watermark(staging_conn, "s") == 100


def test_reason_codes_of_a_live_ledger_are_derived_once_by_the_migration(postgres):
    """An upgrade from 0015 codes the rows already in the ledger from their wording; from then on
    every query tests ``reason_code`` (a stalled check, the gate, ignore) and never the wording."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from include.sitoo_erp.staging.schema import _config

    url = postgres.ensure_database("reason_codes")
    try:
        engine = create_engine(sqlalchemy_url(url))
        cfg = _config()
        with engine.begin() as conn:
            conn.execute(text("create schema if not exists sitoo_erp"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0015")
        wording = {
            1: ("held", "staged: awaiting classification", "staged"),
            2: ("held", "ready to post", "ready"),
            3: ("held", "not finalised: parked", "not_finalised_parked"),
            4: ("quarantined", "malformed payload: row 2 vat 'x' is not a number", "malformed_payload"),
            5: ("excluded", "exception ignored by ann: booked by hand", "ignored_by_ops"),
            6: ("quarantined", "quality gate tax.pos_vs_lines [tax_beyond_tolerance]: 0.03", "quality_gate"),
            7: ("quarantined", "unknown_sku: SKU-9 is not in the ERP", "unknown_sku"),
            8: ("posted", "posted as cashSale SITOO-S1-R8 (ERP id 8)", "posted"),
            9: (
                "posted",
                "posted in daily summary SITOO-DS-S1-20261101 (ERP id 9), lines 1, 2",
                "posted_in_summary",
            ),
            10: ("held", "awaiting original sale", "awaiting_original"),
            11: ("excluded", "cancelled in Sitoo", "cancelled"),
        }
        with psycopg.connect(url) as conn:
            conn.execute("set session_replication_role = replica")  # ledger rows without their payloads
            for oid, (state, reason, _) in wording.items():
                conn.execute(
                    "insert into sitoo_erp.order_state (orderid, state, reason) values (%s, %s, %s)",
                    (oid, state, reason),
                )
        assert migrate(url) == head_revision()
        with psycopg.connect(url) as conn:
            coded = dict(conn.execute("select orderid, reason_code from sitoo_erp.order_state").fetchall())
            nullable = conn.execute(
                "select is_nullable from information_schema.columns where table_schema = 'sitoo_erp' "
                "and table_name = 'order_state' and column_name = 'reason_code'"
            ).fetchone()[0]
        assert coded == {oid: code for oid, (_, _, code) in wording.items()}
        assert nullable == "NO"  # a writer that forgets the code fails loudly
    finally:
        postgres.drop_database("reason_codes")
