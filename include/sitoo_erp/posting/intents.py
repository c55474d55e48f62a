"""Posting intents: say what is being sent *before* the ERP call, so a lost answer is never a guess.

Before a batch's PUTs go out, one ``posting_intent`` row per document (externalId, kind, amounts,
the staged receipt's content hash, the posting session) is committed. Recording the ERP's answer
deletes it in the same transaction. A row left behind means the answer was lost: the task died, or
the database, between the ERP's 2xx and our commit — or the call timed out after the ERP committed.

Every run settles those rows first, before classification can exclude anything, by asking the ERP
which of their externalIds it holds (one batched query):

- the ERP has the document → it is recorded as posted, from what the intent says was sent; if the
  receipt was cancelled or changed in Sitoo meanwhile, finance gets an exception naming the receipt,
  the externalId and the ERP id (``cancelled_after_posting`` / ``changed_after_posting``) — the ERP's
  document is never left silently behind an *excluded: cancelled* ledger entry;
- the ERP has the document of a receipt that also needs a tender journal (split tenders, gift
  card, exchange) and the receipt is unchanged → the intent is cleared and the receipt goes the
  normal way: both documents are PUT again under their keys (upserts, never a second document), so
  a task that died between the cash sale and its journal cannot leave the tenders unbooked;
- the ERP has nothing → the intent is cleared and the receipt goes the normal way.

Intents of a session that is still connected are left alone: their answer may still come.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from include.sitoo_erp.domain import not_finalised_reason
from include.sitoo_erp.erp.adapter import DocumentKind
from include.sitoo_erp.posting import states as S
from include.sitoo_erp.posting.documents import LedgerDocument
from include.sitoo_erp.posting.tax_variance import record_tax_variance
from include.sitoo_erp.staging import ledger
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception, resolve_exceptions

log = logging.getLogger(__name__)

CANCELLED_AFTER_POSTING = str(ExceptionKind.CANCELLED_AFTER_POSTING)
CHANGED_AFTER_POSTING = str(ExceptionKind.CHANGED_AFTER_POSTING)


class ExternalIdReader(Protocol):
    def find_external_ids(self, external_ids: Iterable[str]) -> dict[tuple[DocumentKind, str], str]: ...


def content_hashes(conn: psycopg.Connection, orderids: Sequence[int]) -> dict[int, str]:
    """The staged receipts' content hashes (``sitoo_order.content_hash``, set at staging)."""
    return dict(
        conn.execute(
            "select orderid, content_hash from sitoo_erp.sitoo_order where orderid = any(%s)",
            (list(orderids),),
        ).fetchall()
    )


def write_intents(conn: psycopg.Connection, docs: Sequence[LedgerDocument]) -> None:
    """Commit one intent per document before any of them is sent (fails if the database is gone)."""
    if not docs:
        return
    hashes = content_hashes(conn, [d.orderid for d in docs])
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            """
            insert into sitoo_erp.posting_intent (external_id, orderid, document_type, content_hash, tran_date,
                store_externalid, net_amount, tax_amount, gross_amount, tax_variance, tax_by_rate,
                tender_journal_external_id, backend_pid, backend_start)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, pg_backend_pid(),
                    (select backend_start from pg_stat_activity where pid = pg_backend_pid()))
            on conflict (external_id) do update
               set orderid = excluded.orderid, document_type = excluded.document_type,
                   content_hash = excluded.content_hash, tran_date = excluded.tran_date,
                   store_externalid = excluded.store_externalid, net_amount = excluded.net_amount,
                   tax_amount = excluded.tax_amount, gross_amount = excluded.gross_amount,
                   tax_variance = excluded.tax_variance, tax_by_rate = excluded.tax_by_rate,
                   tender_journal_external_id = excluded.tender_journal_external_id,
                   backend_pid = excluded.backend_pid, backend_start = excluded.backend_start,
                   created_at = now()
            """,
            [
                (
                    d.external_id,
                    d.orderid,
                    str(d.kind),
                    hashes.get(d.orderid, ""),
                    d.tran_date,
                    d.store_externalid,
                    d.net_total,
                    d.tax_total,
                    d.gross_total,
                    d.total_variance,
                    json.dumps(
                        [
                            [
                                str(rate),
                                str(d.pos_tax_by_rate[rate]),
                                str(d.erp_line_tax_by_rate.get(rate, 0)),
                                str(d.tax_variance_by_rate.get(rate, 0)),
                            ]
                            for rate in d.pos_tax_by_rate
                        ]
                    ),
                    d.tender_journal.external_id if d.tender_journal is not None else None,
                )
                for d in docs
            ],
        )


def clear_intent(conn: psycopg.Connection, external_id: str) -> None:
    """The ERP answered (posted or refused): nothing is left to settle for this document."""
    conn.execute("delete from sitoo_erp.posting_intent where external_id = %s", (external_id,))


