"""The quality-gate alert e-mail: what failed, where, who owns it, and a link to the run.

``render_gate_alert`` is pure (Jinja2, autoescape on: SKUs, tender names and details come from POS
data and are escaped). ``GateAlertNotifier`` sends it over the Airflow SMTP connection; Airflow is
imported only when a mail is sent, so this module imports without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import Environment, StrictUndefined

from include.sitoo_erp.notify.mail import one_line_subject, send_mail
from include.sitoo_erp.staging.exceptions import DEFAULT_OWNER

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

_TEMPLATE = _ENV.from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif; font-size: 14px">
<h2>{{ headline }}</h2>
<p>Batch of <b>{{ s.batch_size }}</b> ready receipts: <b>{{ s.failed_receipts }}</b> failed
({{ "%.1f"|format(share * 100) }}&nbsp;%){% if s.new_causes %}, <b>{{ s.new_causes }}</b> new
cause{{ "s" if s.new_causes != 1 else "" }} (not e-mailed before){% endif %}.
{% if s.systemic %}
<b style="color:#b00">Systemic failure: {{ s.fresh_failed }} of {{ s.fresh_batch }} receipts without a known
exception failed, more than the allowed share. Nothing was quarantined and nothing was posted; the run
failed.</b>
{% else %}
Failing receipts were quarantined; the clean ones went on to posting.
{% endif %}
</p>
{% if s.systemic %}
<h3>What to fix</h3>
<ul>
{% for r in rules %}
<li><b>{{ r.rule }}</b> ({{ r.kind }}, owner <b>{{ r.owner }}</b>): {{ r.count }} receipts; failing keys
{{ r.failing_keys|join(", ") or "-" }}. {{ r.hint }}</li>
{% endfor %}
</ul>
<p>Once fixed, the next run posts these receipts by itself: no SQL, no clearing by hand.</p>
{% endif %}
{% if s.oldest_open_exception_hours is not none %}
<p>Oldest open gate exception: {{ "%.1f"|format(s.oldest_open_exception_hours) }} h old.</p>
{% endif %}
<h3>Suites</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>suite</th><th>version</th><th>result</th></tr>
{% for name, ok in s.suite_success.items() %}
<tr><td>{{ name }}</td><td>{{ s.suite_versions.get(name, "") }}</td><td>{{ "passed" if ok else "FAILED" }}</td></tr>
{% endfor %}
</table>
{% if rules %}
<h3>Failures per rule</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>rule</th><th>kind</th><th>owner</th><th>receipts</th><th>new causes</th><th>keys</th><th>sample receipts (receipt number, order id)</th><th>examples (one per cause, with its receipts)</th></tr>
{% for r in rules %}
<tr><td>{{ r.rule }}<br><small>{{ r.description }}</small></td><td>{{ r.kind }}</td><td>{{ r.owner }}</td>
<td align="right">{{ r.count }}</td><td align="right">{{ r.new }}</td><td>{{ r.failing_keys|join(", ") }}</td>
<td>{{ r.samples|join(", ") }}</td>
<td>{% for d in r.details %}{{ d }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if s.new_cause_keys %}
<h3>New causes (this is the only e-mail about each)</h3>
<ul>
{% for c in s.new_cause_keys %}
<li class="new-cause">{{ c }}</li>
{% endfor %}
</ul>
{% if s.new_causes > s.new_cause_keys|length %}<p>… and {{ s.new_causes - s.new_cause_keys|length }} more.</p>{% endif %}
{% endif %}
{% if s.stores_affected %}
<h3>Stores affected</h3>
<ul>
{% for store, n in s.stores_affected.items() %}
<li>{{ store }}: {{ n }} receipt{{ "s" if n != 1 else "" }}</li>
{% endfor %}
</ul>
{% endif %}
{% if s.gx_errors %}
<p>Rules GX could not evaluate (re-checked by the gate's own SQL): {{ s.gx_errors|join(", ") }}</p>
{% endif %}
<p><a href="{{ run_url }}">Open the run in Airflow</a>{% if s.run_label %} ({{ s.run_label }}){% endif %}
{% if page_url %} · <a href="{{ page_url }}">Open the exception queue</a> (fix a mapping, ignore or resolve){% endif %}</p>
</body></html>
"""
)


