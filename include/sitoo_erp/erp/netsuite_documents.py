"""Render an ERP-neutral ``LedgerDocument`` as the NetSuite REST body (reference erp-api.md §5/§6).

- Header: ``externalId``, ``entity`` (walk-in customer), ``subsidiary``, ``location``, ``tranDate``
  (store business date), ``memo`` (receipt + tender split), ``paymentMethod`` (the one bank tender,
  else POS settlement; not on a creditMemo, which refunds no money), ``taxDetailsOverride: true``
  (always: POS tax is the truth).
- ``item.items[]``: ``item``, ``quantity``, ``rate`` (net unit price paid), ``amount``, ``location``,
  ``description``, ``taxDetailsReference`` ``L1``, ``L2``… (the document's line numbers). Never a
  line discount field: campaign prices are already in ``rate``.
- ``taxDetails.items[]``: one per item line (``taxType``, ``taxCode``, ``taxBasis`` = amount,
  ``taxRate`` in percent, ``taxAmount`` = allocated POS tax) and, for the loyalty discount, one per
  rate referencing the body discount (``taxDetailsReference`` ``"DISCOUNT"``, negative basis and tax).
- Loyalty: ``discountItem`` + ``discountRate`` = -(loyalty net), a JSON number.
- Returns (cashRefund / creditMemo): positive quantities and amounts (the document already holds
  them so); ``createdFrom`` {id} only when the original sale's internal id is known.
- Tenders (invariant 11): ``paymentMethod`` is the single bank tender's method, or the POS
  settlement method when the receipt needs a tender journal; ``render_tender_journal`` renders that
  ``journalEntry`` (``line.items[]`` of ``account`` + ``debit`` or ``credit``, with the store's
  ``location`` and walk-in ``entity``), balanced to the cent.

Money goes out as JSON numbers rounded to 2 dp (``float`` of a 2-dp Decimal: exact to the cent once
NetSuite rounds), quantities to 3 dp. The body is plain JSON-serialisable (no Decimal).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from include.sitoo_erp.erp.adapter import DocumentKind, StockAdjustment
from include.sitoo_erp.posting.documents import DayTenderJournal, LedgerDocument

# Our convention for a tax detail line that belongs to the body-level discount (reference §5 N4 [U]).
DISCOUNT_TAX_REFERENCE = "DISCOUNT"
# The NetSuite record type of each document kind (the REST path ``/record/v1/{type}``).
RECORD_TYPES: dict[DocumentKind, str] = {
    DocumentKind.SALE: "cashSale",
    DocumentKind.REFUND: "cashRefund",
    DocumentKind.CREDIT_MEMO: "creditMemo",
    DocumentKind.STOCK_ADJUSTMENT: "inventoryAdjustment",
    DocumentKind.TENDER_JOURNAL: "journalEntry",
}


def _money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _qty(value: Decimal) -> float | int:
    q = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return int(q) if q == q.to_integral_value() else float(q)


def _rate(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value.normalize())


def _ref(value: str) -> dict[str, str]:
    return {"id": str(value)}


def line_reference(line_no: int) -> str:
    return f"L{line_no}"


def render_netsuite(doc: LedgerDocument, created_from_erp_id: str | None = None) -> dict[str, Any]:
    """The exact body for ``PUT /record/v1/{cashSale|cashRefund|creditMemo}/eid:{doc.external_id}``."""
    if doc.kind not in (DocumentKind.SALE, DocumentKind.REFUND, DocumentKind.CREDIT_MEMO):
        raise ValueError(f"render_netsuite renders sales and returns, not {doc.kind}")
    items = []
    tax_items = []
    for ln in doc.lines:
        ref = line_reference(ln.line_no)
        line: dict[str, Any] = {
            "item": _ref(ln.item_id),
            "quantity": _qty(ln.quantity),
            "rate": _money(ln.rate),
            "amount": _money(ln.amount),
            "location": _ref(doc.location_id),
            "taxDetailsReference": ref,
        }
        if ln.description:
            line["description"] = ln.description[:4000]
        items.append(line)
        tax_items.append(
            {
                "taxDetailsReference": ref,
                "taxType": _ref(ln.tax_type_id),
                "taxCode": _ref(ln.tax_code_id),
                "taxBasis": _money(ln.amount),
                "taxRate": _rate(ln.vat_rate),
                "taxAmount": _money(ln.tax_amount),
            }
        )
    body: dict[str, Any] = {
        "externalId": doc.external_id,
        "entity": _ref(doc.customer_id),
        "subsidiary": _ref(doc.subsidiary_id),
        "location": _ref(doc.location_id),
        "tranDate": doc.tran_date.isoformat(),
        "memo": doc.memo,
        "taxDetailsOverride": True,
    }
    if doc.payment_method_id and doc.kind != DocumentKind.CREDIT_MEMO:
        body["paymentMethod"] = _ref(doc.payment_method_id)
    if doc.discount is not None:
        body["discountItem"] = _ref(doc.discount.item_id)
        body["discountRate"] = _money(doc.discount.amount)
        for t in doc.discount.taxes:
            tax_items.append(
                {
                    "taxDetailsReference": DISCOUNT_TAX_REFERENCE,
                    "taxType": _ref(t.tax_type_id),
                    "taxCode": _ref(t.tax_code_id),
                    "taxBasis": _money(t.basis),
                    "taxRate": _rate(t.vat_rate),
                    "taxAmount": _money(t.tax_amount),
                }
            )
    if doc.kind != DocumentKind.SALE and created_from_erp_id:
        body["createdFrom"] = _ref(created_from_erp_id)
    body["item"] = {"items": items}
    body["taxDetails"] = {"items": tax_items}
    return body


def record_type(doc: LedgerDocument) -> str:
    return RECORD_TYPES[doc.kind]


def render_tender_journal(doc: LedgerDocument) -> dict[str, Any]:
    """The body for ``PUT /record/v1/journalEntry/eid:{doc.tender_journal.external_id}``."""
    journal = doc.tender_journal
    if journal is None:
        raise ValueError(f"{doc.external_id} has no tender journal")
    lines = []
    for ln in journal.lines:
        line: dict[str, Any] = {
            "account": _ref(ln.account_id),
            "location": _ref(doc.location_id),
            "entity": _ref(doc.customer_id),
            "memo": ln.memo,
        }
        if ln.debit:
            line["debit"] = _money(ln.debit)
        else:
            line["credit"] = _money(ln.credit)
        lines.append(line)
    return {
        "externalId": journal.external_id,
        "subsidiary": _ref(doc.subsidiary_id),
        "tranDate": doc.tran_date.isoformat(),
        "memo": f"Tenders of {doc.external_id}: {doc.memo}"[:999],
        "line": {"items": lines},
    }


def render_day_tender_journal(journal: DayTenderJournal) -> dict[str, Any]:
    """The body for ``PUT /record/v1/journalEntry/eid:{journal.external_id}``: many stores' summary
    documents of one day, each line on its store's location and walk-in customer."""
    lines = []
    for sl in journal.lines:
        ln = sl.line
        line: dict[str, Any] = {
            "account": _ref(ln.account_id),
            "location": _ref(sl.location_id),
            "memo": f"{sl.document_external_id} {ln.memo}"[:999],
        }
        if sl.customer_id:
            line["entity"] = _ref(sl.customer_id)
        if ln.debit:
            line["debit"] = _money(ln.debit)
        else:
            line["credit"] = _money(ln.credit)
        lines.append(line)
    body: dict[str, Any] = {
        "externalId": journal.external_id,
        "tranDate": journal.tran_date.isoformat(),
        "memo": journal.memo[:999],
        "line": {"items": lines},
    }
    if journal.subsidiary_id:
        body["subsidiary"] = _ref(journal.subsidiary_id)
    return body


def render_stock_adjustment(adjustment: StockAdjustment) -> dict[str, Any]:
    """An ``inventoryAdjustment``: the store-day's net quantity per item at the store's location."""
    return {
        "externalId": adjustment.external_id,
        "subsidiary": {"id": adjustment.subsidiary_id},
        "account": _ref(adjustment.account_id),
        "adjLocation": _ref(adjustment.location_id),
        "tranDate": adjustment.tran_date.isoformat(),
        "memo": adjustment.memo,
        "inventory": {
            "items": [
                {
                    "item": _ref(ln.item_id),
                    "location": _ref(ln.location_id),
                    "adjustQtyBy": float(ln.quantity),
                }
                for ln in adjustment.lines
            ]
        },
    }
