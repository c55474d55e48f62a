"""The ERP seen from the integration: a small protocol, so another ERP is one new adapter.

The jobs speak only these words: post a sale/return (with its tender journal), a day's tender
journal and a stock adjustment under our external ids; find documents by external id; look up items
and master records; read on-hand stock per location; read the ledger's totals and documents for the
reconciliation. The shapes here are ERP-neutral; an ERP's bodies and query language live only in
its adapter (``NetSuiteHook`` with ``netsuite_documents`` and ``netsuite_ledger`` is the reference).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

# The domain's word, re-exported: adapters and jobs import it from here.
from include.sitoo_erp.domain import DocumentKind as DocumentKind
from include.sitoo_erp.http_retry import ApiError

if TYPE_CHECKING:
    from include.sitoo_erp.posting.documents import DayTenderJournal, LedgerDocument


@dataclass(frozen=True)
class PostResult:
    external_id: str
    erp_id: str
    attempts: int = 1
    # Documents upserted with it, each under its own externalId (e.g. the tender journal).
    related: tuple[PostResult, ...] = ()


@dataclass(frozen=True)
class ErpItem:
    sku: str
    item_id: str
    is_inactive: bool


class MasterKind(StrEnum):
    """ERP master records a mapping may point at (what ops type into a mapping form)."""

    ITEM = "item"
    LOCATION = "location"
    CUSTOMER = "customer"
    SUBSIDIARY = "subsidiary"
    PAYMENT_METHOD = "payment_method"
    ACCOUNT = "account"
    TAX_CODE = "tax_code"
    TAX_TYPE = "tax_type"


@dataclass(frozen=True)
class MasterRecord:
    """One ERP master record by internal id: its name, whether it is active, and what a mapping must
    agree with (a location's or customer's subsidiary, a tax code's rate and tax type, an item's type)."""

    kind: MasterKind
    id: str
    name: str
    is_inactive: bool = False
    subsidiary_id: str | None = None
    rate: Decimal | None = None
    tax_type_id: str | None = None
    item_type: str | None = None


@dataclass(frozen=True)
class OnHand:
    location_id: str
    item_id: str
    sku: str
    on_hand: Decimal
    available: Decimal


@dataclass(frozen=True)
class AdjustmentLine:
    item_id: str
    location_id: str
    quantity: Decimal  # signed: + into stock, - out of it


@dataclass(frozen=True)
class StockAdjustment:
    """One store-day's net stock movements per item, adjusted against one account."""

    external_id: str
    tran_date: date
    subsidiary_id: str | None
    location_id: str
    account_id: str
    memo: str
    lines: tuple[AdjustmentLine, ...]


@dataclass
class ErpCell:
    """The ledger's total of one location x day x tax code, in POS sign (sales +, returns -)."""

    location_id: str
    day: date
    tax_code_id: str
    net: Decimal
    tax: Decimal


@dataclass
class ErpDocument:
    """One of our documents as the ERP's ledger holds it (tax codes summed): POS and document sign."""

    erp_id: str
    external_id: str
    trantype: str
    net: Decimal  # POS sign
    tax: Decimal  # POS sign
    doc_net: Decimal  # document sign (as the posting log records it)
    doc_tax: Decimal


# One ledger document x tax code for the per-receipt proof, in the column order the reconciliation
# copies it: (erp_id, external_id, trantype, trandate, tax_code_id, lines, qty, item_qty, tax_basis,
# tax_amount); quantities in document sign.
ErpReceiptRow = tuple[str, str, str, str, str, int, Decimal, Decimal, Decimal, Decimal]


class ErpRejected(ApiError):
    """The ERP refused the document (validation, closed period...). Permanent: quarantine it.

    ``code`` and ``detail`` are the ERP's own words, kept for the exception row.
    """

    def __init__(self, message: str, status: int | None = None, code: str = "", detail: str = "") -> None:
        super().__init__(message, status)
        self.code, self.detail = code, detail


@runtime_checkable
class ErpAdapter(Protocol):
    name: str

    def post_document(self, document: LedgerDocument, created_from_erp_id: str | None = None) -> PostResult:
        """Render an ERP-neutral ``LedgerDocument`` in this ERP's terms and upsert it (exactly once).

        Documents that go with it (a split-tender receipt's tender journal) are upserted under their
        own external ids and reported in ``PostResult.related``.
        """
        ...

    def post_tender_journal(self, journal: DayTenderJournal) -> PostResult:
        """Upsert a business day's tender journal (daily summary mode: many stores' documents in one
        journal entry, each store's lines on its own location), exactly once by its external id."""
        ...

    def post_stock_adjustment(self, adjustment: StockAdjustment) -> PostResult:
        """Upsert a store-day's inventory adjustment by its external id (exactly once)."""
        ...

    def find_document(self, kind: DocumentKind, external_id: str) -> dict[str, Any] | None:
        """The document as the ERP holds it, or None if there is none."""
        ...

    def find_external_ids(self, external_ids: Iterable[str]) -> dict[tuple[DocumentKind, str], str]:
        """Which of these externalIds the ERP holds: ``{(kind, external_id): erp_id}``, batched
        (settles posting intents whose answer was lost, without a call per receipt)."""
        ...

    def lookup_items(self, skus: Iterable[str]) -> dict[str, ErpItem]:
        """ERP items by SKU; SKUs the ERP does not know are absent from the result."""
        ...

    def iter_on_hand(self, location_ids: Iterable[str]) -> Iterator[OnHand]:
        """On-hand stock per (location, item) for the given locations."""
        ...

    def lookup_master(self, kind: MasterKind, ids: Iterable[str]) -> dict[str, MasterRecord]:
        """Master records of one kind by internal id; ids the ERP does not know are absent."""
        ...

    def close(self) -> None:
        """Release the adapter's connections (its HTTP session)."""
        ...

    def ledger_totals(
        self,
        days: Sequence[date],
        location_ids: Sequence[str] | None,
        rows_per_day: int,
        days_per_query: int | None = None,
    ) -> tuple[list[ErpCell], dict[tuple[str, date], int], int]:
        """Our sales documents' net and tax per location x day x tax code (POS sign), their count per
        (location, day), and how many queries it took. ``rows_per_day`` (locations x tax codes) lets
        the adapter put as many days in one query as its paging allows (``days_per_query`` overrides)."""
        ...

    def ledger_receipt_rows(
        self, days: Sequence[date], location_ids: Sequence[str] | None
    ) -> tuple[list[ErpReceiptRow], int]:
        """Every one of our sales documents of the days per tax code (the per-receipt proof), batched;
        returns (rows, queries)."""
        ...

    def ledger_documents(self, day: date, location_id: str) -> list[ErpDocument]:
        """One store-day's documents with their totals (the drill-down where the sums disagree)."""
        ...
