"""Daily summary posting: one ERP document per store x business day, for stores that outgrow
one document per receipt (``posting_mode = daily_summary``, ``sitoo_erp.store_posting_mode``).

Each receipt is first built exactly as receipt mode builds it (``documents.build_document``: POS
VAT per rate by ``posting/vat.py``, the per-line tax allocation, loyalty at document level, the
tenders), then the day's receipt documents are added up:

- **lines** per (ERP item, tax code, direction of quantity): quantity, net and tax summed, so per
  tax code the summary's tax is exactly the sum of the receipts' POS VAT (``taxDetailsOverride``
  as today), and the variance against the ERP's own per-line computation is recorded per document;
- **loyalty** at document level: the receipts' bonus-cheque discounts summed per rate;
- **tenders** summed per payment method: one bank method alone is the cash sale's method, else
  the POS settlement method, and the day's tender journal moves each tender's day total from the
  settlement account to the tender's own account, on the store's location (invariant 11). That
  journal is one per business day (and subsidiary) for *all* summary stores
  (``SITOO-TJ-D-{yyyymmdd}-J{n}``, more under the ERP's 200-line limit), not one per document:
  ~22 journals for a 300-store day instead of one per multi-tender document (~900);
- one ``cashSale`` for the day's sales (``SITOO-D-{store}-{yyyymmdd}``) and one ``cashRefund`` /
  ``creditMemo`` for its returns (``SITOO-DR-…``), upserted by externalId (exactly once).

A day is summarised once it has closed in the store's timezone plus ``grace`` (default 6 h: the
next morning). Receipts that arrive after their day was summarised (offline tills, a held order
that closes later, a quarantined receipt once fixed) go into a numbered **supplement**
(``…-S1``, ``…-S2``): a posted summary is never rewritten. A day on or before ``closed_through``
takes nothing more: such receipts are quarantined as ``closed_period`` exceptions for finance.
More lines than the ERP takes per document (``max_lines``, NetSuite 200) split the day into parts
(``…-P2``), each a whole set of receipts, so every part balances with its own tenders.

Exactly once: the receipts of a document are assigned to it (``summary_receipt``, one row per
receipt, orderid unique) and committed as ``pending`` *before* the ERP call; a run that dies
before the answer is recorded leaves the document pending and the next run re-sends exactly it
(same externalId, same receipts). Only the ERP's success marks its receipts ``posted``, naming
the document and the lines their rows went into. The same for the day's tender journal: a posted
document whose tenders owe a journal (``tender_journal_external_id = 'owed'``) is given one under
a lock per business day, committed before the call, and the journal's membership never changes:
a lost answer re-sends the same journal with the same documents.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import TypeAdapter

from include.sitoo_erp.domain import DEFAULT_TIMEZONE, sanitise_key
from include.sitoo_erp.erp.adapter import DocumentKind, ErpRejected, PostResult
from include.sitoo_erp.http_retry import ApiError, TransientApiError
from include.sitoo_erp.posting import states as S
from include.sitoo_erp.posting.documents import (
    DayTenderJournal,
    DiscountTax,
    DocumentDiscount,
    DocumentError,
    DocumentLine,
    DocumentOptions,
    LedgerDocument,
    LineKind,
    Mappings,
    ReceiptInput,
    ReturnDocument,
    StoreJournalLine,
    TenderSplit,
    _tender_plan,
    build_document,
    r2,
)
from include.sitoo_erp.posting.post import (
    PostingSummary,
    _build,
    _quarantine,
    line_fingerprint,
    load_mappings,
    receipt_inputs,
)
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.db import one_row
from include.sitoo_erp.staging.exceptions import (
    ExceptionKind,
    record_exception,
    resolve_exceptions_of,
    resolve_subjects,
)
from include.sitoo_erp.staging.locks import lock_stage

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
RECEIPT = "receipt"
DAILY_SUMMARY = "daily_summary"
POSTING_MODES = (RECEIPT, DAILY_SUMMARY)
DEFAULT_STORE = "*"  # store_posting_mode row holding the deployment's default
# NetSuite Help, "Limitations for Creating Transactions": invoices (a cash sale is one paid at once)
# and journal entries take at most 200 lines.
NETSUITE_MAX_LINES = 200
# A posted summary document whose tenders still owe their journal: it joins the next tender journal
# of its business day. Documents paid by one bank method owe none (NULL).
JOURNAL_OWED = "owed"


# ---------------------------------------------------------------------------------------------- settings
def set_posting_mode(
    conn: psycopg.Connection,
    mode: str,
    effective_from: date,
    store_externalid: str | None = None,
    changed_by: str | None = None,
) -> None:
    """Store ``store_externalid`` (None: the deployment default) posts in ``mode`` from
    ``effective_from`` on. Days before keep the mode they had: what posted stays as posted."""
    if mode not in POSTING_MODES:
        raise ValueError(f"posting_mode must be one of {POSTING_MODES}, got {mode!r}")
    conn.execute(
        """
        insert into sitoo_erp.store_posting_mode (store_externalid, effective_from, posting_mode, changed_by)
        values (%s, %s, %s, %s)
        on conflict (store_externalid, effective_from) do update
           set posting_mode = excluded.posting_mode, changed_by = excluded.changed_by, changed_at = now()
        """,
        (store_externalid or DEFAULT_STORE, effective_from, mode, changed_by),
    )


def posting_mode(conn: psycopg.Connection, store_externalid: str, business_date: date) -> str:
    row = conn.execute("select sitoo_erp.posting_mode(%s, %s)", (store_externalid, business_date)).fetchone()
    assert row is not None  # a function call: always one row
    return row[0]


# ---------------------------------------------------------------------------------------------- keys
def summary_external_id(
    direction: str, store: str, business_date: date, supplement: int = 0, part: int = 1
) -> str:
    """``SITOO-D-ST001-20261116`` (sales) / ``SITOO-DR-…`` (returns), ``-S{n}`` for a supplement,
    ``-P{n}`` for the n-th part of a day split under the ERP's line limit."""
    key = f"SITOO-{'D' if direction == 'sale' else 'DR'}-{store}-{business_date:%Y%m%d}"
    if supplement:
        key += f"-S{supplement}"
    if part > 1:
        key += f"-P{part}"
    return sanitise_key(key)


