"""The reconciliation report finance reads: HTML (tables + an inline SVG chart, works offline), CSV, e-mail.

``build_report(conn, recon_run_id)`` reads one run from PostgreSQL and returns a :class:`Report`
(HTML, CSV, subject, one-screen text). Jinja2 with autoescape: receipt ids, store names, externalIds
and details come from POS/ERP data and are escaped; the SVG is drawn here from numbers only and its
labels are escaped too. ``save_report`` keeps it in the run's row (tasks may run on different
workers) and writes it under a directory; ``send_report`` mails it with both files attached.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import psycopg
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from include.sitoo_erp.notify.mail import send_mail

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ZERO = Decimal("0.00")
MAX_HTML_LINES = 500
CLASS_NAMES = {
    "missing_in_erp": "Missing in ERP",
    "extra_in_erp": "Extra in ERP",
    "duplicate_in_erp": "Duplicate in ERP",
    "amount_mismatch": "Amount mismatch",
    "tax_variance": "Tax variance",
    "zreport_mismatch": "Z-report mismatch",
    "unexplained_residual": "Unexplained residual",
    "receipt_mismatch": "Receipt differs from its ERP document",
    "blocked_systemic_stop": "Blocked: systemic stop",
}
CSV_COLUMNS = [
    "line_id",
    "class",
    "cause",
    "explained",
    "owner",
    "store_externalid",
    "business_date",
    "orderid",
    "receipt_id",
    "external_id",
    "erp_id",
    "registerid",
    "sitoo_amount",
    "erp_amount",
    "diff_net",
    "diff_tax",
    "detail",
]

_TEMPLATE = _ENV.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; font-size: 14px; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0 18px; } td, th { border: 1px solid #bbb; padding: 4px 8px; }
th { background: #f0f0f0; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00020; font-weight: bold; } .ok { color: #1b7f2a; font-weight: bold; } small { color: #666; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="{{ 'ok' if passed else 'bad' }}">{{ verdict }}</p>
<p>Period <b>{{ run.date_from }} to {{ run.date_to }}</b> (store business days){% if run.stores %}, stores {{ run.stores|join(", ") }}{% endif %}.
Reconciliation run {{ run.recon_run_id }}{% if run.run_id %} (Airflow run {{ run.run_id }}){% endif %}.</p>
<h2>Totals</h2>
<table><tr><th></th><th>receipts / documents</th><th>net</th><th>VAT</th><th>gross</th></tr>
<tr><td>Sitoo (what the tills took)</td><td class="n">{{ s.sitoo.receipts }}</td><td class="n">{{ s.sitoo.net }}</td><td class="n">{{ s.sitoo.tax }}</td><td class="n">{{ s.sitoo.gross }}</td></tr>
<tr><td>ERP (documents this integration owns)</td><td class="n">{{ s.erp.documents }}</td><td class="n">{{ s.erp.net }}</td><td class="n">{{ s.erp.tax }}</td><td class="n">{{ s.erp.gross }}</td></tr>
</table>
<p>Returns in Sitoo: {{ s.sitoo.returns }}. Recorded tax variance for the period (what the ERP's own per-line VAT would
have differed by; the POS VAT was posted): <b>{{ s.tax_variance_total }}</b>.</p>
<h2>Differences by class</h2>
<table><tr><th>class</th><th>explained</th><th>unexplained</th><th>amount (absolute)</th></tr>
{% for c in classes %}<tr><td>{{ c.name }}</td><td class="n">{{ c.explained }}</td><td class="n {{ 'bad' if c.unexplained else '' }}">{{ c.unexplained }}</td><td class="n">{{ c.amount }}</td></tr>
{% else %}<tr><td colspan="4">No differences.</td></tr>{% endfor %}
</table>
<h2>Per store</h2>
<table><tr><th>store</th><th>Sitoo receipts</th><th>ERP documents</th><th>Sitoo gross</th><th>ERP gross</th><th>difference</th><th>explained lines</th><th>unexplained lines</th></tr>
{% for r in stores %}<tr><td>{{ r.store }}</td><td class="n">{{ r.receipts }}</td><td class="n">{{ r.docs }}</td><td class="n">{{ r.sitoo }}</td><td class="n">{{ r.erp }}</td><td class="n {{ 'bad' if r.diff else '' }}">{{ r.diff }}</td><td class="n">{{ r.explained }}</td><td class="n {{ 'bad' if r.unexplained else '' }}">{{ r.unexplained }}</td></tr>
{% endfor %}</table>
<h2>Daily gross: Sitoo vs ERP</h2>
{{ chart }}
<h2>Differences</h2>
<p><small>Unexplained first. {% if truncated %}Showing {{ lines|length }} of {{ total_lines }}; the CSV has all.{% endif %}</small></p>
<table><tr><th>class</th><th>cause</th><th>owner</th><th>store</th><th>day</th><th>receipt / document</th><th>Sitoo - ERP</th><th>detail</th></tr>
{% for l in lines %}<tr><td class="{{ '' if l.explained else 'bad' }}">{{ l.class_name }}{% if l.explained %} (explained){% endif %}</td><td>{{ l.cause }}</td><td>{{ l.owner }}</td><td>{{ l.store }}</td><td>{{ l.day }}</td><td>{{ l.ref }}</td><td class="n">{{ l.diff }}</td><td>{{ l.detail }}</td></tr>
{% else %}<tr><td colspan="8">None.</td></tr>{% endfor %}
</table>
<h2>Open exceptions by age and owner</h2>
<table><tr><th>owner</th>{% for b in buckets %}<th>{{ b }}</th>{% endfor %}<th>oldest</th></tr>
{% for o in exceptions %}<tr><td>{{ o.owner }}</td>{% for b in buckets %}<td class="n">{{ o.counts.get(b, 0) }}</td>{% endfor %}<td>{{ o.oldest }}</td></tr>
{% else %}<tr><td colspan="{{ buckets|length + 2 }}">No open exceptions.</td></tr>{% endfor %}
</table>
<p><small>How to read this: "Missing in ERP" is a till receipt with no ERP document (quarantined and held ones are
explained: an open exception or the next hourly run covers them); "Blocked: systemic stop" is a receipt ready to post
while the quality gate's systemic stop holds all posting (unexplained until the stop's cause is fixed and it posts);
"Extra"/"Duplicate" are ERP documents with our
externalId that no receipt (or a second one for the same receipt) is behind; "Z-report mismatch" is a till whose
end-of-day report disagrees with its receipts. Amounts are in the POS sign: sales +, returns -.</small></p>
</body></html>
"""
)


