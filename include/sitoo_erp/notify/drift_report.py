"""The stock drift report e-mail: top locations and SKUs by value, with counts, and what failed.

``render_drift_report`` is pure (Jinja2, autoescape on: SKUs and store ids come from POS data).
``DriftReportNotifier`` sends it through the Airflow SMTP connection (``SmtpHook``, as the gate alert
does, so POS text is never rendered as a template). Airflow is imported only when a mail is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import Environment, StrictUndefined

from include.sitoo_erp.notify.mail import one_line_subject, send_mail

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

_TEMPLATE = _ENV.from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif; font-size: 14px">
<h2>{{ headline }}</h2>
{% if checks %}
<h3>What failed</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>check</th><th>failing</th><th>location/SKU rows</th><th>units (abs)</th><th>value (abs)</th></tr>
{% for c in checks %}
<tr class="failed-check"><td>{{ c.label }}<br><small>{{ c.rule }}</small></td><td align="right">{{ c.count }}</td>
<td align="right">{{ c.rows }}</td>
<td align="right">{{ c.units }}</td><td align="right">{{ c.value }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if s.news %}
<h3>New or changed since the last run ({{ s.new_causes }} new, {{ s.changed_causes }} changed{% if s.unchanged_causes %}, {{ s.unchanged_causes }} unchanged{% endif %}{% if s.gone_causes %}, {{ s.gone_causes }} gone{% endif %})</h3>
<ul>
{% for n in s.news %}
<li class="news">{{ n }}</li>
{% endfor %}
</ul>
{% if (s.new_causes + s.changed_causes) > s.news|length %}<p>… and {{ s.new_causes + s.changed_causes - s.news|length }} more.</p>{% endif %}
<p>Unchanged causes are not e-mailed again; they stay open in the exception queue and in the daily
digest of open exceptions.</p>
{% endif %}
<p>All compared: business day <b>{{ s.business_date }}</b>: {{ t.skus_compared }} location/SKU pairs compared over
{{ t.locations }} locations ({{ t.sitoo_rows }} Sitoo warehouse items, {{ t.erp_rows }} ERP on-hand rows).
{{ t.skus_drifting }} differing in units (within tolerance or not), {{ t.missing_in_erp }} missing in the ERP,
{{ t.missing_in_sitoo }} missing in Sitoo, {{ t.negative }} negative.
Absolute difference of all these rows {{ t.drift_value_abs }} (net {{ t.drift_value_net }}), {{ t.drift_units_abs }} units.
Tolerance: {{ s.unit_tolerance }} units / {{ s.value_tolerance }} in value per location and SKU.</p>
<p><b>No stock was changed in either system.</b> Drift is reported here and as exceptions for retail ops
to investigate; sales and returns still held or quarantined, and movements not yet in an ERP adjustment,
are already accounted for (timing differences are not drift).</p>
<h3>Checks</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>check</th><th>result</th><th>rows</th><th>examples</th></tr>
{% for r in rules %}
<tr><td>{{ r.name }}<br><small>{{ r.description }}</small></td><td>{{ "passed" if r.ok else "FAILED" }}</td>
<td align="right">{{ r.count }}</td>
<td>{% for d in r.details %}{{ d }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td></tr>
{% endfor %}
</table>
{% if s.top_locations %}
<h3>Top locations by drift value</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>store</th><th>ERP location</th><th>SKUs compared</th><th>drifting</th><th>missing in ERP</th>
<th>negative</th><th>units (abs)</th><th>value (abs)</th><th>value (net)</th></tr>
{% for l in s.top_locations %}
<tr><td>{{ l.store_externalid }}</td><td>{{ l.location_id }}</td><td align="right">{{ l.skus_compared }}</td>
<td align="right">{{ l.skus_drifting }}</td><td align="right">{{ l.missing_in_erp }}</td>
<td align="right">{{ l.negative }}</td><td align="right">{{ l.drift_units_abs }}</td>
<td align="right">{{ l.drift_value_abs }}</td><td align="right">{{ l.drift_value_net }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if s.top_skus %}
<h3>Top SKUs by drift value</h3>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>store</th><th>location</th><th>SKU</th><th>status</th><th>Sitoo on hand</th><th>ERP on hand</th>
<th>unposted sales</th><th>unposted movements</th><th>ERP expected</th><th>drift units</th><th>unit cost</th>
<th>drift value</th></tr>
{% for k in s.top_skus %}
<tr><td>{{ k.store_externalid }}</td><td>{{ k.location_id }}</td><td>{{ k.sku }}</td><td>{{ k.status }}</td>
<td align="right">{{ k.sitoo_on_hand }}</td><td align="right">{{ k.erp_on_hand }}</td>
<td align="right">{{ k.unposted_sales }}</td><td align="right">{{ k.unposted_movements }}</td>
<td align="right">{{ k.expected_erp }}</td><td align="right">{{ k.drift_units }}</td>
<td align="right">{{ k.unit_cost }}</td><td align="right">{{ k.drift_value }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% for n in s.notes %}<p>{{ n }}</p>{% endfor %}
{% if run_url %}<p><a href="{{ run_url }}">Open the run in Airflow</a>{% if s.run_label %} ({{ s.run_label }}){% endif %}</p>{% endif %}
{% if page_url %}<p><a href="{{ page_url }}">Open the exception queue</a> (stock drift, oldest first)</p>{% endif %}
</body></html>
"""
)