def day_journal_external_id(business_date: date, number: int) -> str:
    """``SITOO-TJ-D-20261116-J1``: the business day's n-th tender journal (all summary stores)."""
    return sanitise_key(f"SITOO-TJ-D-{business_date:%Y%m%d}-J{number}")


# ---------------------------------------------------------------------------------------------- pure part
def day_journals(
    documents: list[LedgerDocument], business_date: date, first_number: int, max_lines: int
) -> list[DayTenderJournal]:
    """The documents' tender journals in as few journal entries as the ERP takes: one subsidiary
    each, at most ``max_lines`` lines, each document's lines whole (so every journal balances and
    each store's settlement account clears on its own location). Numbered from ``first_number``."""
    by_subsidiary: dict[str, list[LedgerDocument]] = {}
    for doc in sorted(documents, key=lambda d: d.external_id):
        if doc.tender_journal is not None and doc.tender_journal.lines:
            by_subsidiary.setdefault(doc.subsidiary_id or "", []).append(doc)
    batches: list[list[LedgerDocument]] = []
    for subsidiary in sorted(by_subsidiary):
        count = 0
        batches.append([])
        for doc in by_subsidiary[subsidiary]:
            n = len(doc.tender_journal.lines)  # type: ignore[union-attr]
            if n > max_lines:
                raise DocumentError(
                    f"{doc.external_id}: {n} tender journal lines, more than the ERP takes ({max_lines})",
                    field="sitoo_payment",
                    rule="lines.max_per_document",
                )
            if batches[-1] and count + n > max_lines:
                batches.append([])
                count = 0
            batches[-1].append(doc)
            count += n
    out = []
    for number, batch in enumerate(batches, start=first_number):
        stores = len({d.store_externalid for d in batch})
        out.append(
            DayTenderJournal(
                external_id=day_journal_external_id(business_date, number),
                subsidiary_id=batch[0].subsidiary_id,
                tran_date=business_date,
                memo=(
                    f"Sitoo daily summary tenders {business_date:%Y-%m-%d}: {len(batch)} documents of "
                    f"{stores} stores, each tender from the POS settlement account to its own account"
                ),
                lines=tuple(
                    StoreJournalLine(ln, d.location_id, d.customer_id, d.external_id)
                    for d in batch
                    for ln in d.tender_journal.lines  # type: ignore[union-attr]
                ),
                documents=tuple(d.external_id for d in batch),
            )
        )
    return out


def _line_key(ln: DocumentLine) -> tuple:
    return (ln.kind, ln.item_id, ln.vat_rate, ln.tax_code_id, ln.tax_type_id, ln.quantity >= 0)


@dataclass(frozen=True)
class DaySummary:
    """One summary document and, per receipt, the document lines its rows went into."""

    document: LedgerDocument
    lines_by_order: dict[int, list[int]]
    receipts: tuple[LedgerDocument, ...]


