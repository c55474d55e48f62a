"""Gate alert e-mail rendering: escaping, counts, owners, link; the notifier without an SMTP server."""

from __future__ import annotations

from include.sitoo_erp.notify.gate_alert import GateAlertNotifier, render_gate_alert
from include.sitoo_erp.quality.gate import GateResult


def _result(**overrides) -> GateResult:
    data = dict(  # noqa: C408
        batch_size=200,
        failed_receipts=3,
        systemic=False,
        suite_success={"orphaned_transactions": True, "sku_mismatches": False, "tax_rounding": False},
        suite_versions={"orphaned_transactions": "1.0.0", "sku_mismatches": "1.0.0", "tax_rounding": "1.0.0"},
        rule_counts={"sku_mismatches.sku_has_erp_item": 2, "tax_rounding.vat_per_rate_within_tolerance": 1},
        rule_kinds={
            "sku_mismatches.sku_has_erp_item": "unknown_sku",
            "tax_rounding.vat_per_rate_within_tolerance": "tax_beyond_tolerance",
        },
        rule_descriptions={"sku_mismatches.sku_has_erp_item": "every sold SKU has an ERP item"},
        stores_affected={"ST001": 2, "ST<b>2": 1},
        samples={
            "sku_mismatches.sku_has_erp_item": [10001, 10002],
            "tax_rounding.vat_per_rate_within_tolerance": [10007],
        },
        sample_details={"sku_mismatches.sku_has_erp_item": ["SKU <script>alert(1)</script> has no ERP item"]},
        oldest_open_exception_hours=26.5,
        run_label="scheduled__2026-11-16T10:00:00",
    )
    data.update(overrides)
    return GateResult(**data)


def test_render_escapes_data_and_shows_counts_owners_and_link():
    subject, html = render_gate_alert(
        _result(), "https://airflow.example/dags/hourly/runs/r1?x=1&y=2", {"unknown_sku": "store-ops@example"}
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "ST&lt;b&gt;2" in html
    assert "3</b> failed" in html and "200</b>" in html
    assert "sku_mismatches.sku_has_erp_item" in html and ">2</td>" in html and "10001, 10002" in html
    assert "store-ops@example" in html  # owner override per kind
    assert "finance" in html  # default owner of tax_beyond_tolerance
    assert 'href="https://airflow.example/dags/hourly/runs/r1?x=1&amp;y=2"' in html
    assert "26.5 h" in html
    # The subject leads with the failing checks (receipts per kind), then the verdict.
    assert subject.startswith(
        "[sitoo-erp] 2 receipts with a SKU unknown to the ERP, 1 receipt with VAT beyond tolerance"
        " — Quality gate failed: 3 of 200 receipts"
    )
    assert "sku_mismatches, tax_rounding" in subject and "\n" not in subject


def test_render_from_summary_dict_and_systemic_wording():
    summary = _result(systemic=True, failed_receipts=120).summary()
    subject, html = render_gate_alert(summary, "http://x/run", {})
    assert "SYSTEMIC" in subject and "Nothing was quarantined" in html
    assert "<script>" not in html


def test_notifier_sends_only_when_a_suite_failed(monkeypatch):
    sent = []
    notifier = GateAlertNotifier(to="ops@example", xcom_task_id="gate")
    monkeypatch.setattr(notifier, "send", lambda result, url: sent.append((result, url)))

    class TI:
        task_id = "gate"
        log_url = "http://airflow/log"

        def __init__(self, value):
            self.value = value

        def xcom_pull(self, task_ids, key):
            assert (task_ids, key) == ("gate", "return_value")
            return self.value

    notifier({"ti": TI(_result(suite_success={"a": True}, failed_receipts=0).summary())})
    assert sent == []
    notifier({"ti": TI(_result().summary())})
    assert len(sent) == 1 and sent[0][1] == "http://airflow/log"
