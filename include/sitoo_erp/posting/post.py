"""Post the gated batch to the ERP: exactly once, with the POS's tax, in bounded parallel.

- Sales go first, then returns, then returns of returns (positive receipts linked to a return),
  so each document can link to what it reverses (``createdFrom``) in the same run. A return whose
  original is not in the ERP yet stays *held* ("awaiting original sale") and is looked at again
  next run; one whose original is *quarantined* is quarantined too, with an exception of its own
  (``orphaned_return``, rule ``return.original_quarantined``) so its owner sees it the same hour;
  it posts by itself once the original has. One whose original is unknown was already quarantined
  by the gate.
- A split-tender receipt is two ERP documents (cash sale/refund + tender journal); both
  externalIds and ERP ids go into its posting log row in the same step.
- Intent before the call: a batch's documents are written to ``posting_intent`` and committed
  before any of them is sent (``intents.py``); a run first settles the intents a lost answer left
  behind by reading the ERP by externalId, so a task that dies between the ERP's answer and our
  write is settled from the ERP, even if the receipt was cancelled or changed meanwhile.
- Worker threads make only the ERP call (``PUT …/eid:{externalId}``: an upsert, so a retry or a
  re-run can never create a second document). The main thread records each success at once:
  posting log, state ``posted``, per-rate tax variance, resolved exceptions and the intent cleared,
  in one transaction, and only then hands the next document to a worker: when the database is
  gone, no more than the calls already in flight reach the ERP.
- A document the ERP refuses (validation, closed period) is quarantined with the ERP's own words.
  Transient failures left after the hook's retries are counted and re-raised at the end, so
  Airflow retries the task; what already posted is not posted again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from include.sitoo_erp.erp.adapter import DocumentKind, ErpRejected, PostResult
from include.sitoo_erp.http_retry import ApiError, TransientApiError
from include.sitoo_erp.posting import states as S
from include.sitoo_erp.posting.after_posting import mark_corrected
from include.sitoo_erp.posting.documents import (
    DocumentError,
    DocumentOptions,
    LedgerDocument,
    MappingMissing,
    Mappings,
    ReceiptInput,
    ReturnDocument,
    build_document,
)
from include.sitoo_erp.posting.intents import clear_intent, resolve_intents, write_intents
from include.sitoo_erp.posting.tax_variance import record_tax_variance
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception, resolve_exceptions
from include.sitoo_erp.staging.locks import lock_stage, release_receipt, try_claim_receipt, wait_for_receipt

log = logging.getLogger(__name__)


class DocumentPoster(Protocol):
    """What posting needs from an ERP adapter (``NetSuiteHook`` implements it)."""

    def post_document(
        self, document: LedgerDocument, created_from_erp_id: str | None = None
    ) -> PostResult: ...

    def find_external_ids(self, external_ids: Iterable[str]) -> dict[tuple[DocumentKind, str], str]: ...


@dataclass
class PostingOptions:
    max_workers: int = 4
    return_document: ReturnDocument = "cash_refund"  # or "credit_memo"
    batch_size: int = 500


@dataclass
class PostingSummary:
    ready: int = 0
    posted: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    awaiting_original: int = 0
    quarantined: int = 0
    transient_failures: int = 0
    attempts: int = 0
    tax_variance_total: str = "0.00"
    sample_failures: list[str] = field(default_factory=list)
    intents: dict[str, int] = field(default_factory=dict)  # lost answers settled from the ERP

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_mappings(conn: psycopg.Connection) -> Mappings:
    def rows(sql: str) -> list[dict]:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql).fetchall()

    return Mappings.from_rows(
        store_location=rows("select * from sitoo_erp.map_store_location"),
        tender_payment=rows("select * from sitoo_erp.map_tender_payment"),
        vat_tax_code=rows("select * from sitoo_erp.map_vat_tax_code"),
        document_item=rows("select * from sitoo_erp.map_document_item"),
        sku_item=rows("select * from sitoo_erp.map_sku_item"),
        erp_items=rows("select * from sitoo_erp.erp_item"),
    )


# Receipt mode only: a store posting daily summaries (``posting/summary.py``) is left to that step.
RECEIPT_MODE = "sitoo_erp.posting_mode(o.store_externalid, o.business_date) = 'receipt'"
_IS_RETURN = "(o.money_gross < 0 or (o.money_gross = 0 and o.refund_of_orderid is not null))"
# Posting phases, in order: what a later phase links to has posted in an earlier one.
PHASES: dict[str, str] = {
    "sales": f"not {_IS_RETURN} and o.refund_of_orderid is null",
    "returns": _IS_RETURN,
    "returns_of_returns": f"not {_IS_RETURN} and o.refund_of_orderid is not null",
}


def _claim(conn: psycopg.Connection, headers: list[dict], claimed: set[int], wait: bool) -> list[dict]:
    """Claim each receipt for this run, then keep those still ready and validated now that they are
    ours. Sales another run holds are skipped (it posts them); returns are waited for, in orderid
    order, so one left ready by a run whose sale was in flight elsewhere is posted by the run that
    posts the sale. Sales never wait, and claims are taken in ascending order: no deadlock."""
    mine = []
    for h in headers:
        if h["orderid"] in claimed or try_claim_receipt(conn, h["orderid"], wait=wait):
            claimed.add(h["orderid"])
            mine.append(h)
    if not mine:
        return []
    still = {
        r[0]
        for r in conn.execute(
            f"""
            select orderid from sitoo_erp.order_state
             where orderid = any(%s) and state = '{S.HELD}' and reason_code = '{S.ReasonCode.READY}'
               and gate_run_id is not null
            """,
            ([h["orderid"] for h in mine],),
        ).fetchall()
    }
    for h in mine:
        if h["orderid"] not in still:
            claimed.discard(h["orderid"])
            release_receipt(conn, h["orderid"])
    return [h for h in mine if h["orderid"] in still]


def _iter_ready(
    conn: psycopg.Connection,
    phase: str,
    batch_size: int,
    hashes: dict[int, str] | None = None,
    claimed: set[int] | None = None,
) -> Iterator[list[ReceiptInput]]:
    """Ready receipts a gate run has validated, of one phase, in orderid order, with rows, payments
    and the original; each claimed for this run (``claimed``: the caller releases them).

    ``hashes`` receives each receipt's content hash as read with its header: what the ERP is given.
    """
    last = 0
    claimed = set() if claimed is None else claimed
    where = PHASES[phase]
    while True:
        with conn.cursor(row_factory=dict_row) as cur:
            page = cur.execute(
                f"""
                select o.*, (select so.content_hash from sitoo_erp.sitoo_order so
                               where so.orderid = o.orderid) as content_hash
                  from sitoo_erp.ready_receipt o
                  join sitoo_erp.order_state s using (orderid)
                 where o.orderid > %s and {where} and s.gate_run_id is not null
                   and {RECEIPT_MODE}
                 order by o.orderid limit %s
                """,
                (last, batch_size),
            ).fetchall()
            if not page:
                return
            last = page[-1]["orderid"]
            headers = _claim(conn, page, claimed, wait=phase != "sales")
            if not headers:
                continue
            ids = [h["orderid"] for h in headers]
            if hashes is not None:
                hashes.update((h["orderid"], h["content_hash"]) for h in headers)
            batch = receipt_inputs(cur, headers)
        yield batch
        for orderid in ids:  # the batch is recorded: free it (a return of another run may wait for it)
            if orderid in claimed:
                claimed.discard(orderid)
                release_receipt(conn, orderid)


def receipt_inputs(cur: psycopg.Cursor[dict[str, Any]], headers: list[dict]) -> list[ReceiptInput]:
    """The receipts of these ``sitoo_order`` headers with their rows, payments and original sale."""
    ids = [h["orderid"] for h in headers]
    rows = cur.execute(
        "select * from sitoo_erp.sitoo_order_row where orderid = any(%s) order by orderid, orderitemid",
        (ids,),
    ).fetchall()
    payments = cur.execute(
        "select * from sitoo_erp.sitoo_payment where orderid = any(%s) order by orderid, payment_index",
        (ids,),
    ).fetchall()
    originals = {
        r["orderid"]: r
        for r in cur.execute(
            "select * from sitoo_erp.sitoo_order where orderid = any(%s)",
            ([h["refund_of_orderid"] for h in headers if h["refund_of_orderid"]],),
        ).fetchall()
    }
    by_order: dict[int, list] = {}
    for r in rows:
        by_order.setdefault(r["orderid"], []).append(r)
    pays: dict[int, list] = {}
    for p in payments:
        pays.setdefault(p["orderid"], []).append(p)
    batch = []
    for h in headers:
        original = originals.get(h["refund_of_orderid"]) if h["refund_of_orderid"] else None
        batch.append(
            ReceiptInput.from_rows(
                h, by_order.get(h["orderid"], []), pays.get(h["orderid"], []), original=original
            )
        )
    return batch


def _key_owner(conn: psycopg.Connection, external_id: str, this_run: dict[str, int]) -> int | None:
    """The order an ERP externalId already belongs to (posted before, or earlier in this run)."""
    if external_id in this_run:
        return this_run[external_id]
    row = conn.execute(
        "select orderid from sitoo_erp.posting_log where external_id = %s", (external_id,)
    ).fetchone()
    return row[0] if row else None


def _original_erp_id(conn: psycopg.Connection, orderid: int | None) -> str | None:
    """The ERP id of the document a return (or a return of a return) links to, once posted."""
    if orderid is None:
        return None
    sql = "select erp_id from sitoo_erp.posting_log where orderid = %s and document_type = any(%s)"
    kinds = [str(DocumentKind.SALE), str(DocumentKind.REFUND), str(DocumentKind.CREDIT_MEMO)]
    row = conn.execute(sql, (orderid, kinds)).fetchone()
    if row is None:  # a sale of a store in daily_summary mode: the return links to its day's summary
        row = conn.execute(
            "select d.erp_id from sitoo_erp.summary_receipt r join sitoo_erp.summary_document d using (external_id)"
            " where r.orderid = %s and d.status = 'posted'",
            (orderid,),
        ).fetchone()
    if row is None:
        # The original may be in flight in a concurrent run: wait for its claim, then look again, so
        # this posts in this run as it would have one run at a time (sales never wait: no deadlock).
        wait_for_receipt(conn, orderid)
        row = conn.execute(sql, (orderid, kinds)).fetchone()
    return row[0] if row else None


def _quarantined_original(conn: psycopg.Connection, orderid: int) -> str | None:
    """The reason the linked original is quarantined, or None if it is not."""
    row = conn.execute(
        "select reason from sitoo_erp.order_state where orderid = %s and state = %s", (orderid, S.QUARANTINED)
    ).fetchone()
    return None if row is None else (row[0] or "quarantined")


def _quarantine(
    conn: psycopg.Connection,
    orderid: int,
    store: str | None,
    kind: ExceptionKind,
    field_: str,
    rule: str,
    message: str,
    key: str,
) -> None:
    with conn.transaction():
        lock_stage(conn, shared=True)  # not while a gate or classify works on the ledger
        ledger.quarantine(conn, orderid, f"{kind}: {message}", str(kind))
        record_exception(
            conn,
            kind,
            subject_key=f"order:{orderid}:{kind}:{key}",
            orderid=orderid,
            store_externalid=store,
            field=field_,
            rule=rule,
            message=message,
        )


def line_fingerprint(doc: LedgerDocument) -> tuple[int, Decimal, Decimal | None]:
    """The document's lines as (count, sum of quantities, sum of item id x quantity), document sign:
    the reconciliation computes the same from the ERP's lines (erp.netsuite_ledger.receipts_sql)."""
    qty = sum((ln.quantity for ln in doc.lines), Decimal(0))
    try:
        item_qty: Decimal | None = sum((int(ln.item_id) * ln.quantity for ln in doc.lines), Decimal(0))
    except ValueError:
        item_qty = None
    return len(doc.lines), qty, item_qty


