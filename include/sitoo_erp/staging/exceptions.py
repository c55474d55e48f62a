"""Exceptions: every gap surfaced by name, one open row per cause (not one per run).

A cause is ``(kind, subject_key)`` — e.g. ``("unknown_sku", "order:884211:sku:ABC-1")``. Raising
the same cause again bumps ``last_seen_at`` and ``occurrences`` on the open row; once resolved
or ignored, a new occurrence opens a fresh row.

This module is the only writer of ``sitoo_erp.exception``: the jobs open causes, resolve the ones
that are gone and claim the news for an alert through the functions below; a person's decisions
(ignore, resolve, owner) come through ``operations.actions``, which calls them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import psycopg

from include.sitoo_erp.posting import states as S


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


def record_exception(
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


def resolve_subjects(
    conn: psycopg.Connection, subject_keys: Sequence[str], note: str, kind: ExceptionKind | None = None
) -> int:
    """Close the open exceptions of these causes (of ``kind``, else any kind) once gone: a stock day's
    movements posted, a day's tender journal taken by the ERP."""
    if not subject_keys:
        return 0
    cur = conn.execute(
        """
        update sitoo_erp.exception set status = 'resolved', resolved_at = now(), resolution_note = %(note)s
        where status = 'open' and subject_key = any(%(keys)s) and (%(kind)s::text is null or kind = %(kind)s)
        """,
        {"note": note, "keys": list(subject_keys), "kind": None if kind is None else str(kind)},
    )
    return cur.rowcount


def resolve_gone(
    conn: psycopg.Connection,
    *,
    rule_prefix: str,
    still_failing: Sequence[str],
    note: str,
    orderids: Sequence[int] | None = None,
    subject_prefix: str | None = None,
) -> int:
    """A gate's open causes that did not fail this time: resolved. Scoped to the gate's rules
    (``rule_prefix``) and to what it looked at (the batch's ``orderids`` or a ``subject_prefix``)."""
    cur = conn.execute(
        """
        update sitoo_erp.exception
           set status = 'resolved', resolved_at = now(), resolution_note = %(note)s
         where status = 'open' and starts_with(rule, %(rule)s)
           and (%(orderids)s::bigint[] is null or orderid = any(%(orderids)s::bigint[]))
           and (%(subject)s::text is null or starts_with(subject_key, %(subject)s::text))
           and not (subject_key = any(%(keep)s::text[]))
        """,
        {
            "note": note,
            "rule": rule_prefix,
            "orderids": None if orderids is None else list(orderids),
            "subject": subject_prefix,
            "keep": list(still_failing),
        },
    )
    return cur.rowcount


def resolve_stalled_no_longer_held(conn: psycopg.Connection) -> int:
    """Stalled exceptions of orders that closed, were cancelled or posted: the stall is over."""
    cur = conn.execute(
        f"""
        update sitoo_erp.exception e set status = 'resolved', resolved_at = now(),
               resolution_note = 'no longer held: ' || s.state || ' (' || s.reason || ')'
          from sitoo_erp.order_state s
         where e.kind = '{ExceptionKind.STALLED}' and e.status = 'open' and e.orderid = s.orderid
           and not (s.state = '{S.HELD}' and s.reason_code in {S.NOT_FINALISED_SQL})
        """
    )
    return cur.rowcount


def claim_unalerted(
    conn: psycopg.Connection, kinds: Sequence[str], subject_keys: Sequence[str]
) -> list[tuple[str, str, str]]:
    """Mark these open causes as announced, in the caller's transaction, and return the ones no
    e-mail had announced yet as ``(rule, kind, subject_key)``: an alert's news, never sent twice."""
    return conn.execute(
        """
        update sitoo_erp.exception e set alerted_at = now()
          from unnest(%s::text[], %s::text[]) as f(kind, subject_key)
         where e.kind = f.kind and e.subject_key = f.subject_key and e.status = 'open'
           and e.alerted_at is null
        returning e.rule, e.kind, e.subject_key
        """,
        (list(kinds), list(subject_keys)),
    ).fetchall()


def close_by_person(
    conn: psycopg.Connection | psycopg.Cursor[Any], exception_id: int, status: str, note: str, actor: str
) -> None:
    """A person ignores or resolves one exception (``operations.actions`` audits the decision)."""
    if status not in ("ignored", "resolved"):
        raise ValueError(f"a person closes an exception as ignored or resolved, not {status!r}")
    conn.execute(
        """
        update sitoo_erp.exception set status = %s, resolved_at = now(), resolution_note = %s, updated_by = %s
         where exception_id = %s
        """,
        (status, note, actor, exception_id),
    )


def reassign_open(conn: psycopg.Connection | psycopg.Cursor[Any], kind: str, owner: str) -> int:
    """A kind's new owner takes over its open exceptions."""
    return conn.execute(
        "update sitoo_erp.exception set owner = %s where kind = %s and status = 'open'", (owner, kind)
    ).rowcount


def resolve_fixed(
    conn: psycopg.Connection, cause_sql: str, params: dict[str, Any], note: str, actor: str
) -> list[int]:
    """Resolve the open exceptions (alias ``e``) whose cause a person's fix removed, at once.

    ``cause_sql`` is the predicate of the fix's causes (a mapping knows which of its keys and old
    values an exception names: ``operations.actions.close_fixed_exceptions``)."""
    rows = conn.execute(
        f"""
        update sitoo_erp.exception e
           set status = 'resolved', resolved_at = now(), resolution_note = %(note)s, updated_by = %(actor)s
         where e.status = 'open' and ({cause_sql})
        returning e.exception_id
        """,
        {**params, "note": note, "actor": actor},
    ).fetchall()
    return [r[0] for r in rows]


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
