"""Reconciliation without a database: period resolution, SuiteQL helpers, document classification, report escaping."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from include.sitoo_erp.domain import business_date
from include.sitoo_erp.erp.netsuite_ledger import (
    ErpDocument,
    days_per_page,
    dec,
    doc_counts_sql,
    documents_sql,
    fetch_documents,
    fetch_totals,
    tax_totals_sql,
)
from include.sitoo_erp.notify.reconciliation_report import (
    CSV_COLUMNS,
    _csv_safe,
    build_report,
    daily_chart_svg,
)
from include.sitoo_erp.reconciliation.compare import OWNER, _classify_documents, _doc_line
from include.sitoo_erp.reconciliation.period import PAD, Period, closed_month, resolve_period

D = Decimal


# ------------------------------------------------------------------------------------------ period
def test_params_win_over_the_monthly_interval():
    p = resolve_period(
        {"date_from": "2026-11-02", "date_to": "2026-11-08", "stores": "ST002, ST001,,ST002"},
        datetime(2026, 10, 31, 23, 0, tzinfo=UTC),
    )
    assert (p.date_from, p.date_to, p.stores) == (date(2026, 11, 2), date(2026, 11, 8), ("ST001", "ST002"))
    assert len(p.days) == 7 and p.label == "2026-11-02..2026-11-08 stores ST001,ST002"


def test_one_date_given_is_a_one_day_check_and_datetimes_are_accepted():
    assert resolve_period({"date_to": "2026-11-30"}, None).days == [date(2026, 11, 30)]
    p = resolve_period({"date_from": datetime(2026, 11, 5, 13, tzinfo=UTC), "stores": ["ST009"]}, None)
    assert (p.date_from, p.date_to, p.stores) == (date(2026, 11, 5), date(2026, 11, 5), ("ST009",))


def test_empty_params_fall_back_to_the_closed_month():
    # dag.test(run_conf={...: None}) and a trigger form left empty look like this
    p = resolve_period({"date_from": None, "date_to": "", "stores": []}, datetime(2026, 11, 3, 6, tzinfo=UTC))
    assert (p.date_from, p.date_to, p.stores) == (date(2026, 11, 1), date(2026, 11, 30), ())


@pytest.mark.parametrize(
    ("start", "tz", "month"),
    [
        # the interval starts at local midnight on the 1st: in UTC that is still the previous month
        (datetime(2026, 3, 31, 23, 0, tzinfo=UTC), "Europe/London", (date(2026, 4, 1), date(2026, 4, 30))),
        (
            datetime(2026, 10, 31, 22, 0, tzinfo=UTC),
            "Europe/Helsinki",
            (date(2026, 11, 1), date(2026, 11, 30)),
        ),
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "Europe/London", (date(2026, 11, 1), date(2026, 11, 30))),
        (datetime(2028, 2, 1, 5, 0, tzinfo=UTC), "America/New_York", (date(2028, 2, 1), date(2028, 2, 29))),
        (datetime(2027, 2, 1, 12, 0, tzinfo=UTC), "Europe/London", (date(2027, 2, 1), date(2027, 2, 28))),
        (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "Europe/London", (date(2026, 12, 1), date(2026, 12, 31))),
    ],
)
def test_closed_month_is_the_local_month_of_the_interval_start(start, tz, month):
    assert closed_month(start, tz) == month
    p = resolve_period({}, start, tz)
    assert (p.date_from, p.date_to) == month and len(p.days) == (month[1] - month[0]).days + 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-11-08", "date_to": "2026-11-02"}, "before date_from"),
        ({"date_from": "2026-01-01", "date_to": "2026-06-30"}, "at most 93 days"),
        ({"date_from": "30/11/2026"}, "date_from must be a date"),
        ({"date_to": "2026-11-31"}, "date_to must be a date"),
        ({}, "no date range"),
    ],
)
def test_bad_ranges_are_refused_with_a_message(params, message):
    with pytest.raises(ValueError, match=message):
        resolve_period(params, None)


@pytest.mark.parametrize(
    ("local_moment", "tz"),
    [
        ("2026-11-30T23:30:00", "Europe/London"),  # GMT in winter: 23:30 UTC, still 30 November
        ("2026-11-30T23:30:00", "America/New_York"),  # 04:30 UTC on 1 December
        ("2026-11-30T23:59:59", "Pacific/Kiritimati"),  # UTC+14: 09:59 UTC on 30 November
        ("2026-11-30T23:30:00", "Pacific/Pago_Pago"),  # UTC-11: 10:30 UTC on 1 December
    ],
)
def test_a_sale_late_on_the_last_evening_belongs_to_the_month_and_the_sweep_window(local_moment, tz):
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(local_moment).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
    assert business_date(moment, tz) == date(2026, 11, 30)
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    start, end = period.utc_window()
    assert start <= moment < end
    assert (start, end) == (datetime(2026, 11, 1, tzinfo=UTC) - PAD, datetime(2026, 12, 1, tzinfo=UTC) + PAD)
    # and the first morning of the month in the earliest timezone is inside the window too
    first = datetime(2026, 11, 1, 0, 0, tzinfo=ZoneInfo("Pacific/Kiritimati")).astimezone(UTC)
    assert start <= first and business_date(first, "Pacific/Kiritimati") == date(2026, 11, 1)


# ------------------------------------------------------------------------------------ SuiteQL helpers
def test_dec_reads_suiteql_strings_and_missing_values():
    assert (
        dec("12.346") == D("12.35")
        and dec("0.30000000000000004") == D("0.30")
        and dec(None) == dec("") == D("0.00")
        and dec(-3) == D("-3.00")
    )


def test_location_filter_only_takes_numeric_ids():
    sql = tax_totals_sql(date(2026, 11, 1), date(2026, 11, 2), ["12", 3, "12"])
    assert "tl.location IN (12, 3)" in sql and "t.externalid LIKE 'SITOO-%'" in sql
    assert "TO_DATE('2026-11-01', 'YYYY-MM-DD')" in sql and "t.trandate < TO_DATE('2026-11-02'" in sql
    assert (
        "IN ("
        not in doc_counts_sql(date(2026, 11, 1), date(2026, 11, 2)).split("t.type IN")[1].split("AND")[1]
    )
    with pytest.raises(ValueError, match="numeric"):
        tax_totals_sql(date(2026, 11, 1), date(2026, 11, 2), ["1) OR (1=1"])
    with pytest.raises(ValueError, match="numeric"):
        documents_sql(date(2026, 11, 1), "7 OR 1=1")


def test_totals_are_summed_in_pos_sign_in_the_erp_and_chunked_to_fit_one_page():
    sql = tax_totals_sql(date(2026, 11, 1), date(2026, 11, 4))
    assert "CASE WHEN t.type = 'CashSale' THEN td.taxbasis ELSE -td.taxbasis END" in sql
    assert "GROUP BY tl.location, t.trandate, td.taxcode ORDER BY tl.location, t.trandate, td.taxcode" in sql
    assert "GROUP BY tl.location, t.trandate ORDER BY tl.location, t.trandate" in doc_counts_sql(
        date(2026, 11, 1), date(2026, 11, 4)
    )
    assert days_per_page(100, 3) == 3 and days_per_page(400, 3) == 1 and days_per_page(0, 0) == 1000


def test_fetch_totals_turns_document_sign_into_pos_sign_and_chunks_days():
    seen: list[str] = []

    def query(sql: str):
        seen.append(sql)
        if "td.taxbasis" in sql:
            return [
                {"location_id": 5, "trandate": "2026-11-01", "trantype": "CashSale", "tax_code_id": 9,
                 "tax_basis": "100.00", "tax_amount": "25.00"},
                {"location_id": 5, "trandate": "2026-11-01", "trantype": "CashRfnd", "tax_code_id": 9,
                 "tax_basis": "40.00", "tax_amount": "10.00"},
                {"location_id": 5, "trandate": "2026-11-02 00:00:00", "trantype": "CustCred", "tax_code_id": 9,
                 "tax_basis": "8", "tax_amount": None},
            ]  # fmt: skip
        return [
            {"location_id": 5, "trandate": "2026-11-01", "trantype": "CashSale", "docs": "3"},
            {"location_id": 5, "trandate": "2026-11-01", "trantype": "CashRfnd", "docs": 1},
        ]

    days = [date(2026, 11, 3), date(2026, 11, 1), date(2026, 11, 2)]
    cells, docs, queries = fetch_totals(query, days, None, days_per_query=2)
    assert queries == 4 and len(seen) == 4  # two chunks: 1-2 and 3
    assert "TO_DATE('2026-11-01'" in seen[0] and "TO_DATE('2026-11-03'" in seen[0]
    assert [(c.day, c.net, c.tax) for c in cells[:3]] == [
        (date(2026, 11, 1), D("100.00"), D("25.00")),
        (date(2026, 11, 1), D("-40.00"), D("-10.00")),
        (date(2026, 11, 2), D("-8.00"), D("0.00")),
    ]
    assert docs[("5", date(2026, 11, 1))] == 8  # both chunks answered the same canned rows: 4 + 4


def test_fetch_documents_sums_tax_codes_per_document_in_both_signs():
    rows = [
        {"erp_id": 1, "external_id": "SITOO-R-ST1-9", "trantype": "CashRfnd", "tax_code_id": 9,
         "tax_basis": "10.00", "tax_amount": "2.50"},
        {"erp_id": 1, "external_id": "SITOO-R-ST1-9", "trantype": "CashRfnd", "tax_code_id": 8,
         "tax_basis": "4.00", "tax_amount": "0.00"},
        {"erp_id": 2, "external_id": "SITOO-S-ST1-10", "trantype": "CashSale", "tax_code_id": 9,
         "tax_basis": "20.00", "tax_amount": "5.00"},
    ]  # fmt: skip
    docs = {d.erp_id: d for d in fetch_documents(lambda sql: rows, date(2026, 11, 1), "5")}
    r, s = docs["1"], docs["2"]
    assert (r.doc_net, r.doc_tax, r.net, r.tax) == (D("14.00"), D("2.50"), D("-14.00"), D("-2.50"))
    assert (s.doc_net, s.doc_tax, s.net, s.tax) == (D("20.00"), D("5.00"), D("20.00"), D("5.00"))


# ------------------------------------------------------------------------ document classification
class _Result(list):
    def fetchall(self):
        return list(self)

    def fetchone(self):
        return self[0] if self else None


class FakeConn:
    """Answers the three statements ``_classify_documents`` runs, by the table they read."""

    def __init__(self, log, variance=(), receipts=(), summaries=()):
        self.log, self.variance, self.receipts, self.summaries = log, variance, receipts, summaries
        self.calls: list[tuple[str, tuple]] = []

    def execute(self, sql, params=()):
        self.calls.append((sql, params))
        if "from sitoo_erp.summary_document" in sql:
            return _Result(self.summaries)
        if "from sitoo_erp.posting_log" in sql:
            return _Result(self.log)
        if "receipt_tax_variance" in sql:
            return _Result(self.variance)
        if "from sitoo_erp.sitoo_order o" in sql:
            return _Result(self.receipts)
        raise AssertionError(sql)


DAY = date(2026, 11, 12)


def _doc(erp_id, eid, net, tax, kind="CashSale"):
    s = -1 if kind != "CashSale" else 1
    return ErpDocument(str(erp_id), eid, kind, s * D(net), s * D(tax), D(net), D(tax))


def _log(eid, oid, erp_id, kind, net, tax):
    return (eid, oid, str(erp_id), kind, D(net), D(tax))


def test_matching_documents_give_no_line():
    conn = FakeConn([_log("SITOO-S-ST1-A1", 1, 11, "sale", "10.00", "2.50")])
    assert _classify_documents(conn, "ST1", DAY, [_doc(11, "SITOO-S-ST1-A1", "10.00", "2.50")]) == []


def test_amount_edit_in_the_erp_is_an_amount_mismatch_in_pos_sign():
    conn = FakeConn(
        [
            _log("SITOO-S-ST1-A1", 1, 11, "sale", "10.00", "2.50"),
            _log("SITOO-R-ST1-A2", 2, 12, "refund", "4.00", "1.00"),
        ]
    )
    docs = [
        _doc(11, "SITOO-S-ST1-A1", "15.00", "2.50"),
        _doc(12, "SITOO-R-ST1-A2", "4.00", "1.50", "CashRfnd"),
    ]
    lines = {ln["external_id"]: ln for ln in _classify_documents(conn, "ST1", DAY, docs)}
    sale, refund = lines["SITOO-S-ST1-A1"], lines["SITOO-R-ST1-A2"]
    assert (sale["class"], sale["cause"], sale["explained"]) == (
        "amount_mismatch",
        "erp_amounts_differ",
        False,
    )
    assert (sale["diff_net"], sale["diff_tax"], sale["orderid"]) == (D("-5.00"), D("0.00"), 1)
    # refund: POS sign is negative; the ERP holds 0.50 more tax, no recorded variance explains it
    assert refund["class"] == "amount_mismatch" and (refund["diff_net"], refund["diff_tax"]) == (
        D("0"),
        D("0.50"),
    )
    assert "does not explain it" in refund["detail"]


def test_tax_difference_equal_to_the_recorded_variance_is_explained():
    conn = FakeConn([_log("SITOO-S-ST1-A1", 1, 11, "sale", "10.00", "2.50")], variance=[(1, D("0.01"))])
    (line,) = _classify_documents(conn, "ST1", DAY, [_doc(11, "SITOO-S-ST1-A1", "10.00", "2.49")])
    assert (line["class"], line["cause"], line["explained"]) == ("tax_variance", "recorded_variance", True)
    # a different tax difference is not explained by it
    (line,) = _classify_documents(conn, "ST1", DAY, [_doc(11, "SITOO-S-ST1-A1", "10.00", "2.48")])
    assert line["class"] == "amount_mismatch" and not line["explained"]


def test_logged_but_absent_in_the_erp_is_missing_with_cause_unknown():
    conn = FakeConn([_log("SITOO-R-ST1-A2", 2, 12, "refund", "4.00", "1.00")])
    (line,) = _classify_documents(conn, "ST1", DAY, [])
    assert (line["class"], line["cause"], line["explained"], line["owner"]) == (
        "missing_in_erp", "unknown", False, "finance",
    )  # fmt: skip
    assert (line["diff_net"], line["diff_tax"], line["erp_amount"]) == (D("-4.00"), D("-1.00"), D("0.00"))
    assert "deleted, voided or re-dated" in line["detail"]


def test_second_document_under_the_same_external_id_is_a_duplicate():
    conn = FakeConn([_log("SITOO-S-ST1-A1", 1, 11, "sale", "10.00", "2.50")])
    docs = [_doc(99, "SITOO-S-ST1-A1", "10.00", "2.50"), _doc(11, "SITOO-S-ST1-A1", "10.00", "2.50")]
    (line,) = _classify_documents(conn, "ST1", DAY, docs)
    assert (line["class"], line["erp_id"], line["orderid"]) == ("duplicate_in_erp", "99", 1)
    assert (line["diff_net"], line["diff_tax"]) == (D("-10.00"), D("-2.50"))


def test_unlogged_documents_are_resolved_to_their_receipt_or_named_extra():
    conn = FakeConn(
        [_log("SITOO-S-ST1-A1", 1, 11, "sale", "10.00", "2.50")],
        receipts=[
            (1, "A1", "A1", "posted", "SITOO-S-ST1-A1", "posted", False),  # the receipt behind key "1"
            (3, "A/3", "A-3", "held", None, "ready to post", False),  # a receipt the log never saw
        ],
    )
    docs = [
        _doc(11, "SITOO-S-ST1-A1", "10.00", "2.50"),
        _doc(20, "SITOO-S-ST1-1", "10.00", "2.50"),
        _doc(21, "SITOO-S-ST1-A-3", "7.00", "0.00"),
        _doc(22, "SITOO-S-ST1-GHOST", "1.00", "0.25"),
        _doc(23, "SITOO-S-ST9-A1", "1.00", "0.25"),  # another store's prefix: never this store's receipt
    ]
    got = {
        ln["erp_id"]: (ln["class"], ln["cause"], ln["orderid"])
        for ln in _classify_documents(conn, "ST1", DAY, docs)
    }
    assert got == {
        "20": ("duplicate_in_erp", "duplicate", 1),
        "21": ("extra_in_erp", "not_logged", 3),
        "22": ("extra_in_erp", "no_receipt", None),
        "23": ("extra_in_erp", "no_receipt", None),
    }
    lookup = next(p for sql, p in conn.calls if "from sitoo_erp.sitoo_order o" in sql)
    assert lookup == ("ST1", ["1", "A-3", "GHOST"], ["1", "A-3", "GHOST"])


def test_an_unlogged_document_names_the_remedy_that_applies_to_its_receipt():
    """Only a receipt the hourly run will post again gets "re-PUTs the same key"; a lost answer with
    an open intent is recorded from the ERP; an excluded receipt's document is finance's to reverse."""
    conn = FakeConn(
        [],
        receipts=[
            (1, "A1", "A1", "held", None, "ready to post", False),
            (2, "A2", "A2", "held", None, "ready to post", True),
            (3, "A3", "A3", "excluded", None, "cancelled in Sitoo", False),
        ],
    )
    docs = [_doc(11, "SITOO-S-ST1-A1", "1.00", "0.25"), _doc(12, "SITOO-S-ST1-A2", "1.00", "0.25"),
            _doc(13, "SITOO-S-ST1-A3", "1.00", "0.25")]  # fmt: skip
    detail = {ln["orderid"]: ln["detail"] for ln in _classify_documents(conn, "ST1", DAY, docs)}
    assert detail[1].endswith("the next hourly run re-PUTs the same key")
    assert "posting intent is open" in detail[2] and "re-PUTs" not in detail[2]
    assert "cancelled in Sitoo" in detail[3] and "finance must reverse" in detail[3]
    assert "re-PUTs" not in detail[3]


def test_doc_line_is_negative_erp_amount_and_every_class_has_an_owner():
    line = _doc_line(
        "extra_in_erp", "no_receipt", "ST1", DAY, _doc(5, "SITOO-S-ST1-X", "3.00", "0.75"), None, "x"
    )
    assert (line["diff_net"], line["diff_tax"], line["sitoo_amount"], line["erp_amount"]) == (
        D("-3.00"), D("-0.75"), D("0.00"), D("3.75"),
    )  # fmt: skip
    assert set(OWNER) >= {"missing_in_erp", "extra_in_erp", "duplicate_in_erp", "amount_mismatch", "tax_variance",
                          "zreport_mismatch", "unexplained_residual"}  # fmt: skip


# ---------------------------------------------------------------------------------------- report
HOSTILE_STORE = 'ST<script>alert("x")</script>'
HOSTILE_SKU = "=cmd|' /C calc'!A0"


class ReportConn:
    """Canned rows for ``build_report``'s five reads."""

    def __init__(self):
        line = dict.fromkeys(CSV_COLUMNS)
        line.update(
            line_id=1, **{"class": "amount_mismatch"}, cause="erp_amounts_differ", explained=False, owner="finance",
            store_externalid=HOSTILE_STORE, business_date=date(2026, 11, 3), orderid=10001,
            receipt_id=HOSTILE_SKU, external_id="SITOO-S-X-<b>1</b>", erp_id="11", sitoo_amount=D("12.50"),
            erp_amount=D("17.50"), diff_net=D("-5.00"), diff_tax=D("0.00"),
            detail=f"@SUM(A1:A9) sku {HOSTILE_SKU} at {HOSTILE_STORE} <img src=x onerror=alert(1)>",
        )  # fmt: skip
        self.lines = [tuple(line[c] for c in CSV_COLUMNS)]

    def execute(self, sql, params=()):
        if "from sitoo_erp.reconciliation_run" in sql:
            summary = {
                "sitoo": {"receipts": 1, "gross": "12.50"}, "erp": {"documents": 1, "gross": "17.50"},
                "lines_by_class": {"amount_mismatch": {"explained": 0, "unexplained": 1, "amount": "5.00"}},
                "unexplained_amount": "5.00", "tax_variance_total": "0.00",
            }  # fmt: skip
            return _Result([(7, "manual__<x>", date(2026, 11, 1), date(2026, 11, 30), [HOSTILE_STORE], "failed",
                             summary, None)])  # fmt: skip
        if "from sitoo_erp.reconciliation_line" in sql:
            return _Result(self.lines)
        if "group by store_externalid" in sql:
            return _Result([(HOSTILE_STORE, 1, 1, D("12.50"), D("17.50"))])
        if "group by business_date" in sql:
            return _Result([(date(2026, 11, 3), D("12.50"), D("17.50"))])
        if "from sitoo_erp.exception" in sql:
            return _Result([("retail_ops<script>", 30.0)])
        raise AssertionError(sql)