def pack(docs: list[LedgerDocument], max_lines: int) -> list[list[LedgerDocument]]:
    """Whole receipts into parts of at most ``max_lines`` summary lines (orderid order)."""
    parts: list[list[LedgerDocument]] = []
    keys: set[tuple] = set()
    for doc in sorted(docs, key=lambda d: d.orderid):
        mine = {_line_key(ln) for ln in doc.lines}
        if len(mine) > max_lines:
            raise DocumentError(
                f"{len(mine)} lines on one receipt, more than the ERP takes ({max_lines})",
                orderid=doc.orderid,
                field="orderitems",
                rule="lines.max_per_document",
            )
        if not parts or len(keys | mine) > max_lines:
            parts.append([])
            keys = set()
        parts[-1].append(doc)
        keys |= mine
    return parts


def summarise(
    docs: list[LedgerDocument],
    external_id: str,
    store: str,
    business_date: date,
    mappings: Mappings,
    memo: str,
) -> DaySummary:
    """Add up receipt documents of one direction (all sales, or all returns) into one document."""
    if not docs:
        raise ValueError("nothing to summarise")
    kind = docs[0].kind
    if any(d.kind != kind for d in docs):
        raise ValueError(f"{external_id}: receipts of different kinds cannot share a summary")
    first = docs[0]
    grouped: dict[tuple, dict[str, Any]] = {}
    lines_by_order: dict[int, list[int]] = {}
    for doc in docs:
        for ln in doc.lines:
            key = _line_key(ln)
            g = grouped.get(key)
            if g is None:
                g = grouped[key] = {
                    "line_no": len(grouped) + 1,
                    "kind": ln.kind,
                    "item_id": ln.item_id,
                    "quantity": Decimal(0),
                    "amount": ZERO,
                    "vat_rate": ln.vat_rate,
                    "tax_code_id": ln.tax_code_id,
                    "tax_type_id": ln.tax_type_id,
                    "tax_amount": ZERO,
                    "pos_line_tax": ZERO,
                    "description": (
                        "Cash rounding"
                        if ln.kind == LineKind.ROUNDING
                        else "Gift cards sold"
                        if ln.kind == LineKind.GIFT_CARD
                        else " ".join(x for x in (ln.sku, ln.description) if x) or None
                    ),
                    "sku": ln.sku,
                }
            g["quantity"] += Decimal(1) if ln.kind == LineKind.ROUNDING else ln.quantity
            g["amount"] += ln.amount
            g["tax_amount"] += ln.tax_amount
            g["pos_line_tax"] += ln.pos_line_tax
            nos = lines_by_order.setdefault(doc.orderid, [])
            if g["line_no"] not in nos:
                nos.append(g["line_no"])
    lines = []
    for g in grouped.values():
        qty = g["quantity"]
        rate = g["amount"] if g["kind"] == LineKind.ROUNDING or not qty else r2(g["amount"] / qty)
        if g["kind"] == LineKind.ROUNDING:
            qty = Decimal(1)
        lines.append(DocumentLine(**{**g, "quantity": qty, "rate": rate}))

    # Loyalty at document level: the receipts' discounts per rate.
    discount = None
    with_discount = [d.discount for d in docs if d.discount is not None]
    if with_discount:
        per_rate: dict[Decimal, list] = {}
        for disc in with_discount:
            for dt in disc.taxes:
                acc = per_rate.setdefault(dt.vat_rate, [dt.tax_code_id, dt.tax_type_id, ZERO, ZERO])
                acc[2] += dt.basis
                acc[3] += dt.tax_amount
        discount = DocumentDiscount(
            item_id=with_discount[0].item_id,
            amount=sum((d.amount for d in with_discount), ZERO),
            taxes=tuple(DiscountTax(r, c, t, b, x) for r, (c, t, b, x) in sorted(per_rate.items())),
            gross=sum((d.gross for d in with_discount), ZERO),
        )

    pos_tax: dict[Decimal, Decimal] = {}
    for doc in docs:
        for rate, v in doc.pos_tax_by_rate.items():
            pos_tax[rate] = pos_tax.get(rate, ZERO) + v
    erp_tax: dict[Decimal, Decimal] = {}
    for ln in lines:
        erp_tax[ln.vat_rate] = erp_tax.get(ln.vat_rate, ZERO) + r2(ln.amount * ln.vat_rate / HUNDRED)
    for dt in discount.taxes if discount else ():
        erp_tax[dt.vat_rate] = erp_tax.get(dt.vat_rate, ZERO) + r2(dt.basis * dt.vat_rate / HUNDRED)
    for rate in erp_tax:
        pos_tax.setdefault(rate, ZERO)
    variance = {rate: pos_tax[rate] - erp_tax.get(rate, ZERO) for rate in pos_tax}

    # Tenders per payment method (tender name), the day's totals.
    tenders: dict[str, TenderSplit] = {}
    for doc in docs:
        for t in doc.payments:
            prev = tenders.get(t.name)
            tenders[t.name] = (
                t
                if prev is None
                else TenderSplit(
                    t.name,
                    prev.amount + t.amount,
                    t.payment_method_id,
                    t.is_gift_card,
                    prev.is_virtual or t.is_virtual,
                    t.account_id,
                    prev.via_journal or t.via_journal,
                )
            )
    splits = sorted(tenders.values(), key=lambda t: t.name)
    method, journal = _tender_plan(kind, external_id, splits, mappings, first.orderid)
    tender_text = "; ".join(f"{t.name} {r2(t.amount):.2f}" for t in splits)
    full_memo = f"{memo} | {tender_text}" if tender_text else memo
    summary = LedgerDocument(
        kind=kind,
        external_id=external_id,
        orderid=0,
        receipt_id=None,
        store_externalid=store,
        tran_date=business_date,
        memo=full_memo[:996] + "..." if len(full_memo) > 999 else full_memo,
        location_id=first.location_id,
        customer_id=first.customer_id,
        subsidiary_id=first.subsidiary_id,
        lines=tuple(lines),
        discount=discount,
        payments=tuple(splits),
        payment_method_id=method,
        sign=first.sign,
        created_from_external_id=None,
        created_from_orderid=None,
        pos_tax_by_rate=pos_tax,
        erp_line_tax_by_rate=erp_tax,
        tax_variance_by_rate=variance,
        tender_journal=journal,
    )
    # Nothing lost in the adding up: totals and tax per rate are the receipts' to the penny.
    for what, got, want in (
        ("net", summary.net_total, sum((d.net_total for d in docs), ZERO)),
        ("tax", summary.tax_total, sum((d.tax_total for d in docs), ZERO)),
        ("gross", summary.gross_total, sum((d.gross_total for d in docs), ZERO)),
    ):
        if got != want:
            raise DocumentError(
                f"{external_id}: summary {what} {got} != receipts' {want}", field=what, rule="summary.totals"
            )
    by_rate = summary.tax_by_rate()
    if any(by_rate.get(rate, ZERO) != v for rate, v in pos_tax.items()):
        raise DocumentError(
            f"{external_id}: tax per rate differs from the receipts' POS VAT", rule="summary.tax_per_rate"
        )
    if journal is not None and sum((t.amount for t in splits), ZERO) != summary.gross_total:
        raise DocumentError(
            f"{external_id}: the day's tenders add up to {sum((t.amount for t in splits), ZERO)}, the documents to "
            f"{summary.gross_total}",
            field="sitoo_payment.amount",
            rule="tenders.sum",
        )
    return DaySummary(summary, lines_by_order, tuple(docs))


