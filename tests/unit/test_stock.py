"""Pure logic of the daily stock job: business day, keys, the stock suite's SQL, the drift report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from include.sitoo_erp.domain import business_date
from include.sitoo_erp.notify.drift_report import render_drift_report
from include.sitoo_erp.quality.rules import RESULT_COLUMNS, Rule
from include.sitoo_erp.quality.suites import ALL_SUITES
from include.sitoo_erp.quality.suites.stock_drift import BATCH_TABLE, REPORT_ONLY, SUITE
from include.sitoo_erp.staging.exceptions import ExceptionKind
from include.sitoo_erp.stock.gate import StockGateOptions
from include.sitoo_erp.stock.jobs import day_start_utc
from include.sitoo_erp.stock.movements import SALE_TYPES, adjustment_external_id


def test_external_id_is_one_per_store_and_day():
    assert adjustment_external_id("ST001", date(2026, 11, 16)) == "SITOO-ADJ-ST001-20261116"
    assert {30, 40} == SALE_TYPES


@pytest.mark.parametrize(
    ("start", "zone", "day"),
    [
        (datetime(2026, 11, 16, 2, 30, tzinfo=UTC), "Europe/London", date(2026, 11, 16)),
        # 02:30 local in summer is 01:30 UTC: still the same local business day
        (datetime(2026, 7, 1, 1, 30, tzinfo=UTC), "Europe/London", date(2026, 7, 1)),
        (datetime(2026, 11, 15, 23, 30, tzinfo=UTC), "Europe/Stockholm", date(2026, 11, 16)),
    ],
)
def test_business_date_is_the_local_date_the_interval_starts_on(start, zone, day):
    assert business_date(start, zone) == day


def test_store_day_window_follows_dst():
    spring = date(2026, 3, 29)  # Europe/London springs forward: a 23-hour day
    length = day_start_utc(spring + timedelta(days=1), "Europe/London") - day_start_utc(
        spring, "Europe/London"
    )
    assert length == timedelta(hours=23)


def test_stock_suite_binds_like_gx_and_returns_the_contract_columns():
    SUITE.check()
    opts = StockGateOptions(snapshot_id=7, business_date=date(2026, 11, 16), unit_tolerance="1")
    for rule in SUITE.rules:
        sql = rule.for_batch(opts.tokens(), batch=BATCH_TABLE)
        assert "__" not in sql and "{" not in sql
        head = sql.lower().split("from", 1)[0]
        for col in RESULT_COLUMNS:
            assert col in head, (rule.name, col)
    assert "b.snapshot_id = 7" in SUITE.rule("drift_within_tolerance").for_batch(opts.tokens(), BATCH_TABLE)
    assert "abs(b.drift_units) > 1" in SUITE.rule("drift_within_tolerance").for_batch(
        opts.tokens(), BATCH_TABLE
    )
    assert {r.name for r in SUITE.rules} >= REPORT_ONLY
    assert SUITE not in ALL_SUITES  # the receipt gate's suites are unchanged


def test_rule_check_refuses_sqlalchemy_bind_syntax():
    bad = Rule("x", ExceptionKind.STOCK_DRIFT, "select 'a' || ':b' from {batch} b join t on true", "d")
    with pytest.raises(ValueError, match="bind parameter"):
        bad.check()
    Rule(
        "ok", ExceptionKind.STOCK_DRIFT, "select null::text, '02:30' from {batch} b join t on true", "d"
    ).check()
    for suite in ALL_SUITES:
        suite.check()


def _summary(**over):
    base = {
        "snapshot_id": 1,
        "business_date": "2026-11-16",
        "suite": "stock_drift@1.0.0",
        "rule_success": {"sku_in_both_systems": True, "drift_within_tolerance": False},
        "rule_counts": {"drift_within_tolerance": 1},
        "rule_descriptions": {"drift_within_tolerance": "within tolerance"},
        "sample_details": {"drift_within_tolerance": ["store ST002 SKU <b>X</b>: drift 3 units"]},
        "totals": {"skus_compared": 100, "skus_drifting": 1, "drift_value_abs": "12.30", "locations": 2},
        "top_locations": [{"store_externalid": "ST002", "location_id": "1002", "drift_value_abs": "12.30"}],
        "top_skus": [
            {"store_externalid": "ST002", "location_id": "1002", "sku": "<script>", "drift_units": "3"}
        ],
        "unit_tolerance": "0",
        "value_tolerance": "0.00",
        "notes": [],
        "success": False,
        "checks": [
            {"check": "drift_within_tolerance", "rule": "drift_within_tolerance", "count": 1,
             "label": "1 SKU/location pair drifting beyond tolerance", "units": "3", "value": "12.30"}
        ],
    }  # fmt: skip
    base.update(over)
    return base


def test_drift_report_names_location_sku_and_value_and_escapes_pos_text():
    subject, html = render_drift_report(_summary(), "http://airflow/x")
    assert "2026-11-16" in subject and "12.30" in subject and "drift_within_tolerance" in subject
    assert subject.startswith("[sitoo-erp] 1 SKU/location pair drifting beyond tolerance (value 12.30) — ")
    assert "1002" in html and "12.30" in html and "No stock was changed" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;X&lt;/b&gt;" in html


def test_drift_subject_leads_with_the_failing_check_and_its_own_figures():
    # The mail that said "0 SKU/location pairs drifting, value 9610.80" when 10 SKUs were missing in
    # the ERP: the value was the missing SKUs' Sitoo stock, the drift count the passing check's.
    summary = _summary(
        rule_success={"sku_in_both_systems": False, "drift_within_tolerance": True},
        rule_counts={"sku_in_both_systems": 14},
        totals={"skus_compared": 900, "skus_drifting": 0, "missing_in_erp": 14, "drift_value_abs": "9610.80"},
        checks=[
            {"check": "missing_in_erp", "rule": "sku_in_both_systems", "count": 10, "rows": 14,
             "label": "10 SKUs missing in the ERP", "units": "212", "value": "9610.80"}
        ],
    )  # fmt: skip
    subject, html = render_drift_report(summary)
    assert subject.startswith(
        "[sitoo-erp] 10 SKUs missing in the ERP (value 9610.80) — Stock drift check failed 2026-11-16"
    ), subject
    assert "drifting" not in subject and "sku_in_both_systems" in subject
    assert "<h3>What failed</h3>" in html and "10 SKUs missing in the ERP" in html


def test_drift_report_when_everything_passes():
    subject, _ = render_drift_report(_summary(rule_success={"a": True}, success=True))
    assert "within tolerance" in subject