def test_report_html_escapes_everything_that_comes_from_data():
    report = build_report(ReportConn(), 7)
    html = report.html
    assert "<script>" not in html and "<img" not in html and "<b>1</b>" not in html
    assert "ST&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "retail_ops&lt;script&gt;" in html
    assert not re.search(r"<script", html, re.I) and not re.search(
        r"\bon\w+=", html.replace("onerror=alert", "")
    )
    assert "<svg" in html and report.subject.startswith(
        "[sitoo-erp] Reconciliation 2026-11-01..2026-11-30: FAILED"
    )


def test_report_csv_neutralises_formulas_and_keeps_numbers():
    report = build_report(ReportConn(), 7)
    rows = list(csv.reader(io.StringIO(report.csv)))
    assert rows[0] == CSV_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["receipt_id"] == "'" + HOSTILE_SKU
    assert row["detail"].startswith("'@SUM(A1:A9)")
    assert row["store_externalid"] == HOSTILE_STORE  # plain text in a CSV, not a formula
    assert row["diff_net"] == "-5.00"  # a negative number stays a number


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("-12.50", "-12.50"),
        ("ST001", "ST001"),
        (D("-1.00"), D("-1.00")),
        (None, None),
    ],
)
def test_csv_safe(value, safe):
    assert _csv_safe(value) == safe


