"""Exceptions: every gap surfaced by name, one open row per cause (not one per run).

A cause is ``(kind, subject_key)`` — e.g. ``("unknown_sku", "order:884211:sku:ABC-1")``. Raising
the same cause again bumps ``last_seen_at`` and ``occurrences`` on the open row; once resolved
or ignored, a new occurrence opens a fresh row.
"""

from __future__ import annotations

from enum import StrEnum

import psycopg


class ExceptionKind(StrEnum):
    MALFORMED_PAYLOAD = "malformed_payload"
    UNKNOWN_SKU = "unknown_sku"
    INACTIVE_ITEM = "inactive_item"
    MISSING_MAPPING = "missing_mapping"
    ORPHANED_RETURN = "orphaned_return"
    TENDER_MISMATCH = "tender_mismatch"
    TAX_BEYOND_TOLERANCE = "tax_beyond_tolerance"
    ERP_REJECTED = "erp_rejected"
    STALLED = "stalled"
    STOCK_DRIFT = "stock_drift"
    DUPLICATE_RECEIPT = "duplicate_receipt"
    CHANGED_AFTER_POSTING = "changed_after_posting"
    CANCELLED_AFTER_POSTING = "cancelled_after_posting"
    CLOSED_PERIOD = "closed_period"  # a late receipt of a business day whose ERP period is closed


# Who owns a kind by default (issue: configurable per kind; overridable later by a mapping table).
DEFAULT_OWNER: dict[ExceptionKind, str] = {
    ExceptionKind.MALFORMED_PAYLOAD: "data_engineering",
    ExceptionKind.UNKNOWN_SKU: "retail_ops",
    ExceptionKind.INACTIVE_ITEM: "retail_ops",
    ExceptionKind.MISSING_MAPPING: "retail_ops",
    ExceptionKind.ORPHANED_RETURN: "retail_ops",
    ExceptionKind.TENDER_MISMATCH: "finance",
    ExceptionKind.TAX_BEYOND_TOLERANCE: "finance",
    ExceptionKind.ERP_REJECTED: "finance",
    ExceptionKind.STALLED: "retail_ops",
    ExceptionKind.STOCK_DRIFT: "retail_ops",
    ExceptionKind.DUPLICATE_RECEIPT: "retail_ops",
    ExceptionKind.CHANGED_AFTER_POSTING: "finance",
    ExceptionKind.CANCELLED_AFTER_POSTING: "finance",
    ExceptionKind.CLOSED_PERIOD: "finance",
}


def raise_exception(
    conn: psycopg.Connection,
    kind: ExceptionKind,
    subject_key: str,
    rule: str,
    message: str,
    orderid: int | None = None,
    store_externalid: str | None = None,
    sku: str | None = None,
    field: str | None = None,
) -> int:
    """Open (or re-see) the exception for this cause; returns its id.

    A cause a person has ignored stays ignored: seeing it again only counts the occurrence.
    The owner comes from ``exception_owner`` (editable), else the default for the kind.
    """
    ignored = conn.execute(
        """
        update sitoo_erp.exception set last_seen_at = now(), occurrences = occurrences + 1
         where kind = %s and subject_key = %s and status = 'ignored'
        returning exception_id
        """,
        (str(kind), subject_key),
    ).fetchone()
    if ignored:
        return ignored[0]
    row = conn.execute(
        """
        insert into sitoo_erp.exception
            (kind, subject_key, orderid, store_externalid, sku, field, rule, message, owner)
        values (%s, %s, %s, %s, %s, %s, %s, %s,
                coalesce((select owner from sitoo_erp.exception_owner where kind = %s), %s))
        on conflict (kind, subject_key) where status = 'open' do update
           set last_seen_at = now(), occurrences = exception.occurrences + 1,
               message = excluded.message, rule = excluded.rule, field = excluded.field
        returning exception_id
        """,
        (
            str(kind),
            subject_key,
            orderid,
            store_externalid,
            sku,
            field,
            rule,
            message[:2000],
            str(kind),
            DEFAULT_OWNER.get(kind, "retail_ops"),
        ),
    ).fetchone()
    assert row is not None  # insert … on conflict do update … returning: always one row
    return row[0]


def resolve_subject(conn: psycopg.Connection, kind: ExceptionKind, subject_key: str, note: str) -> int:
    """Close the open exception of a cause that is not a receipt (a day's tender journal) once gone."""
    cur = conn.execute(
        """
        update sitoo_erp.exception set status = 'resolved', resolved_at = now(), resolution_note = %s
        where kind = %s and subject_key = %s and status = 'open'
        """,
        (note, str(kind), subject_key),
    )
    return cur.rowcount


def resolve_exceptions_of(conn: psycopg.Connection, orderids: list[int], note: str) -> int:
    """``resolve_exceptions`` for many orders in one statement (a daily summary posts ~170 at once)."""
    cur = conn.execute(
        """
        update sitoo_erp.exception set status = 'resolved', resolved_at = now(), resolution_note = %s
        where orderid = any(%s) and status = 'open'
        """,
        (note, orderids),
    )
    return cur.rowcount


def resolve_exceptions(conn: psycopg.Connection, orderid: int, note: str) -> int:
    """Close every open exception of an order whose cause is gone (e.g. it has now posted)."""
    cur = conn.execute(
        """
        update sitoo_erp.exception set status = 'resolved', resolved_at = now(), resolution_note = %s
        where orderid = %s and status = 'open'
        """,
        (note, orderid),
    )
    return cur.rowcount