OPEN_INTENTS_SQL = """
select i.*, o.receipt_id, o.orderstateid, o.paymentstateid, o.ordertypeid, o.registerid,
       exists (select 1 from sitoo_erp.posting_log pl where pl.external_id = i.external_id) as logged
  from sitoo_erp.posting_intent i
  left join sitoo_erp.sitoo_order o using (orderid)
 where not exists (select 1 from pg_stat_activity a
                    where a.pid = i.backend_pid and a.backend_start = i.backend_start)
 order by i.orderid
"""


def _no_longer_finalised(row: dict[str, Any]) -> str | None:
    """Why the staged receipt is no longer a finalised POS sale (None if it still is, or is gone)."""
    if row["orderstateid"] is None:
        return None
    return not_finalised_reason(
        row["orderstateid"], row["paymentstateid"], row["ordertypeid"], row["registerid"]
    )


def _record_from_intent(conn: psycopg.Connection, row: dict[str, Any], erp_id: str) -> None:
    """The posting log and state ``posted`` from what the intent says was sent (the ERP has it)."""
    conn.execute(
        """
        insert into sitoo_erp.posting_log (external_id, orderid, document_type, erp_id, tran_date,
            store_externalid, net_amount, tax_amount, gross_amount, tax_variance, attempts, content_hash)
        select external_id, orderid, document_type, %s, tran_date, store_externalid, net_amount, tax_amount,
               gross_amount, tax_variance, 1, content_hash
          from sitoo_erp.posting_intent where external_id = %s
        on conflict (external_id) do update set erp_id = excluded.erp_id, content_hash = excluded.content_hash,
               posted_at = now()
        """,
        (erp_id, row["external_id"]),
    )
    ledger.mark_posted(
        conn,
        [row["orderid"]],
        [
            f"posted as {row['document_type']} {row['external_id']} (ERP id {erp_id}; "
            "answer recovered from the ERP)"
        ],
        S.ReasonCode.POSTED,
    )
    record_tax_variance(conn, row["orderid"], row["tax_by_rate"] or [])
    resolve_exceptions(conn, row["orderid"], f"posted as {row['external_id']}")


def resolve_intents(conn: psycopg.Connection, erp: ExternalIdReader) -> dict[str, int]:
    """Settle every intent whose answer was lost by reading the ERP by externalId. Returns counts."""
    summary = {"open": 0, "recorded": 0, "cleared": 0, CANCELLED_AFTER_POSTING: 0, CHANGED_AFTER_POSTING: 0}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(OPEN_INTENTS_SQL).fetchall()
    if not rows:
        return summary
    summary["open"] = len(rows)
    found = erp.find_external_ids(r["external_id"] for r in rows)
    now_hashes = content_hashes(conn, [r["orderid"] for r in rows])
    for row in rows:
        erp_id = found.get((DocumentKind(row["document_type"]), row["external_id"]))
        with conn.transaction():
            if erp_id is None or row["logged"]:
                # Nothing in the ERP: the receipt goes the normal way. Or already recorded.
                summary["cleared" if erp_id is None else "recorded"] += 1
                clear_intent(conn, row["external_id"])
                continue
            unchanged = now_hashes.get(row["orderid"], row["content_hash"]) == row["content_hash"]
            if row["tender_journal_external_id"] and unchanged and _no_longer_finalised(row) is None:
                # Its tender journal may never have been sent: PUT both again (upserts).
                summary["cleared"] += 1
                clear_intent(conn, row["external_id"])
                continue
            _record_from_intent(conn, row, erp_id)
            summary["recorded"] += 1
            what = (
                f"receipt {row['receipt_id']} (order {row['orderid']}, store {row['store_externalid']}) "
                f"is in the ERP as {row['external_id']} (ERP id {erp_id}, gross {row['gross_amount']}): "
                "the ERP took it but its answer was lost"
            )
            gone = _no_longer_finalised(row)
            if gone is not None:
                kind, field_, rule = CANCELLED_AFTER_POSTING, "orderstateid", "posted.then_cancelled"
                message = f"{what}, and it is now '{gone}' in Sitoo: reverse or void the ERP document"
            elif now_hashes.get(row["orderid"], row["content_hash"]) != row["content_hash"]:
                # Recorded with the hash that was sent: the after-posting review (classify) sees the
                # change and corrects the document or raises it for finance, per its policy.
                summary[CHANGED_AFTER_POSTING] += 1
                kind = None
            else:
                kind = None
            if kind is not None:
                summary[kind] += 1
                record_exception(
                    conn,
                    ExceptionKind(kind),
                    subject_key=f"order:{row['orderid']}:{kind}:{row['external_id']}",
                    orderid=row["orderid"],
                    store_externalid=row["store_externalid"],
                    field=field_,
                    rule=rule,
                    message=message,
                )
            clear_intent(conn, row["external_id"])
    log.info("posting intents settled: %s", summary)
    return summary