# ---------------------------------------------------------------------------------------------- the step
@dataclass
class SummaryOptions:
    grace: timedelta = timedelta(hours=6)  # after the store's midnight: "the next morning"
    closed_through: date | None = None  # ERP periods up to this date take nothing more
    return_document: ReturnDocument = "cash_refund"
    max_lines: int = NETSUITE_MAX_LINES


@dataclass
class SummaryResult:
    store_days: int = 0
    documents_posted: int = 0
    supplements_posted: int = 0
    receipts_posted: int = 0
    resent_pending: int = 0
    quarantined: int = 0
    closed_period: int = 0
    transient_failures: int = 0
    tender_journals_posted: int = 0
    tender_journals_rejected: int = 0
    erp_calls: int = 0
    documents: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["documents"] = self.documents[:50]
        return out


CANDIDATES_SQL = f"""
select o.orderid, o.store_externalid, o.business_date
  from sitoo_erp.ready_receipt o
  join sitoo_erp.order_state s using (orderid)
 where s.gate_run_id is not null
   and o.business_date is not null
   and sitoo_erp.posting_mode(o.store_externalid, o.business_date) = '{DAILY_SUMMARY}'
   and not exists (select 1 from sitoo_erp.summary_receipt r where r.orderid = o.orderid)
   and ((o.business_date + 1)::timestamp + %(grace)s) at time zone coalesce(o.store_timezone, '{DEFAULT_TIMEZONE}')
       <= %(now)s
 order by o.store_externalid, o.business_date, o.orderid
"""


def _headers(conn: psycopg.Connection, orderids: list[int]) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from sitoo_erp.sitoo_order where orderid = any(%s) order by orderid", (orderids,)
        ).fetchall()


def _inputs(conn: psycopg.Connection, orderids: list[int]) -> list[ReceiptInput]:
    with conn.cursor(row_factory=dict_row) as cur:
        return receipt_inputs(cur, _headers(conn, orderids))