class _Attr(dict):
    def __getattr__(self, name: str) -> Any:
        value = self.get(name)
        if isinstance(value, Mapping) and not isinstance(value, _Attr):
            return _Attr(value)
        if isinstance(value, list):
            return [_Attr(v) if isinstance(v, Mapping) else v for v in value]
        return "" if value is None else value


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.2f}"
    return value


def render_drift_report(result: Any, run_url: str = "", page_url: str = "") -> tuple[str, str]:
    """``(subject, html)`` for a ``StockGateResult`` or its ``summary()`` dict."""
    s = dict(result.summary() if hasattr(result, "summary") else result)
    t = dict(s.get("totals") or {})
    success = s.get("success")
    if success is None:
        success = all((s.get("rule_success") or {}).values())
    rules = [
        {
            "name": name,
            "ok": ok,
            "description": (s.get("rule_descriptions") or {}).get(name, ""),
            "count": (s.get("rule_counts") or {}).get(name, 0),
            "details": (s.get("sample_details") or {}).get(name, []),
        }
        for name, ok in (s.get("rule_success") or {}).items()
    ]
    failed = [r["name"] for r in rules if not r["ok"]]
    checks = failed_checks(s, rules)
    if success:
        headline = f"Stock drift {s.get('business_date')}: within tolerance"
    else:
        # Lead with what failed, counted and valued from the failing rows only.
        lead = ", ".join(
            c["label"] + (f" (value {c['value']})" if c.get("value") not in (None, "", "0.00") else "")
            for c in checks
        )
        headline = f"{lead} — Stock drift check failed {s.get('business_date')}"
    subject = f"[sitoo-erp] {headline}" + (f" ({', '.join(failed)})" if failed else "")
    html = _TEMPLATE.render(
        s=_Attr(s),
        t=_Attr({k: _fmt(v) for k, v in t.items()}),
        rules=rules,
        run_url=run_url,
        page_url=page_url,
        headline=headline,
        checks=checks,
    )
    return one_line_subject(subject), html


def failed_checks(s: Mapping[str, Any], rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gate's per-check figures; a summary without them (older runs) falls back to the rule counts."""
    keys = ("check", "rule", "count", "rows", "label", "units", "value")
    checks = [{k: c.get(k, "") for k in keys} for c in (s.get("checks") or [])]
    if checks:
        return checks
    return [
        {"check": r["name"], "rule": r["name"], "count": r["count"], "rows": r["count"],
         "label": f"{r['count']} failing {r['name']}", "units": "", "value": ""}
        for r in rules
        if not r["ok"]
    ]  # fmt: skip


class DriftReportNotifier:
    """Send the drift report through an Airflow SMTP connection."""

    def __init__(
        self, to: str | Iterable[str], smtp_conn_id: str = "smtp_default", from_email: str | None = None
    ) -> None:
        self.to = [to] if isinstance(to, str) else list(to)
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    def send(self, result: Any, run_url: str = "", page_url: str = "") -> tuple[str, str]:
        subject, html = render_drift_report(result, run_url, page_url)
        send_mail(self.smtp_conn_id, self.to, subject, html, from_email=self.from_email)
        return subject, html
