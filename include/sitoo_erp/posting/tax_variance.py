"""The per-receipt, per-rate tax variance: POS VAT pushed to the ERP vs what the ERP computed per line.

One writer for ``sitoo_erp.receipt_tax_variance``, used when a posting is recorded — from the ERP's
answer (``post.py``) or from a posting intent settled by reading the ERP (``intents.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import psycopg

UPSERT_SQL = """
insert into sitoo_erp.receipt_tax_variance (orderid, vat_rate, pos_tax, erp_line_tax, variance)
values (%s, %s, %s, %s, %s)
on conflict (orderid, vat_rate) do update set pos_tax = excluded.pos_tax,
    erp_line_tax = excluded.erp_line_tax, variance = excluded.variance, recorded_at = now()
"""


def record_tax_variance(
    conn: psycopg.Connection, orderid: int, by_rate: Iterable[tuple[Any, Decimal | str, Any, Any]]
) -> None:
    """Upsert ``(rate, pos_tax, erp_line_tax, variance)`` rows of one receipt."""
    rows = [(orderid, *rate_row) for rate_row in by_rate]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(UPSERT_SQL, rows)