def _summary(result: Any) -> Mapping[str, Any]:
    return result.summary() if hasattr(result, "summary") else result


# What the owner does about a kind of failure (the systemic mail's "what to fix").
FIX_HINTS: dict[str, str] = {
    "unknown_sku": "Add the item to the ERP item master, or map the SKU to an ERP item (map_sku_item).",
    "inactive_item": "Reactivate the ERP item, or map the SKU to an active item (map_sku_item).",
    "missing_mapping": "Add the missing mapping row on the operations page (store, VAT rate or document item).",
    "tender_mismatch": "Map the tender to an ERP payment method (map_tender_payment), or correct the payments.",
    "tax_beyond_tolerance": "Check the till's VAT set-up; the receipts' tax does not add up.",
    "orphaned_return": "Find the original sale in Sitoo; the return refers to a sale we do not have.",
    "malformed_payload": "Sitoo sent data we cannot read; check the field named in the examples.",
    "duplicate_receipt": "Two orders share a receipt id in one store; check the till's numbering.",
}


# What failed, in the words the subject leads with: kind -> (one receipt, many receipts).
KIND_WORDS: dict[str, tuple[str, str]] = {
    "unknown_sku": ("receipt with a SKU unknown to the ERP", "receipts with a SKU unknown to the ERP"),
    "inactive_item": ("receipt with an inactive ERP item", "receipts with an inactive ERP item"),
    "missing_mapping": ("receipt with a missing mapping", "receipts with a missing mapping"),
    "tender_mismatch": ("receipt with a tender mismatch", "receipts with a tender mismatch"),
    "tax_beyond_tolerance": ("receipt with VAT beyond tolerance", "receipts with VAT beyond tolerance"),
    "orphaned_return": ("return of an unknown sale", "returns of an unknown sale"),
    "malformed_payload": ("malformed receipt", "malformed receipts"),
    "duplicate_receipt": ("repeated receipt number", "repeated receipt numbers"),
}


def failing_checks(s: Mapping[str, Any]) -> str:
    """``"6 receipts with a SKU unknown to the ERP, 5 receipts with a tender mismatch"``: receipts per
    kind of failure (a receipt failing two kinds counts in both), largest first."""
    per_kind: dict[str, int] = {}
    kinds = s.get("rule_kinds") or {}
    for rule_id, n in (s.get("rule_counts") or {}).items():
        kind = str(kinds.get(rule_id, rule_id))
        per_kind[kind] = per_kind.get(kind, 0) + int(n)
    parts = []
    for kind, n in sorted(per_kind.items(), key=lambda kv: (-kv[1], kv[0])):
        one, many = KIND_WORDS.get(kind, (f"receipt failing {kind}", f"receipts failing {kind}"))
        parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts)