def _assign(
    conn: psycopg.Connection,
    part: DaySummary,
    direction: str,
    supplement: int,
    number: int,
    hashes: dict[int, str],
) -> bool:
    """Commit the document as pending with its receipts, before any ERP call. False if another run
    took any of these receipts first (it posts them)."""
    doc = part.document
    with conn.transaction():
        taken = conn.execute(
            "select 1 from sitoo_erp.summary_receipt where orderid = any(%s) limit 1",
            (list(part.lines_by_order),),
        ).fetchone()
        if taken:
            return False
        # The lines as the reconciliation proves them against the ERP (as posting_log per receipt).
        line_count, line_qty, line_item_qty = line_fingerprint(doc)
        conn.execute(
            """
            insert into sitoo_erp.summary_document (external_id, store_externalid, business_date, document_type,
                direction, supplement, part, status, receipt_count, line_count, line_qty, line_item_qty,
                net_amount, tax_amount, gross_amount, tax_variance, tender_journal_external_id, document)
            values (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
            """,
            (
                doc.external_id,
                doc.store_externalid,
                doc.tran_date,
                str(doc.kind),
                direction,
                supplement,
                number,
                len(part.receipts),
                line_count,
                line_qty,
                line_item_qty,
                doc.net_total,
                doc.tax_total,
                doc.gross_total,
                doc.total_variance,
                JOURNAL_OWED if doc.tender_journal is not None and doc.tender_journal.lines else None,
                _DOCUMENT_JSON.dump_json(doc).decode(),
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                """
                insert into sitoo_erp.summary_receipt (orderid, external_id, line_numbers, net_amount, tax_amount,
                    gross_amount, content_hash)
                values (%s, %s, %s, %s, %s, %s, %s)
                """,
                [
                    (
                        r.orderid,
                        doc.external_id,
                        part.lines_by_order[r.orderid],
                        r.net_total,
                        r.tax_total,
                        r.gross_total,
                        hashes.get(r.orderid),
                    )
                    for r in part.receipts
                ],
            )
    return True


def _record_posted(conn: psycopg.Connection, part: DaySummary, result: PostResult) -> None:
    """The document and every receipt in it posted, in one step with the ERP's success."""
    doc = part.document
    journal = result.related[0] if result.related else None
    with conn.transaction():
        lock_stage(conn, shared=True)
        conn.execute(
            """
            update sitoo_erp.summary_document
               set status = 'posted', erp_id = %s,
                   tender_journal_external_id = coalesce(%s, tender_journal_external_id),
                   tender_journal_erp_id = coalesce(%s, tender_journal_erp_id),
                   attempts = attempts + %s, posted_at = now(),
                   document = case when tender_journal_external_id = %s then %s::jsonb end
             where external_id = %s
            """,
            (
                result.erp_id,
                journal.external_id if journal else None,
                journal.erp_id if journal else None,
                result.attempts,
                JOURNAL_OWED,
                _DOCUMENT_JSON.dump_json(_tender_part(doc)).decode(),
                doc.external_id,
            ),
        )
        # Set-based: a store-day is ~170 receipts; one statement each, not two per receipt.
        ids = [r.orderid for r in part.receipts]
        reasons = [
            f"posted in daily summary {doc.external_id} (ERP id {result.erp_id}), lines "
            + ", ".join(str(n) for n in part.lines_by_order[r.orderid])
            for r in part.receipts
        ]
        ledger.mark_posted(conn, ids, reasons, S.ReasonCode.POSTED_IN_SUMMARY)
        resolve_exceptions_of(conn, ids, f"posted in daily summary {doc.external_id}")


def _send(
    conn: psycopg.Connection, erp: Any, part: DaySummary, out: SummaryResult, transient: list[str]
) -> None:
    doc = part.document
    out.erp_calls += 1
    try:
        # The document alone: its tenders go in the business day's tender journal (_post_day_journals).
        result = erp.post_document(replace(doc, tender_journal=None))
    except ErpRejected as err:
        # The ERP refused the whole document: free its receipts and name each one for finance.
        with conn.transaction():
            conn.execute("delete from sitoo_erp.summary_document where external_id = %s", (doc.external_id,))
        for r in part.receipts:
            out.quarantined += 1
            _quarantine(
                conn,
                r.orderid,
                r.store_externalid,
                ExceptionKind.ERP_REJECTED,
                err.code or "document",
                err.code or "erp.validation",
                f"daily summary {doc.external_id} rejected: {err.detail or err}",
                err.code or "rejected",
            )
        return
    except ApiError as err:
        if not err.transient:
            raise
        out.transient_failures += 1  # stays pending: the next run re-sends exactly this document
        transient.append(f"{doc.external_id}: {err}")
        return
    _record_posted(conn, part, result)
    out.documents_posted += 1
    out.supplements_posted += bool(re.search(r"-S\d+(-P\d+)?$", doc.external_id))
    out.receipts_posted += len(part.receipts)
    out.documents.append(doc.external_id)


def _build_part(
    conn: psycopg.Connection,
    mappings: Mappings,
    doc_options: DocumentOptions,
    external_id: str,
    store: str,
    business_date: date,
    receipts: list[LedgerDocument],
    label: str,
) -> DaySummary:
    memo = f"Sitoo daily summary {store} {business_date:%Y-%m-%d}{label}: {len(receipts)} receipts"
    return summarise(receipts, external_id, store, business_date, mappings, memo)


def _rebuild(
    conn: psycopg.Connection,
    mappings: Mappings,
    doc_options: DocumentOptions,
    external_id: str,
    store: str,
    business_date: date,
) -> DaySummary:
    """A summary document again from exactly the receipts assigned to it."""
    ids = [
        r[0]
        for r in conn.execute(
            "select orderid from sitoo_erp.summary_receipt where external_id = %s order by orderid",
            (external_id,),
        )
    ]
    docs = [build_document(r, mappings, doc_options) for r in _inputs(conn, ids)]
    return _build_part(conn, mappings, doc_options, external_id, store, business_date, docs, " (re-sent)")


def _resend_pending(
    conn, erp, mappings, doc_options, out: SummaryResult, transient: list[str], cache
) -> None:
    """Documents assigned by a run whose ERP answer never got recorded: the same receipts, the same key."""
    pending = conn.execute(
        "select external_id, store_externalid, business_date, document from sitoo_erp.summary_document "
        "where status = 'pending' order by external_id"
    ).fetchall()
    for external_id, store, business_date, stored in pending:
        part = _rebuild(conn, mappings, doc_options, external_id, store, business_date)
        if stored is not None:
            # Exactly the document the lost call sent (the ERP may hold it): not a rebuild from the
            # receipts' current content. A receipt that changed since is the after-posting review's.
            part = replace(
                part,
                document=_DOCUMENT_JSON.validate_python(stored),
                lines_by_order=_assigned_lines(conn, external_id),
            )
        _remember(cache, part)
        out.resent_pending += 1
        _send(conn, erp, part, out, transient)


def _remember(cache: dict[str, LedgerDocument], part: DaySummary) -> None:
    """Keep the summary document (not its receipts: memory stays flat over a month's backfill) when
    its tenders will owe a journal at the end of the run."""
    if part.document.tender_journal is not None:  # what day_journals reads; not the 200 item lines
        cache[part.document.external_id] = _tender_part(part.document)


# A summary document as JSON (Decimals as exact strings) and back: what _assign keeps for a re-send.
_DOCUMENT_JSON = TypeAdapter(LedgerDocument)


def _tender_part(doc: LedgerDocument) -> LedgerDocument:
    """What the day's tender journal reads of a posted document: not its (up to 200) item lines."""
    return replace(doc, lines=(), discount=None)


def _assigned_lines(conn: psycopg.Connection, external_id: str) -> dict[int, list[int]]:
    """Per receipt, the document lines its rows went into, as committed with the document."""
    return {
        oid: list(lines)
        for oid, lines in conn.execute(
            "select orderid, line_numbers from sitoo_erp.summary_receipt where external_id = %s",
            (external_id,),
        )
    }


def _member_documents(conn, mappings, doc_options, cache, rows) -> list[LedgerDocument]:
    docs = []
    stored = dict(
        conn.execute(
            "select external_id, document from sitoo_erp.summary_document "
            "where external_id = any(%s) and document is not null",
            ([r[0] for r in rows],),
        ).fetchall()
    )
    for external_id, store, business_date in rows:
        doc = cache.get(external_id)
        if doc is None and external_id in stored:  # posted by an earlier run: its tenders as posted
            doc = _DOCUMENT_JSON.validate_python(stored[external_id])
        if doc is None:  # assigned before documents were kept: rebuilt from exactly its receipts
            doc = _rebuild(conn, mappings, doc_options, external_id, store, business_date).document
        docs.append(doc)
    return docs


def _post_day_journals(
    conn: psycopg.Connection,
    erp: Any,
    mappings: Mappings,
    doc_options: DocumentOptions,
    cache: dict[str, LedgerDocument],
    max_lines: int,
    out: SummaryResult,
    transient: list[str],
) -> None:
    """Posted documents owing their tenders' journal get one per business day, then every journal
    not yet answered is (re-)sent. Membership is committed before the call and never changes."""
    days = [
        d
        for (d,) in conn.execute(
            "select distinct business_date from sitoo_erp.summary_document "
            "where status = 'posted' and tender_journal_external_id = %s order by 1",
            (JOURNAL_OWED,),
        )
    ]
    for business_date in days:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"summary-journal:{business_date}",))
            owed = conn.execute(
                "select external_id, store_externalid, business_date from sitoo_erp.summary_document "
                "where status = 'posted' and tender_journal_external_id = %s and business_date = %s "
                "order by external_id",
                (JOURNAL_OWED, business_date),
            ).fetchall()
            if not owed:
                continue  # another run took them
            prefix = day_journal_external_id(business_date, 0)[:-1]
            last = one_row(
                conn.execute(
                    "select coalesce(max(substring(tender_journal_external_id from %s)::int), 0) from "
                    "sitoo_erp.summary_document where business_date = %s and tender_journal_external_id like %s",
                    (r"-J(\d+)$", business_date, prefix + "%"),
                )
            )[0]
            docs = _member_documents(conn, mappings, doc_options, cache, owed)
            journals = day_journals(docs, business_date, last + 1, max_lines)
            for journal in journals:
                conn.execute(
                    "update sitoo_erp.summary_document set tender_journal_external_id = %s "
                    "where external_id = any(%s) and tender_journal_external_id = %s",
                    (journal.external_id, list(journal.documents), JOURNAL_OWED),
                )
            journalled = {e for j in journals for e in j.documents}
            nothing_owed = [d.external_id for d in docs if d.external_id not in journalled]
            if nothing_owed:  # rebuilt with one bank method after a mapping change: no journal to post
                conn.execute(
                    "update sitoo_erp.summary_document set tender_journal_external_id = null, document = null "
                    "where external_id = any(%s) and tender_journal_external_id = %s",
                    (nothing_owed, JOURNAL_OWED),
                )
    unsent = conn.execute(
        "select distinct tender_journal_external_id, business_date from sitoo_erp.summary_document "
        "where status = 'posted' and tender_journal_external_id like %s "
        "and tender_journal_erp_id is null order by 1",
        ("SITOO-TJ-D-%",),
    ).fetchall()
    for key, business_date in unsent:
        rows = conn.execute(
            "select external_id, store_externalid, business_date from sitoo_erp.summary_document "
            "where tender_journal_external_id = %s order by external_id",
            (key,),
        ).fetchall()
        docs = _member_documents(conn, mappings, doc_options, cache, rows)
        journals = day_journals(docs, business_date, 0, 10**9)
        if len(journals) != 1:
            raise DocumentError(
                f"{key}: its documents {[r[0] for r in rows]} rebuild to {len(journals)} tender journals "
                "(a tender or subsidiary mapping changed since they posted); post the tenders by hand",
                field="sitoo_payment",
                rule="tenders.day_journal",
            )
        journal = journals[0]
        journal = replace(journal, external_id=key)
        out.erp_calls += 1
        subject = f"tender_journal:{key}"
        try:
            result = erp.post_tender_journal(journal)
        except ErpRejected as err:
            # The documents are posted; only the move of their tenders off the settlement account is
            # missing. Finance is told by name; the journal stays owed and every run re-sends exactly
            # it (same key, same lines) until the ERP takes it. The run goes on.
            with conn.transaction():
                record_exception(
                    conn,
                    ExceptionKind.ERP_REJECTED,
                    subject_key=subject,
                    field="tender_journal",
                    rule="erp.tender_journal_rejected",
                    message=(
                        f"tender journal {key} (business day {business_date}, documents "
                        f"{', '.join(r[0] for r in rows)}) refused by the ERP: {err}"
                        f"{f' [{err.code}]' if err.code else ''}. The documents are posted; their tenders "
                        "stay on the POS settlement account until it posts. Remedy: fix the cause in the ERP "
                        "(e.g. reactivate the account); the next hourly run re-sends the same journal."
                    ),
                )
            out.tender_journals_rejected += 1
            continue
        except ApiError as err:
            if not err.transient:
                raise
            # Stays unanswered: the next run re-sends exactly this journal; the task fails so ops see it.
            transient.append(f"{key}: {err}")
            continue
        with conn.transaction():
            conn.execute(
                "update sitoo_erp.summary_document set tender_journal_erp_id = %s, document = null "
                "where tender_journal_external_id = %s",
                (result.erp_id, key),
            )
            resolve_subjects(conn, [subject], f"posted as ERP id {result.erp_id}", ExceptionKind.ERP_REJECTED)
        out.tender_journals_posted += 1