@dataclass
class Report:
    recon_run_id: int
    passed: bool
    subject: str
    html: str
    csv: str
    text: str
    filename: str


def _d(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def daily_chart_svg(days: list[tuple[date, Decimal, Decimal]], width: int = 960, height: int = 260) -> Markup:
    """Grouped bars per day (Sitoo blue, ERP orange) as inline SVG; needs no script and no network."""
    if not days:
        return Markup("<p>No trading days in the period.</p>")
    left, bottom, top = 70, 40, 20
    plot_w, plot_h = width - left - 10, height - bottom - top
    hi = max([max(a, b) for _, a, b in days] + [Decimal(1)])
    lo = min([min(a, b) for _, a, b in days] + [Decimal(0)])
    span = float(hi - lo) or 1.0

    def y(v: Decimal) -> float:
        return top + plot_h * (float(hi) - float(v)) / span

    slot = plot_w / len(days)
    bar = max(1.0, slot * 0.38)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape("Daily gross, Sitoo vs ERP")}">',
        f'<line x1="{left}" y1="{y(Decimal(0)):.1f}" x2="{width - 10}" y2="{y(Decimal(0)):.1f}" stroke="#999"/>',
        f'<text x="5" y="{top + 10}" font-size="11">{escape(str(hi))}</text>',
        f'<text x="5" y="{y(Decimal(0)):.1f}" font-size="11">0</text>',
    ]
    for i, (day, sitoo, erp) in enumerate(days):
        x0 = left + i * slot + slot * 0.1
        for j, (value, colour, who) in enumerate(((sitoo, "#1f77b4", "Sitoo"), (erp, "#ff7f0e", "ERP"))):
            y0, y1 = sorted((y(value), y(Decimal(0))))
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{y0:.1f}" width="{bar:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                f'fill="{colour}"><title>{escape(f"{day} {who} {value}")}</title></rect>'
            )
        if len(days) <= 16 or i % max(1, len(days) // 10) == 0:
            parts.append(
                f'<text x="{x0:.1f}" y="{height - bottom + 14}" font-size="10">{escape(day.strftime("%d %b"))}</text>'
            )
    parts.append(f'<rect x="{left}" y="{height - 16}" width="10" height="10" fill="#1f77b4"/>')
    parts.append(f'<text x="{left + 14}" y="{height - 7}" font-size="11">Sitoo</text>')
    parts.append(f'<rect x="{left + 70}" y="{height - 16}" width="10" height="10" fill="#ff7f0e"/>')
    parts.append(f'<text x="{left + 84}" y="{height - 7}" font-size="11">ERP</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def _age_bucket(hours: float) -> str:
    if hours < 24:
        return "< 1 day"
    if hours < 24 * 7:
        return "1-7 days"
    if hours < 24 * 30:
        return "7-30 days"
    return "> 30 days"


BUCKETS = ["< 1 day", "1-7 days", "7-30 days", "> 30 days"]


def build_report(conn: psycopg.Connection, recon_run_id: int) -> Report:
    run = conn.execute(
        "select recon_run_id, run_id, date_from, date_to, stores, status, summary, gate_result "
        "from sitoo_erp.reconciliation_run where recon_run_id = %s",
        (recon_run_id,),
    ).fetchone()
    if run is None:
        raise ValueError(f"no reconciliation run {recon_run_id}")
    keys = ("recon_run_id", "run_id", "date_from", "date_to", "stores", "status", "summary", "gate_result")
    r = dict(zip(keys, run, strict=True))
    s = r["summary"] or {}
    lines = conn.execute(
        f"select {', '.join(CSV_COLUMNS)} from sitoo_erp.reconciliation_line where recon_run_id = %s "
        "order by explained, class, store_externalid, business_date, line_id",
        (recon_run_id,),
    ).fetchall()
    unexplained = sum(1 for ln in lines if not ln[3])
    passed = unexplained == 0
    stores: dict[str, dict] = {}
    # Distinct receipts per store (the run's summary); the cells count a receipt once per tax code.
    per_store = (s.get("sitoo") or {}).get("receipts_by_store")
    for store, receipts, docs, sitoo, erp in conn.execute(
        "select store_externalid, sum(sitoo_receipts), sum(erp_docs), sum(sitoo_net + sitoo_tax), sum(erp_net + erp_tax) "
        "from sitoo_erp.reconciliation_cell where recon_run_id = %s group by store_externalid order by 1",
        (recon_run_id,),
    ):
        stores[store] = {
            "store": store, "receipts": receipts if per_store is None else per_store.get(str(store), 0),
            "docs": docs, "sitoo": _d(sitoo), "erp": _d(erp),
            "diff": _d(sitoo) - _d(erp), "explained": 0, "unexplained": 0,
        }  # fmt: skip
    for ln in lines:
        st = stores.get(ln[5])
        if st is not None:
            st["explained" if ln[3] else "unexplained"] += 1
    days = [
        (d, _d(a), _d(b))
        for d, a, b in conn.execute(
            "select business_date, sum(sitoo_net + sitoo_tax), sum(erp_net + erp_tax) from sitoo_erp.reconciliation_cell "
            "where recon_run_id = %s group by business_date order by 1",
            (recon_run_id,),
        )
    ]
    exc: dict[str, dict] = {}
    for owner, hours in conn.execute(
        "select owner, extract(epoch from now() - first_seen_at) / 3600 from sitoo_erp.exception where status = 'open'"
    ):
        o = exc.setdefault(owner, {"owner": owner, "counts": {}, "max": 0.0})
        b = _age_bucket(float(hours))
        o["counts"][b] = o["counts"].get(b, 0) + 1
        o["max"] = max(o["max"], float(hours))
    for o in exc.values():
        o["oldest"] = f"{o['max'] / 24:.1f} days" if o["max"] >= 24 else f"{o['max']:.1f} h"
    classes = [
        {"name": CLASS_NAMES.get(k, k), **v}
        for k, v in sorted(
            (s.get("lines_by_class") or {}).items(), key=lambda kv: list(CLASS_NAMES).index(kv[0])
        )
    ]
    view = [
        {
            "class_name": CLASS_NAMES.get(ln[1], ln[1]),
            "cause": ln[2],
            "explained": ln[3],
            "owner": ln[4],
            "store": ln[5] or "",
            "day": ln[6] or "",
            "ref": " / ".join(str(x) for x in (ln[8], ln[9], ln[11]) if x)
            or (f"order {ln[7]}" if ln[7] else ""),
            "diff": _d(ln[14]) + _d(ln[15]),
            "detail": ln[16],
        }
        for ln in lines[:MAX_HTML_LINES]
    ]
    period = f"{r['date_from']}..{r['date_to']}"
    verdict = (
        "PASSED: zero unexplained difference."
        if passed
        else f"FAILED: {unexplained} unexplained difference{'s' if unexplained != 1 else ''} "
        f"(absolute amount {s.get('unexplained_amount', '?')}). Each is listed below with its cause and owner."
    )
    title = f"Sitoo vs ERP reconciliation {period}"
    html = _TEMPLATE.render(
        title=title, verdict=verdict, passed=passed, run=_Attr(r), s=_Attr({k: _Attr(v) if isinstance(v, dict) else v for k, v in s.items()}),
        classes=classes, stores=list(stores.values()), chart=daily_chart_svg(days), lines=view,
        truncated=len(lines) > MAX_HTML_LINES, total_lines=len(lines), exceptions=list(exc.values()), buckets=BUCKETS,
    )  # fmt: skip
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for ln in lines:
        w.writerow(["" if v is None else _csv_safe(v) for v in ln])
    per_class: dict[str, int] = {}
    for ln in lines:
        if not ln[3]:
            per_class[ln[1]] = per_class.get(ln[1], 0) + 1
    which = ", ".join(
        f"{n} {CLASS_NAMES.get(c, c)}" for c, n in sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    subject = f"[sitoo-erp] Reconciliation {period}: " + (
        "passed, zero unexplained difference"
        if passed
        else f"FAILED, {unexplained} unexplained differences ({which})"
    )
    text = summary_text(r, s, passed, unexplained)
    filename = f"reconciliation_{r['date_from']}_{r['date_to']}_run{recon_run_id}"
    return Report(recon_run_id, passed, subject, html, buf.getvalue(), text, filename)


def _csv_safe(value: Any) -> Any:
    """Spreadsheet formula injection: text from POS data starting with = + - @ (or a tab or carriage
    return, which some spreadsheets skip before reading a formula) is prefixed with '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except Exception:
        return False


def summary_text(run: dict, s: dict, passed: bool, unexplained: int) -> str:
    """One screen: totals, differences per class, verdict."""
    out = [
        f"Reconciliation {run['date_from']}..{run['date_to']} (run {run['recon_run_id']}): "
        + ("PASSED" if passed else f"FAILED - {unexplained} unexplained"),
        f"  Sitoo: {s.get('sitoo', {}).get('receipts', 0)} receipts, gross {s.get('sitoo', {}).get('gross', '0')}"
        f" | ERP: {s.get('erp', {}).get('documents', 0)} documents, gross {s.get('erp', {}).get('gross', '0')}",
        f"  recorded tax variance {s.get('tax_variance_total', '0.00')}; store-days {s.get('store_days', 0)},"
        f" drilled down {s.get('drilled_store_days', 0)}, SuiteQL queries {s.get('erp_queries', 0)}",
    ]
    for cls, v in (s.get("lines_by_class") or {}).items():
        out.append(
            f"  {CLASS_NAMES.get(cls, cls):<22} explained {v['explained']:>5}  unexplained {v['unexplained']:>5}"
        )
    return "\n".join(out)


class _Attr(dict):
    def __getattr__(self, name: str) -> Any:
        return self.get(name)


def save_report(conn: psycopg.Connection, report: Report, directory: str | Path | None) -> list[Path]:
    """Keep the report in the run's row; also write HTML + CSV under ``directory`` (if given).

    A relative ``directory`` resolves against ``$SITOO_ERP_HOME`` / ``$AIRFLOW_HOME``
    (:mod:`include.sitoo_erp.paths`), not against the worker's working directory.
    """
    from include.sitoo_erp.paths import resolve

    paths: list[Path] = []
    if directory:
        d = resolve(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = [d / f"{report.filename}.html", d / f"{report.filename}.csv"]
        paths[0].write_text(report.html, encoding="utf-8")
        paths[1].write_text(report.csv, encoding="utf-8")
    conn.execute(
        "update sitoo_erp.reconciliation_run set report_html = %s, report_csv = %s, report_path = %s "
        "where recon_run_id = %s",
        (report.html, report.csv, str(paths[0]) if paths else None, report.recon_run_id),
    )
    return paths


def send_report(report: Report, to: list[str], smtp_conn_id: str = "smtp_default", run_url: str = "") -> None:
    """E-mail finance: the summary in the body, the HTML report and the CSV attached.

    Attachments are written to a temporary directory by this task itself (nothing shared between
    tasks); the body is rendered and escaped here, never re-rendered as a template.
    """
    import tempfile

    body = _BODY.render(report=report, lines=report.text.splitlines(), run_url=run_url)
    with tempfile.TemporaryDirectory(prefix="recon-") as tmp:
        files = [Path(tmp) / f"{report.filename}.html", Path(tmp) / f"{report.filename}.csv"]
        files[0].write_text(report.html, encoding="utf-8")
        files[1].write_text(report.csv, encoding="utf-8")
        send_mail(smtp_conn_id, to, report.subject, body, files=[str(f) for f in files])


_BODY = _ENV.from_string(
    """<html><body style="font-family: sans-serif">
<p><b>{{ report.subject }}</b></p>
<pre>{% for l in lines %}{{ l }}
{% endfor %}</pre>
<p>The full report (per store, daily chart, every difference with its cause and owner) and the CSV are attached.
{% if run_url %}<a href="{{ run_url }}">Open the run in Airflow</a>.{% endif %}</p>
</body></html>"""
)