def _record_posted(
    conn: psycopg.Connection, doc: LedgerDocument, result: PostResult, content_hash: str | None = None
) -> None:
    """The posting log and the state change, in the same step as the ERP's success.

    ``content_hash`` is the staged receipt's hash the document was built from: a later change in
    Sitoo shows as a different hash (``after_posting.review_posted``).
    """
    lines, qty, item_qty = line_fingerprint(doc)
    with conn.transaction():
        lock_stage(conn, shared=True)
        conn.execute(
            """
            insert into sitoo_erp.posting_log (external_id, orderid, document_type, erp_id, tran_date,
                store_externalid, net_amount, tax_amount, gross_amount, tax_variance, attempts, content_hash,
                line_count, line_qty, line_item_qty)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (external_id) do update
               set erp_id = excluded.erp_id, attempts = posting_log.attempts + excluded.attempts,
                   net_amount = excluded.net_amount, tax_amount = excluded.tax_amount,
                   gross_amount = excluded.gross_amount, tax_variance = excluded.tax_variance,
                   tran_date = excluded.tran_date, content_hash = excluded.content_hash,
                   line_count = excluded.line_count, line_qty = excluded.line_qty,
                   line_item_qty = excluded.line_item_qty, posted_at = now()
            """,
            (
                doc.external_id,
                doc.orderid,
                str(doc.kind),
                result.erp_id,
                doc.tran_date,
                doc.store_externalid,
                doc.net_total,
                doc.tax_total,
                doc.gross_total,
                doc.total_variance,
                result.attempts,
                content_hash,
                lines,
                qty,
                item_qty,
            ),
        )
        ledger.mark_posted(
            conn,
            [doc.orderid],
            [f"posted as {doc.kind} {doc.external_id} (ERP id {result.erp_id})"],
            S.ReasonCode.POSTED,
        )
        record_tax_variance(
            conn,
            doc.orderid,
            (
                (
                    rate,
                    doc.pos_tax_by_rate[rate],
                    doc.erp_line_tax_by_rate.get(rate, 0),
                    doc.tax_variance_by_rate.get(rate, 0),
                )
                for rate in doc.pos_tax_by_rate
            ),
        )
        for extra in result.related:  # the tender journal: logged with its receipt, same step
            conn.execute(
                """
                update sitoo_erp.posting_log set tender_journal_external_id = %s, tender_journal_erp_id = %s
                 where external_id = %s
                """,
                (extra.external_id, extra.erp_id, doc.external_id),
            )
        if mark_corrected(conn, doc.orderid, result.erp_id):
            conn.execute(
                "delete from sitoo_erp.receipt_tax_variance where orderid = %s and not (vat_rate = any(%s))",
                (doc.orderid, list(doc.pos_tax_by_rate)),
            )
        resolve_exceptions(conn, doc.orderid, f"posted as {doc.external_id}")
        clear_intent(conn, doc.external_id)