def _rules(s: Mapping[str, Any], owner_by_kind: Mapping[str, str] | None) -> list[dict[str, Any]]:
    owners = {str(k): v for k, v in DEFAULT_OWNER.items()}
    owners.update(s.get("owners") or {})
    owners.update({str(k): v for k, v in (owner_by_kind or {}).items()})
    kinds = s.get("rule_kinds") or {}
    return [
        {
            "rule": rule_id,
            "kind": kinds.get(rule_id, "?"),
            "owner": owners.get(kinds.get(rule_id, ""), "retail_ops"),
            "count": count,
            "new": (s.get("new_counts") or {}).get(rule_id, 0),
            "failing_keys": (s.get("rule_keys") or {}).get(rule_id, []),
            "hint": FIX_HINTS.get(kinds.get(rule_id, ""), ""),
            "description": (s.get("rule_descriptions") or {}).get(rule_id, ""),
            "samples": (s.get("sample_receipts") or {}).get(rule_id)
            or (s.get("samples") or {}).get(rule_id, []),
            "details": (s.get("sample_details") or {}).get(rule_id, []),
        }
        for rule_id, count in sorted((s.get("rule_counts") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def systemic_message(result: Any, owner_by_kind: Mapping[str, str] | None = None) -> str:
    """A systemic stop in one paragraph (the failed task's log): what failed and what to fix."""
    s = dict(_summary(result))
    fixes = "; ".join(
        f"{r['rule']} [{r['kind']}, owner {r['owner']}]: {r['count']} receipts, keys "
        f"{', '.join(r['failing_keys']) or '-'}"
        for r in _rules(s, owner_by_kind)
    )
    fresh, failed = s.get("fresh_batch") or 0, s.get("fresh_failed") or 0
    return (
        f"systemic data-quality failure: {failed} of {fresh} receipts without a known exception "
        f"({failed / fresh if fresh else 0:.0%}) failed; nothing was quarantined and nothing will be posted. "
        f"Fix: {fixes}. The next run posts once the cause is fixed (mapping page or ERP item master); "
        "no SQL and no clearing by hand."
    )


def render_gate_alert(
    result: Any, run_url: str, owner_by_kind: Mapping[str, str] | None = None, page_url: str = ""
) -> tuple[str, str]:
    """``(subject, html)`` for a gate result (a ``GateResult`` or its ``summary()`` dict)."""
    s = dict(_summary(result))
    rules = _rules(s, owner_by_kind)
    batch = s.get("batch_size") or 0
    share = (s.get("failed_receipts") or 0) / batch if batch else 0.0
    failed_suites = [n for n, ok in (s.get("suite_success") or {}).items() if not ok]
    if s.get("systemic") and s.get("fresh_batch"):
        # The share that stopped the run: receipts without a known exception.
        headline = (
            f"Quality gate SYSTEMIC failure: {s.get('fresh_failed', 0)} of {s['fresh_batch']} new receipts"
        )
    else:
        state = "SYSTEMIC failure" if s.get("systemic") else "failed"
        headline = f"Quality gate {state}: {s.get('failed_receipts', 0)} of {batch} receipts"
    # The subject leads with what failed (the check and its count), then the gate's verdict.
    lead = failing_checks(s)
    subject = (
        f"[sitoo-erp] {lead + ' — ' if lead else ''}{headline} ({', '.join(failed_suites) or 'no suite'})"
    )
    if s.get("run_label"):
        subject += f" - {s['run_label']}"
    html = _TEMPLATE.render(
        s=_Attr(s), rules=rules, run_url=run_url, share=share, headline=headline, page_url=page_url
    )
    return one_line_subject(subject), html


class _Attr(dict):
    """Dict with attribute access for the template (``s.batch_size``), missing keys -> None."""

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


class GateAlertNotifier:
    """Send the gate alert e-mail through an Airflow SMTP connection.

    Use directly from the gate task (``GateAlertNotifier(to=[...]).send(result, run_url)``) when a suite
    failed, or as a task ``on_failure_callback`` / ``on_success_callback``: called with the task context
    it pulls the gate summary from XCom (``xcom_task_id``/``xcom_key``) and mails it if a suite failed.
    """

    def __init__(
        self,
        to: str | Iterable[str],
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        owner_by_kind: Mapping[str, str] | None = None,
        xcom_task_id: str | None = None,
        xcom_key: str = "return_value",
    ) -> None:
        self.to = [to] if isinstance(to, str) else list(to)
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.owner_by_kind = dict(owner_by_kind or {})
        self.xcom_task_id = xcom_task_id
        self.xcom_key = xcom_key

    def send(self, result: Any, run_url: str, page_url: str = "") -> tuple[str, str]:
        subject, html = render_gate_alert(result, run_url, self.owner_by_kind, page_url)
        send_mail(self.smtp_conn_id, self.to, subject, html, from_email=self.from_email)
        return subject, html

    def __call__(self, context: Mapping[str, Any]) -> None:
        ti = context.get("ti") or context.get("task_instance")
        task_id = self.xcom_task_id or getattr(ti, "task_id", None)
        summary = ti.xcom_pull(task_ids=task_id, key=self.xcom_key) if ti is not None else None
        if not summary or not isinstance(summary, Mapping):
            return
        if all((summary.get("suite_success") or {}).values()) and not summary.get("systemic"):
            return  # nothing failed: no mail
        run_url = getattr(ti, "log_url", None) or ""
        self.send(summary, run_url)
