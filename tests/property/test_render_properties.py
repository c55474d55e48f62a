"""Hostile POS text through every e-mail the package renders: escaped, never markup, one-line subjects.

The gate alert, the stock drift report, the exceptions digest and the rate-jump alert all show
values that come from tills (receipt ids, SKUs, store ids, tender names, details built from them).
Whatever they contain, the HTML keeps exactly the template's own tags and attributes, and the
subject stays a single header line (no CR/LF: no header injection).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.sitoo_erp.notify.drift_report import render_drift_report
from include.sitoo_erp.notify.gate_alert import render_gate_alert
from include.sitoo_erp.operations.alerts import OwnerDigest, RateJump, render_digest, render_rate_jumps
from tests.property.strategies import HTML_INJECTIONS, hostile_text

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 16, 12, tzinfo=UTC)
text = st.one_of(st.sampled_from(HTML_INJECTIONS), hostile_text)


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[tuple[str, str]] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update((tag, name) for name, _ in attrs)

    handle_startendtag = handle_starttag


def markup(html: str) -> tuple[set[str], set[tuple[str, str]]]:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser.tags, parser.attrs


def assert_inert(html: str, benign_html: str, injected: list[str]) -> None:
    tags, attrs = markup(html)
    ok_tags, ok_attrs = markup(benign_html)
    assert tags <= ok_tags, f"injected tags: {tags - ok_tags}"
    assert attrs <= ok_attrs, f"injected attributes: {attrs - ok_attrs}"
    assert "<script" not in html.lower()
    for value in injected:
        if any(marker in value for marker in ("<script", "<img", "<a href", "<h1>", "</td>")):
            assert value not in html, f"{value!r} reached the HTML unescaped"


def assert_one_line(subject: str) -> None:
    assert "\r" not in subject and "\n" not in subject, repr(subject)
    assert len(subject) <= 250


def gate_summary(t: list[str]) -> dict:
    rule = f"orphaned_transactions.{t[0]}"
    return {
        "batch_size": 40,
        "failed_receipts": 3,
        "systemic": False,
        "suite_success": {"orphaned_transactions": False, t[1]: True},
        "suite_versions": {"orphaned_transactions": "1.0.0"},
        "rule_counts": {rule: 3},
        "rule_kinds": {rule: t[2]},
        "rule_descriptions": {rule: t[3]},
        "stores_affected": {t[4]: 2, "ST001": 1},
        "samples": {rule: [t[5], 10001]},
        "sample_details": {rule: [t[6], f"receipt {t[7]}: 2 payments sum to 9.00"]},
        "owners": {t[2]: t[8]},
        "oldest_open_exception_hours": 2.5,
        "gx_errors": [t[9]],
        "run_label": t[10],
    }


@SETTINGS
@given(st.lists(text, min_size=11, max_size=11))
def test_gate_alert_escapes_everything_from_the_tills(values):
    benign = render_gate_alert(gate_summary([f"v{i}" for i in range(11)]), "http://localhost:8080/run")[1]
    subject, html = render_gate_alert(gate_summary(values), "http://localhost:8080/run")
    assert_inert(html, benign, values)
    assert_one_line(subject)


def drift_summary(t: list[str]) -> dict:
    return {
        "business_date": "2026-11-16",
        "success": False,
        "totals": {"skus_drifting": 2, "drift_value_abs": 12.5, "locations": 1},
        "rule_success": {t[0]: False, "within_tolerance": True},
        "rule_descriptions": {t[0]: t[1]},
        "rule_counts": {t[0]: 2},
        "sample_details": {t[0]: [t[2]]},
        "top_locations": [{"store_externalid": t[3], "location_id": t[4], "drift_value_abs": 1}],
        "top_skus": [{"sku": t[5], "store_externalid": t[6], "location_id": "1"}],
        "notes": [t[7]],
        "run_label": t[8],
    }


@SETTINGS
@given(st.lists(text, min_size=9, max_size=9))
def test_drift_report_escapes_everything_from_the_tills(values):
    benign = render_drift_report(drift_summary([f"v{i}" for i in range(9)]), "http://localhost:8080/run")[1]
    subject, html = render_drift_report(drift_summary(values), "http://localhost:8080/run")
    assert_inert(html, benign, values)
    assert_one_line(subject)


@SETTINGS
@given(owner=text, kinds=st.lists(text, min_size=1, max_size=3))
def test_digest_escapes_owner_and_kind(owner, kinds):
    def digest(o, ks):
        return OwnerDigest(o, len(ks), NOW - timedelta(hours=5), tuple((k, 1, NOW) for k in ks))

    benign = render_digest(digest("finance", ["unknown_sku"] * len(kinds)), "http://localhost:8080", NOW)[1]
    subject, html = render_digest(digest(owner, kinds), "http://localhost:8080", NOW)
    assert_inert(html, benign, [owner, *kinds])
    assert_one_line(subject)


@SETTINGS
@given(values=st.lists(text, min_size=1, max_size=3), owner=text)
def test_rate_jump_alert_escapes_store_ids(values, owner):
    def jumps(vs, o):
        return [RateJump("store", v, 9 + i, 1.0, o) for i, v in enumerate(vs)]

    benign = render_rate_jumps(
        jumps(["ST001"] * len(values), "retail_ops"), "http://localhost:8080", "http://r"
    )[1]
    subject, html = render_rate_jumps(jumps(values, owner), "http://localhost:8080", "http://r")
    assert_inert(html, benign, [*values, owner])
    assert_one_line(subject)