def post_daily_summaries(
    conn: psycopg.Connection, erp: Any, business_now: datetime, options: SummaryOptions | None = None
) -> SummaryResult:
    """Summarise every closed store-day of daily-summary stores; supplements for late receipts."""
    options = options or SummaryOptions()
    doc_options = DocumentOptions(return_document=options.return_document)
    mappings = load_mappings(conn)
    out = SummaryResult()
    transient: list[str] = []
    cache: dict[str, LedgerDocument] = {}  # summary documents built in this run that owe a journal
    _resend_pending(conn, erp, mappings, doc_options, out, transient, cache)

    rows = conn.execute(CANDIDATES_SQL, {"grace": options.grace, "now": business_now}).fetchall()
    days: dict[tuple[str, date], list[int]] = {}
    for orderid, store, business_date in rows:
        days.setdefault((store, business_date), []).append(orderid)
    for (store, business_date), orderids in days.items():
        out.store_days += 1
        if options.closed_through is not None and business_date <= options.closed_through:
            for orderid in orderids:
                out.closed_period += 1
                _quarantine(
                    conn,
                    orderid,
                    store,
                    ExceptionKind.CLOSED_PERIOD,
                    "business_date",
                    "summary.period_closed",
                    f"order {orderid} of store {store}, business day {business_date}, arrived after the ERP "
                    f"period was closed (closed through {options.closed_through}); nothing more posts into it. "
                    "Post it by hand in an open period, or reopen the period and move sitoo_erp_closed_through back.",
                    f"closed_through={options.closed_through}",
                )
            continue
        hashes: dict[int, str] = dict(
            conn.execute(
                "select orderid, content_hash from sitoo_erp.sitoo_order where orderid = any(%s)", (orderids,)
            ).fetchall()
        )
        built = PostingSummary()
        docs = [
            d
            for r in _inputs(conn, orderids)
            if (d := _build(conn, r, mappings, doc_options, built)) is not None
        ]
        out.quarantined += built.quarantined
        for direction, group in (
            ("sale", [d for d in docs if d.kind == DocumentKind.SALE]),
            ("return", [d for d in docs if d.kind != DocumentKind.SALE]),
        ):
            if not group:
                continue
            with conn.transaction():
                # One run numbers a store-day at a time (a concurrent run waits, then sees the number taken).
                conn.execute(
                    "select pg_advisory_xact_lock(hashtext(%s))",
                    (f"summary:{store}:{business_date}:{direction}",),
                )
                numbered = conn.execute(
                    "select coalesce(max(supplement) + 1, 0) from sitoo_erp.summary_document "
                    "where store_externalid = %s and business_date = %s and direction = %s",
                    (store, business_date, direction),
                ).fetchone()
                assert numbered is not None  # an aggregate: always one row
                supplement = numbered[0]
                parts = []
                try:
                    for number, receipts in enumerate(pack(group, options.max_lines), start=1):
                        external_id = summary_external_id(direction, store, business_date, supplement, number)
                        label = f" supplement {supplement}" if supplement else ""
                        label += f" part {number}" if number > 1 else ""
                        parts.append(
                            (
                                number,
                                _build_part(
                                    conn,
                                    mappings,
                                    doc_options,
                                    external_id,
                                    store,
                                    business_date,
                                    receipts,
                                    label,
                                ),
                            )
                        )
                except DocumentError as err:
                    # Should not pass the gate; if it does, the day's receipts are named, the run goes on.
                    parts = []
                    kind = (
                        ExceptionKind.TENDER_MISMATCH
                        if (err.rule or "").startswith("tenders")
                        else ExceptionKind.TAX_BEYOND_TOLERANCE
                    )
                    for d in group:
                        out.quarantined += 1
                        _quarantine(
                            conn,
                            d.orderid,
                            store,
                            kind,
                            err.field or "summary",
                            err.rule or "summary",
                            f"daily summary of store {store} day {business_date}: {err}",
                            err.rule or "summary",
                        )
                assigned = [(n, p) for n, p in parts if _assign(conn, p, direction, supplement, n, hashes)]
            for _, part in assigned:
                _remember(cache, part)
                _send(conn, erp, part, out, transient)
    _post_day_journals(conn, erp, mappings, doc_options, cache, options.max_lines, out, transient)
    if transient:
        raise TransientApiError(
            f"{len(transient)} daily summary documents could not be posted after retries; they stay pending and the "
            f"next run re-sends them. First: {transient[0]}. Result: {json.dumps(out.as_dict())}"
        )
    return out


def summary_ledger(conn: psycopg.Connection) -> dict[str, int]:
    """Summary-mode receipts: in exactly one posted document, pending, or not (yet) summarised."""
    row = conn.execute(
        """
        select count(*) filter (where d.status = 'posted'), count(*) filter (where d.status = 'pending')
          from sitoo_erp.summary_receipt r join sitoo_erp.summary_document d using (external_id)
        """
    ).fetchone()
    assert row is not None  # an aggregate: always one row
    return {"in_posted_summary": row[0], "in_pending_summary": row[1]}
