"""Receipts that change in Sitoo after they were posted: corrected in the ERP or raised, never silent.

Sitoo has no modified-date filter for orders, so a change is seen whenever the order is staged
again (an hourly window re-run or backfill, the held re-check, the monthly reconciliation sweep).
Staging hashes each receipt's ledger-relevant content (``sitoo_order.content_hash``); posting
records the hash of what the ERP was given (``posting_log.content_hash``). On every run, before
classification, :func:`review_posted` compares the two for every posted receipt, and its state:

=========================================================  =========================================
what changed                                               what happens
=========================================================  =========================================
content, same document kind and externalId, period open    **corrected**: the receipt goes back
                                                           through the gate and is re-PUT under the
                                                           same externalId, so NetSuite updates the
                                                           same document (same internal id)
content, tranDate (old or new) on/before ``closed_through``  ``changed_after_posting`` for finance
content, kind or externalId changed (sale <-> return,      ``changed_after_posting`` for finance
receipt number or store changed)
cancelled / no longer finalised after posting              ``cancelled_after_posting`` for finance
=========================================================  =========================================

**Summary posting mode** (``posting/summary.py``): a receipt that changes or is cancelled after its
daily summary posted is always raised for finance (``changed_after_posting`` /
``cancelled_after_posting``, naming the summary document and the receipt's share of it). A posted
summary is never rewritten, and staging keeps only the receipt's current content, not the lines it
contributed, so a correcting delta cannot be built safely by the pipeline; finance books it (or
reverses it) in the open period and closes the exception.

Every detection is one ``posting_revision`` row (old/new hash, old/new gross and tax, when, which
run, the action and, once re-posted, the ERP id that was corrected) and one ``audit_log`` row. The
receipt stays ``posted`` while an exception is open: the ERP holds its (now wrong) document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from include.sitoo_erp.domain import FINALISED_SQL, OrderState
from include.sitoo_erp.erp.adapter import DocumentKind
from include.sitoo_erp.posting import states as S
from include.sitoo_erp.posting.documents import DocumentError, external_id_for
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception

CHANGED_SQL = f"""
select pl.orderid, pl.external_id, pl.erp_id, pl.document_type, pl.tran_date, pl.content_hash,
       o.content_hash, pl.gross_amount, pl.tax_amount, o.money_gross, o.money_vat, o.orderstateid,
       o.paymentstateid, o.ordertypeid, o.store_externalid, o.receipt_id, o.business_date,
       o.refund_of_orderid, not {FINALISED_SQL} as not_finalised
  from sitoo_erp.posting_log pl
  join sitoo_erp.sitoo_order o on o.orderid = pl.orderid
  join sitoo_erp.order_state s on s.orderid = pl.orderid
 where pl.document_type in ('sale', 'refund', 'credit_memo') and s.state = '{S.POSTED}'
   and ((pl.content_hash is not null and o.content_hash is distinct from pl.content_hash) or not {FINALISED_SQL})
 order by pl.orderid
"""


# Summary mode: receipts in a posted daily summary whose staged content or state moved since.
SUMMARISED_CHANGED_SQL = f"""
select r.orderid, d.external_id, d.erp_id, d.document_type, d.business_date, r.content_hash, o.content_hash,
       r.gross_amount, r.tax_amount, o.money_gross, o.money_vat, o.orderstateid, o.paymentstateid,
       o.store_externalid, o.receipt_id, o.business_date, not {FINALISED_SQL} as not_finalised, d.supplement
  from sitoo_erp.summary_receipt r
  join sitoo_erp.summary_document d using (external_id)
  join sitoo_erp.sitoo_order o on o.orderid = r.orderid
  join sitoo_erp.order_state s on s.orderid = r.orderid
 where d.status = 'posted' and s.state = '{S.POSTED}'
   and ((r.content_hash is not null and o.content_hash is distinct from r.content_hash) or not {FINALISED_SQL})
 order by r.orderid