def test_chart_labels_are_escaped_and_values_are_numbers():
    svg = str(
        daily_chart_svg([(date(2026, 11, 1), D("100.00"), D("-20.00")), (date(2026, 11, 2), D("0"), D("0"))])
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>") and svg.count("<rect") == 6
    assert "2026-11-01 Sitoo 100.00" in svg and "2026-11-01 ERP -20.00" in svg
    assert str(daily_chart_svg([])) == "<p>No trading days in the period.</p>"


# ------------------------------------------------------------------------ summary posting mode
def _summary(eid, erp_id, kind, net, tax, status="posted", receipts=12, variance="0.00"):
    return (eid, str(erp_id), kind, D(net), D(tax), D(variance), status, receipts)


def test_a_daily_summary_as_posted_gives_no_line_and_an_edited_one_is_named_with_its_receipts():
    eid = "SITOO-D-ST1-20261112"
    conn = FakeConn([], summaries=[_summary(eid, 31, "sale", "100.00", "20.00")])
    assert _classify_documents(conn, "ST1", DAY, [_doc(31, eid, "100.00", "20.00")]) == []
    (line,) = _classify_documents(conn, "ST1", DAY, [_doc(31, eid, "105.00", "20.00")])
    assert (line["class"], line["cause"], line["explained"]) == (
        "amount_mismatch",
        "erp_amounts_differ",
        False,
    )
    assert line["diff_net"] == D("-5.00") and "daily summary of 12 receipts" in line["detail"]


def test_unlogged_daily_summaries_are_pending_or_named_extra():
    pending, stray = "SITOO-DR-ST1-20261112", "SITOO-D-ST1-20261112-S9"
    conn = FakeConn(
        [], summaries=[_summary(pending, None, "refund", "10.00", "2.00", status="pending", receipts=2)]
    )
    lines = _classify_documents(
        conn,
        "ST1",
        DAY,
        [_doc(41, pending, "10.00", "2.00", kind="CashRfnd"), _doc(42, stray, "7.00", "1.40")],
    )
    by = {ln["external_id"]: ln for ln in lines}
    assert (by[pending]["class"], by[pending]["cause"]) == ("extra_in_erp", "pending_summary")
    assert "re-sends the same key" in by[pending]["detail"] and by[pending]["diff_net"] == D("10.00")
    assert (by[stray]["class"], by[stray]["cause"]) == ("extra_in_erp", "no_receipt")
    assert "no summary document of ST1 2026-11-12" in by[stray]["detail"]


def _summary_row(**over):
    row = {
        "external_id": "SITOO-D-ST1-20261112", "erp_id": "31", "store_externalid": "ST1", "business_date": DAY,
        "document_type": "sale", "supplement": 0, "part": 1, "receipt_count": 3, "line_count": 4,
        "net_amount": D("100.00"), "tax_amount": D("20.00"), "sign": 1, "expected_type": "CashSale",
        "trantype": "CashSale", "erp_date": DAY, "erp_lines": 4, "absent": False,
        "exp_net": D("100.00"), "exp_tax": D("20.00"), "erp_net": D("100.00"), "erp_tax": D("20.00"),
        "code_detail": None, "logged_receipts": 3, "cancelled": 0, "changed": 0, "all_raised": False,
        "moved_orders": None, "moved_receipts": None, "moved": None, "line_qty": D("9.000"),
        "line_item_qty": D("900045.000"), "erp_qty": D("9.000"), "erp_item_qty": D("900045.000"),
        "qty_differs": False,
    }  # fmt: skip
    return {**row, **over}


def test_a_summary_line_names_its_cause_and_is_explained_only_once_finance_has_it():
    from include.sitoo_erp.reconciliation.compare import _summary_line

    moved = {"moved_orders": [7], "moved_receipts": ["R7"], "moved": "receipt R7 (order 7) changed in Sitoo"}
    changed = _summary_row(exp_net=D("90.00"), exp_tax=D("18.00"), changed=1, code_detail="9 …", **moved)
    line = _summary_line(changed)
    assert (line["cause"], line["explained"], line["orderid"]) == ("changed_after_posting", False, 7)
    assert (line["diff_net"], line["diff_tax"]) == (D("-10.00"), D("-2.00"))
    assert "next hourly run raises it" in line["detail"] and "receipt R7 (order 7)" in line["detail"]
    assert _summary_line({**changed, "all_raised": True})["explained"] is True
    # The ERP no longer carries what was posted: whatever moved in Sitoo, the ERP edit is unexplained.
    edited = _summary_line({**changed, "all_raised": True, "erp_net": D("95.00")})
    assert (edited["cause"], edited["explained"]) == ("erp_differs", False)
    # A receipt gone from the summary posting log: the log no longer adds up to the document.
    lost = _summary_line(
        _summary_row(logged_receipts=2, exp_net=D("80.00"), exp_tax=D("16.00"), code_detail="x")
    )
    assert (lost["cause"], lost["explained"], lost["owner"]) == ("receipts_differ", False, "data_engineering")
    assert "posted with 3 receipts" in lost["detail"] and "now names 2" in lost["detail"]
    # A return summary: POS sign.
    ret = _summary_line(_summary_row(sign=-1, document_type="refund", expected_type="CashRfnd",
                                     trantype="CashRfnd", cancelled=1, exp_net=D("90.00"), exp_tax=D("18.00"),
                                     code_detail="x", **moved))  # fmt: skip
    assert (ret["cause"], ret["diff_net"]) == ("cancelled_after_posting", D("10.00"))


def test_a_summary_whose_erp_quantities_differ_from_what_it_was_posted_with_is_an_erp_difference():
    from include.sitoo_erp.reconciliation.compare import _summary_line

    # A line's quantity edited in the ERP (amounts kept): the total quantity differs.
    edited = _summary_line(_summary_row(erp_qty=D("11.000"), erp_item_qty=D("1100055.000"), qty_differs=True))
    assert (edited["cause"], edited["explained"], edited["owner"]) == ("erp_differs", False, "finance")
    assert "item quantity 11 in the ERP, posted with 9" in edited["detail"]
    assert "SITOO-D-ST1-20261112 (ERP id 31, ST1 2026-11-12, 3 receipts)" in edited["detail"]
    assert (edited["diff_net"], edited["diff_tax"]) == (D("0.00"), D("0.00"))
    # The same total quantity on other items (a line dropped, another raised): named by item x quantity.
    moved = _summary_line(_summary_row(erp_item_qty=D("900050.000"), qty_differs=True))
    assert moved["cause"] == "erp_differs"
    assert (
        "same total quantity 9, but item id x quantity 900050 in the ERP, posted with 900045"
        in moved["detail"]
    )
