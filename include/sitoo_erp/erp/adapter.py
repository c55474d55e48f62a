"""The ERP seen from the integration: a small protocol, so another ERP is one new adapter.

The jobs (posting, stock, reconciliation) speak only these words: upsert a document under our
external id, read it back, look up items by SKU, read on-hand stock, run a read-only query.
``NetSuiteHook`` is the reference implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from include.sitoo_erp.http_retry import ApiError

if TYPE_CHECKING:
    from include.sitoo_erp.posting.documents import DayTenderJournal, LedgerDocument


class DocumentKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    CREDIT_MEMO = "credit_memo"
    STOCK_ADJUSTMENT = "stock_adjustment"
    TENDER_JOURNAL = "tender_journal"  # moves a split-tender receipt to each tender's account


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

    def upsert_document(self, kind: DocumentKind, external_id: str, body: Mapping[str, Any]) -> PostResult:
        """Create or replace the document keyed by ``external_id``; safe to repeat (exactly once)."""
        ...

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

    def query(self, sql: str) -> Iterator[dict[str, Any]]:
        """Run a read-only query in the ERP's query language, all pages."""
        ...