"""


@dataclass
class ReviewSummary:
    corrections: int = 0
    changed_exceptions: int = 0
    cancelled_exceptions: int = 0
    receipts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _kind(gross: Decimal, refund_of: int | None, document_type: str) -> str:
    """The document type the receipt needs now (a return keeps its refund / credit memo choice)."""
    is_return = gross < 0 or (gross == 0 and refund_of is not None)
    if not is_return:
        return str(DocumentKind.SALE)
    return document_type if document_type != str(DocumentKind.SALE) else str(DocumentKind.REFUND)


def _revision_record(
    oid: int,
    eid: str,
    erp_id: str | None,
    hashes: tuple[str | None, str | None],
    gross: tuple[Decimal | int, Decimal],
    tax: tuple[Decimal | int, Decimal],
    orderstateid: int | None,
    paymentstateid: int | None,
    run_id: str | None,
) -> dict[str, Any]:
    """What changed on a posted receipt, old → new, for the ``posting_revision`` audit row."""
    return {
        "orderid": oid,
        "external_id": eid,
        "erp_id": erp_id,
        "old_hash": hashes[0],
        "new_hash": hashes[1],
        "old_gross": gross[0],
        "new_gross": gross[1],
        "old_tax": tax[0],
        "new_tax": tax[1],
        "old_state": "posted",
        "new_state": f"orderstateid={orderstateid}, paymentstateid={paymentstateid}",
        "run": run_id,
    }


def _state_change(orderstateid: int | None, new_state: str) -> tuple[str, str]:
    """(change kind, words) for a posted receipt that is no longer finalised in Sitoo."""
    if orderstateid == OrderState.CANCELLED:
        return "cancelled", "cancelled"
    return "no_longer_finalised", f"no longer finalised ({new_state})"


def _raise_changed(conn: psycopg.Connection, oid: int, store: str, new_hash: str | None, message: str) -> int:
    """The finance exception for a posted receipt whose content changed in Sitoo: one per new content,
    in either posting mode (a receipt edited twice raises twice; the same edit seen again does not)."""
    return record_exception(
        conn,
        ExceptionKind.CHANGED_AFTER_POSTING,
        subject_key=f"order:{oid}:changed_after_posting:{(new_hash or '')[:16]}",
        orderid=oid,
        store_externalid=store,
        field="content_hash",
        rule="posted.content_unchanged",
        message=message,
    )


def _raise_cancelled(conn: psycopg.Connection, oid: int, store: str, eid: str, message: str) -> int:
    """The finance exception for a posted receipt that is no longer finalised in Sitoo (cancelled):
    one per document it went into, in either posting mode."""
    return record_exception(
        conn,
        ExceptionKind.CANCELLED_AFTER_POSTING,
        subject_key=f"order:{oid}:cancelled_after_posting:{eid}",
        orderid=oid,
        store_externalid=store,
        field="orderstateid",
        rule="posted.state_unchanged",
        message=message,
    )


def review_posted(
    conn: psycopg.Connection, closed_through: date | None = None, run_id: str | None = None
) -> ReviewSummary:
    """Act on every posted receipt whose staged content or state no longer matches what was posted."""
    summary = ReviewSummary()
    rows = conn.execute(CHANGED_SQL).fetchall()
    for (
        oid,
        eid,
        erp_id,
        dtype,
        tran_date,
        old_hash,
        new_hash,
        old_gross_doc,
        old_tax_doc,
        new_gross,
        new_tax,
        orderstateid,
        paymentstateid,
        _ordertypeid,
        store,
        receipt,
        business_date,
        refund_of,
        not_finalised,
    ) in rows:
        sign = 1 if dtype == str(DocumentKind.SALE) else -1
        old_gross, old_tax = sign * (old_gross_doc or 0), sign * (old_tax_doc or 0)
        who = f"receipt {receipt} (order {oid}, store {store})"
        posted_as = f"{eid} (ERP id {erp_id}, tranDate {tran_date}, gross {old_gross}, tax {old_tax})"
        revision = _revision_record(
            oid,
            eid,
            erp_id,
            (old_hash, new_hash),
            (old_gross, new_gross),
            (old_tax, new_tax),
            orderstateid,
            paymentstateid,
            run_id,
        )
        if not_finalised:
            change, what = _state_change(orderstateid, revision["new_state"])
            message = (
                f"{who} was {what} in Sitoo after it was posted as {posted_as}: the ERP still holds it. "
                "Remedy: reverse it in NetSuite (void the document while its period is open, else a refund / "
                "credit memo in the open period), then Ignore this exception naming the reversal."
            )
            exc = _raise_cancelled(conn, oid, store, eid, message)
            _revision(conn, revision, change, "exception", "raised", what, exc)
            summary.cancelled_exceptions += 1
            summary.receipts.append(f"{eid}: {what}")
            continue

        # Content changed: can the same document be corrected in place?
        new_kind = _kind(new_gross, refund_of, dtype)
        try:
            new_eid = external_id_for(DocumentKind(new_kind), store, receipt, oid)
        except (DocumentError, ValueError):
            new_eid = None
        changed = f"gross {old_gross} -> {new_gross}, tax {old_tax} -> {new_tax}"
        if tran_date != business_date:
            changed += f", tranDate {tran_date} -> {business_date}"
        closed = closed_through is not None and (
            tran_date <= closed_through or (business_date is not None and business_date <= closed_through)
        )
        if new_kind != dtype or new_eid != eid:
            reason = (
                f"the receipt now needs {new_kind} {new_eid} instead of {dtype} {eid}; the ERP cannot turn one "
                "document into the other"
            )
            remedy = (
                "Remedy: reverse the old document in NetSuite (void, or a refund / credit memo), then Resolve this "
                "exception: the next run posts the receipt under its new key."
            )
        elif closed:
            reason = f"its period is closed (closed through {closed_through})"
            remedy = (
                "Remedy: book the difference in the open period by hand (a correcting cash sale or credit memo) and "
                "Ignore this exception naming it; or reopen the period, move sitoo_erp_closed_through back and "
                "Resolve: the next run corrects the document in place."
            )
        else:
            ledger.back_to_staged(conn, oid)
            _revision(
                conn, revision, "content", "correct", "pending", f"changed after posting: {changed}", None
            )
            summary.corrections += 1
            summary.receipts.append(f"{eid}: correcting ({changed})")
            continue
        message = (
            f"{who} changed in Sitoo after it was posted as {posted_as}: {changed}. Not corrected "
            f"automatically: {reason}. {remedy}"
        )
        exc = _raise_changed(conn, oid, store, new_hash, message)
        _revision(conn, revision, "content", "exception", "raised", f"{changed}; {reason}", exc)
        summary.changed_exceptions += 1
        summary.receipts.append(f"{eid}: raised ({changed}; {reason})")
    _review_summarised(conn, closed_through, run_id, summary)
    return summary


def _review_summarised(
    conn: psycopg.Connection, closed_through: date | None, run_id: str | None, summary: ReviewSummary
) -> None:
    """Summary mode: a receipt that moved after its daily summary posted is raised for finance, never
    silent; the summary stays as posted (see the module docstring)."""
    for (
        oid,
        eid,
        erp_id,
        dtype,
        day,
        old_hash,
        new_hash,
        old_gross_doc,
        old_tax_doc,
        new_gross,
        new_tax,
        orderstateid,
        paymentstateid,
        store,
        receipt,
        business_date,
        not_finalised,
        supplement,
    ) in conn.execute(SUMMARISED_CHANGED_SQL).fetchall():
        sign = 1 if dtype == str(DocumentKind.SALE) else -1
        old_gross, old_tax = sign * (old_gross_doc or 0), sign * (old_tax_doc or 0)
        who = f"receipt {receipt} (order {oid}, store {store})"
        label = "daily summary" + (f" supplement {supplement}" if supplement else "")
        posted_as = (
            f"{label} {eid} (ERP id {erp_id}, business day {day}) with gross {old_gross}, tax {old_tax}"
        )
        period = (
            f" Its period is closed (closed through {closed_through}): book it in the open period."
            if closed_through is not None and day <= closed_through
            else ""
        )
        revision = _revision_record(
            oid,
            eid,
            erp_id,
            (old_hash, new_hash),
            (old_gross, new_gross),
            (old_tax, new_tax),
            orderstateid,
            paymentstateid,
            run_id,
        )
        if not_finalised:
            change, what = _state_change(orderstateid, revision["new_state"])
            message = (
                f"{who} was {what} in Sitoo after it was posted in {posted_as}: the ERP still holds its share. "
                "A posted summary is never rewritten. Remedy: book a cash refund / credit memo of gross "
                f"{old_gross} (tax {old_tax}) for it in the open period, then Ignore this exception naming it."
                + period
            )
            exc = _raise_cancelled(conn, oid, store, eid, message)
            _revision(conn, revision, change, "exception", "raised", f"{what} (summary mode)", exc)
            summary.cancelled_exceptions += 1
            summary.receipts.append(f"{eid}: order {oid} {what}")
            continue
        changed = f"gross {old_gross} -> {new_gross}, tax {old_tax} -> {new_tax}"
        if business_date != day:
            changed += f", business day {day} -> {business_date}"
        message = (
            f"{who} changed in Sitoo after it was posted in {posted_as}: {changed}. A posted summary is never "
            "rewritten and the pipeline keeps only the receipt's current content, so it is not corrected "
            "automatically. Remedy: book the difference in the open period by hand (a correcting cash sale or "
            "credit memo) and Ignore this exception naming it." + period
        )
        exc = _raise_changed(conn, oid, store, new_hash, message)
        _revision(conn, revision, "content", "exception", "raised", f"{changed} (summary mode)", exc)
        summary.changed_exceptions += 1
        summary.receipts.append(f"{eid}: order {oid} raised ({changed})")


def _revision(
    conn: psycopg.Connection,
    r: dict,
    change: str,
    action: str,
    status: str,
    reason: str,
    exception_id: int | None,
) -> None:
    """One revision row per detected change (re-seeing the same change adds nothing) + its audit row."""
    row = conn.execute(
        """
        insert into sitoo_erp.posting_revision (orderid, external_id, erp_id, change, action, status, reason,
            old_hash, new_hash, old_gross, new_gross, old_tax, new_tax, old_state, new_state, detected_run,
            exception_id)
        values (%(orderid)s, %(external_id)s, %(erp_id)s, %(change)s, %(action)s, %(status)s, %(reason)s,
                %(old_hash)s, %(new_hash)s, %(old_gross)s, %(new_gross)s, %(old_tax)s, %(new_tax)s, %(old_state)s,
                %(new_state)s, %(run)s, %(exception_id)s)
        on conflict (orderid, external_id, change, new_hash) do update
           set status = excluded.status, action = excluded.action, reason = excluded.reason,
               exception_id = excluded.exception_id
         where posting_revision.status <> 'corrected' and posting_revision.status <> excluded.status
        returning revision_id
        """,
        {
            **r,
            "change": change,
            "action": action,
            "status": status,
            "reason": reason,
            "exception_id": exception_id,
        },
    ).fetchone()
    if row is None:
        return
    conn.execute(
        """
        insert into sitoo_erp.audit_log (entity, entity_key, action, before, after, actor, source, note)
        values ('posting_log', %s, %s, %s, %s, 'sitoo_erp', 'pipeline', %s)
        """,
        (
            r["external_id"],
            "correct" if action == "correct" else "raise",
            json.dumps({"hash": r["old_hash"], "gross": str(r["old_gross"]), "tax": str(r["old_tax"])}),
            json.dumps(
                {
                    "hash": r["new_hash"],
                    "gross": str(r["new_gross"]),
                    "tax": str(r["new_tax"]),
                    "state": r["new_state"],
                }
            ),
            f"revision {row[0]} (run {r['run']}): {reason}"[:1000],
        ),
    )


def mark_corrected(conn: psycopg.Connection, orderid: int, erp_id: str) -> int:
    """Called in the posting step's transaction: the pending correction of this receipt is in the ERP."""
    return conn.execute(
        "update sitoo_erp.posting_revision set status = 'corrected', corrected_at = now(), corrected_erp_id = %s "
        "where orderid = %s and status = 'pending'",
        (erp_id, orderid),
    ).rowcount