def _build(
    conn: psycopg.Connection,
    receipt: ReceiptInput,
    mappings: Mappings,
    options: DocumentOptions,
    summary: PostingSummary,
) -> LedgerDocument | None:
    try:
        return build_document(receipt, mappings, options)
    except MappingMissing as err:
        _quarantine(
            conn,
            receipt.orderid,
            receipt.store_externalid,
            ExceptionKind.MISSING_MAPPING,
            err.field,
            err.rule or "mapping.required",
            str(err),
            f"{err.field}={getattr(err, 'key', '')}",
        )
    except DocumentError as err:
        kind = (
            ExceptionKind.TAX_BEYOND_TOLERANCE
            if (err.rule or "").startswith("tax")
            else ExceptionKind.MALFORMED_PAYLOAD
        )
        _quarantine(
            conn,
            receipt.orderid,
            receipt.store_externalid,
            kind,
            err.field,
            err.rule or "document",
            str(err),
            err.rule or "document",
        )
    summary.quarantined += 1
    return None


def post_ready(
    conn: psycopg.Connection, erp: DocumentPoster, options: PostingOptions | None = None
) -> PostingSummary:
    """Post every ready receipt; returns what happened (small, for XCom)."""
    options = options or PostingOptions()
    doc_options = DocumentOptions(return_document=options.return_document)
    mappings = load_mappings(conn)
    summary = PostingSummary()
    transient: list[str] = []
    variance = Decimal(0)
    keys_this_run: dict[str, int] = {}
    hashes: dict[int, str] = {}
    claimed: set[int] = set()  # receipts this run holds (staging.locks); freed below or with the connection
    summary.intents = resolve_intents(conn, erp)

    for phase in PHASES:
        for batch in _iter_ready(conn, phase, options.batch_size, hashes, claimed):
            summary.ready += len(batch)
            jobs: list[tuple[LedgerDocument, str | None]] = []
            for receipt in batch:
                doc = _build(conn, receipt, mappings, doc_options, summary)
                if doc is None:
                    continue
                created_from = None
                if doc.created_from_orderid is not None:
                    created_from = _original_erp_id(conn, doc.created_from_orderid)
                    blocked = None if created_from else _quarantined_original(conn, doc.created_from_orderid)
                    if blocked is not None:
                        summary.quarantined += 1
                        _quarantine(
                            conn,
                            doc.orderid,
                            doc.store_externalid,
                            ExceptionKind.ORPHANED_RETURN,
                            "refund_of_orderid",
                            "return.original_quarantined",
                            f"{doc.external_id} links to order {doc.created_from_orderid}, which is quarantined "
                            f"({blocked}); it posts by itself once that order has posted",
                            f"original={doc.created_from_orderid}",
                        )
                        continue
                    if created_from is None:
                        # A sale a concurrent run's gate just passed is posted by that run, which then
                        # posts this return too (it stays ready); otherwise the return waits.
                        ledger.await_original(conn, doc.orderid, doc.created_from_orderid)
                        summary.awaiting_original += 1
                        continue
                owner = _key_owner(conn, doc.external_id, keys_this_run)
                if owner is not None and owner != doc.orderid:
                    # Last line of defence behind the gate's receipt_id_unique: never let a second
                    # receipt overwrite the ERP document of another under the same externalId.
                    summary.quarantined += 1
                    _quarantine(
                        conn,
                        doc.orderid,
                        doc.store_externalid,
                        ExceptionKind.DUPLICATE_RECEIPT,
                        "receipt_id",
                        "external_id.unique",
                        f"{doc.external_id} already belongs to order {owner}; order {doc.orderid} would "
                        "overwrite its ERP document",
                        doc.external_id,
                    )
                    continue
                keys_this_run[doc.external_id] = doc.orderid
                jobs.append((doc, created_from))
            write_intents(conn, [doc for doc, _ in jobs])  # committed before the first call
            queue = iter(jobs)
            with ThreadPoolExecutor(max_workers=options.max_workers, thread_name_prefix="erp-post") as pool:
                pending: dict[Future, LedgerDocument] = {}

                def send_next(pool=pool, queue=queue, pending=pending) -> None:
                    # One more call only after the last answer is safely recorded: if the database
                    # fails, the error stops the loop and only the calls in flight are left.
                    for doc, created_from in queue:
                        pending[pool.submit(erp.post_document, doc, created_from)] = doc
                        return

                for _ in range(options.max_workers):
                    send_next()
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        doc = pending.pop(future)
                        try:
                            result = future.result()
                        except ErpRejected as err:
                            summary.quarantined += 1
                            _quarantine(
                                conn,
                                doc.orderid,
                                doc.store_externalid,
                                ExceptionKind.ERP_REJECTED,
                                err.code or "document",
                                err.code or "erp.validation",
                                f"{doc.external_id}: {err.detail or err}",
                                err.code or "rejected",
                            )
                            clear_intent(conn, doc.external_id)
                            send_next()
                            continue
                        except ApiError as err:
                            if not err.transient:
                                raise
                            # Outcome unknown (e.g. a timeout after the ERP committed): the intent
                            # stays, and the next run settles it by reading the ERP.
                            summary.transient_failures += 1
                            transient.append(f"{doc.external_id}: {err}")
                            send_next()
                            continue
                        _record_posted(conn, doc, result, hashes.get(doc.orderid))
                        log.debug("recorded %s as posted (ERP id %s)", doc.external_id, result.erp_id)
                        summary.posted += 1
                        summary.attempts += result.attempts
                        summary.by_kind[str(doc.kind)] = summary.by_kind.get(str(doc.kind), 0) + 1
                        variance += doc.total_variance
                        send_next()
    for orderid in claimed:
        release_receipt(conn, orderid)
    summary.tax_variance_total = f"{variance:.2f}"
    summary.sample_failures = transient[:5]
    if transient:
        raise TransientApiError(
            f"{len(transient)} receipts could not be posted after retries (the ERP may be down); "
            f"{summary.posted} posted and recorded. First: {transient[0]}. Summary: {json.dumps(summary.as_dict())}"
        )
    return summary
