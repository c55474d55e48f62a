"""Alerts that lead somewhere: the daily digest by owner, and exception-rate jumps.

- **Digest**: open exceptions per owner, count by kind, oldest age, with links to the page;
  nothing is sent when nothing is open.
- **Rate jump** (operational drift): new exceptions per store and per kind in the last hour,
  against that store's/kind's own trailing hourly average. A jump well above its baseline (peak
  trading, a bulk SKU update) is raised as one alert before the individual exceptions pile up,
  and not again for the same store/kind for ``quiet_hours``.

Pure SQL + Jinja2 (autoescape on); sending goes through the smtp provider's hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from jinja2 import Environment, StrictUndefined

from include.sitoo_erp.notify.addressing import page_url
from include.sitoo_erp.notify.mail import one_line_subject

_ENV = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class OwnerDigest:
    owner: str
    total: int
    oldest_first_seen: datetime
    by_kind: tuple[tuple[str, int, datetime], ...]  # kind, count, oldest first seen


def digest(conn: psycopg.Connection) -> list[OwnerDigest]:
    rows = conn.execute(
        """
        select owner, kind, count(*), min(first_seen_at)
          from sitoo_erp.exception where status = 'open'
         group by owner, kind order by owner, count(*) desc, kind
        """
    ).fetchall()
    owners: dict[str, list[tuple[str, int, datetime]]] = {}
    for owner, kind, count, oldest in rows:
        owners.setdefault(owner, []).append((kind, count, oldest))
    return [
        OwnerDigest(owner, sum(c for _, c, _ in kinds), min(o for _, _, o in kinds), tuple(kinds))
        for owner, kinds in owners.items()
    ]


def _age(now: datetime, then: datetime) -> str:
    hours = (now - then).total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


_DIGEST = _ENV.from_string(
    """<!doctype html><html><body style="font-family: sans-serif; font-size: 14px">
<h2>Open exceptions for {{ d.owner }}: {{ d.total }}</h2>
<p>Oldest open for {{ age(d.oldest_first_seen) }}. Each stops a receipt or a stock movement from
reaching the ERP until it is fixed or ignored with a reason.</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>kind</th><th>open</th><th>oldest</th><th></th></tr>
{% for kind, count, oldest in d.by_kind %}
<tr><td>{{ kind }}</td><td align="right">{{ count }}</td><td>{{ age(oldest) }}</td>
<td><a href="{{ link(kind) }}">open the queue</a></td></tr>
{% endfor %}
</table>
<p><a href="{{ page }}">Exception queue in Airflow</a> · how to clear each kind: docs/runbook.md</p>
</body></html>"""
)


def render_digest(d: OwnerDigest, ui_base_url: str, now: datetime) -> tuple[str, str]:
    subject = f"[sitoo-erp] {d.total} open exceptions for {d.owner} (oldest {_age(now, d.oldest_first_seen)})"
    html = _DIGEST.render(
        d=d,
        age=lambda t: _age(now, t),
        page=page_url(ui_base_url, owner=d.owner),
        link=lambda kind: page_url(ui_base_url, owner=d.owner, kind=kind),
    )
    return one_line_subject(subject), html


@dataclass(frozen=True)
class RateJump:
    dimension: str  # "store" or "kind"
    value: str
    last_hour: int
    baseline_per_hour: float
    owner: str

    @property
    def key(self) -> str:
        return f"rate:{self.dimension}:{self.value}"


def rate_jumps(
    conn: psycopg.Connection, now: datetime, baseline_days: int = 7, factor: float = 3.0, min_count: int = 5
) -> list[RateJump]:
    """Stores and kinds whose new exceptions in the last hour exceed ``factor`` x their own
    trailing hourly average (and at least ``min_count``, so one odd receipt is not an alert)."""
    jumps: list[RateJump] = []
    for dimension, column in (("store", "store_externalid"), ("kind", "kind")):
        rows = conn.execute(
            f"""
            select {column},
                   count(*) filter (where first_seen_at >= %(hour)s) as last_hour,
                   count(*) filter (where first_seen_at < %(hour)s) / %(hours)s::numeric as baseline,
                   mode() within group (order by owner) as owner
              from sitoo_erp.exception
             where first_seen_at >= %(since)s and first_seen_at < %(now)s and {column} is not null
               and kind <> 'stalled'
             group by {column}
            """,
            {
                "hour": now - timedelta(hours=1),
                "since": now - timedelta(days=baseline_days),
                "now": now,
                "hours": baseline_days * 24 - 1,
            },
        ).fetchall()
        for value, last_hour, baseline, owner in rows:
            if last_hour >= min_count and last_hour > factor * float(baseline):
                jumps.append(
                    RateJump(dimension, str(value), int(last_hour), float(baseline), owner or "retail_ops")
                )
    return jumps


def claim_alert(conn: psycopg.Connection, key: str, detail: Mapping[str, Any], quiet: timedelta) -> bool:
    """True if this alert should go out now (not sent within ``quiet``); records it as sent."""
    import json

    row = conn.execute(
        """
        insert into sitoo_erp.ops_alert (alert_key, detail) values (%s, %s::jsonb)
        on conflict (alert_key) do update set detail = excluded.detail, sent_at = now()
         where ops_alert.sent_at < now() - %s
        returning alert_key
        """,
        (key, json.dumps(dict(detail), default=str), quiet),
    ).fetchone()
    return row is not None


_JUMP = _ENV.from_string(
    """<!doctype html><html><body style="font-family: sans-serif; font-size: 14px">
<h2>Exception rate jump</h2>
<p>New exceptions in the last hour are well above their usual rate. Look at the cause before the
individual exceptions pile up (a bulk SKU change, a broken mapping, peak trading).</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>where</th><th>last hour</th><th>usual per hour (7 days)</th><th>owner</th><th></th></tr>
{% for j in jumps %}
<tr><td>{{ j.dimension }} {{ j.value }}</td><td align="right">{{ j.last_hour }}</td>
<td align="right">{{ "%.1f"|format(j.baseline_per_hour) }}</td><td>{{ j.owner }}</td>
<td><a href="{{ link(j) }}">open the queue</a></td></tr>
{% endfor %}
</table>
<p><a href="{{ run_url }}">The run that noticed it</a></p>
</body></html>"""
)


def render_rate_jumps(jumps: Iterable[RateJump], ui_base_url: str, run_url: str) -> tuple[str, str]:
    jumps = list(jumps)
    worst = max(jumps, key=lambda j: j.last_hour)
    subject = (
        f"[sitoo-erp] Exception rate jump: {worst.dimension} {worst.value} {worst.last_hour} new in the "
        f"last hour (usually {worst.baseline_per_hour:.1f}/h)"
    )
    if len(jumps) > 1:
        subject += f" and {len(jumps) - 1} more"
    html = _JUMP.render(
        jumps=jumps,
        run_url=run_url,
        link=lambda j: page_url(ui_base_url, **{j.dimension: j.value}),
    )
    return one_line_subject(subject), html
