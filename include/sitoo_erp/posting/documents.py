"""ERP-neutral ledger documents built from one staged Sitoo receipt (pure Python: no Airflow, no DB).

``build_document(receipt, mappings, options) -> LedgerDocument``. ``ReceiptInput.from_rows`` takes
the staging rows (``sitoo_order`` / ``sitoo_order_row`` / ``sitoo_payment`` column names), and
``Mappings.from_rows`` the ``map_*`` tables (or their CSV seeds) plus the ``erp_item`` cache. An
ERP adapter renders the document (``erp/netsuite_documents.py`` for NetSuite).

Rules (each is unit-tested in ``tests/unit/test_documents.py``):

1. **externalId**: ``SITOO-S-{store}-{receiptId}`` for a sale, ``SITOO-R-{store}-{receiptId}`` for
   a return (reference erp-api §4). Every character outside ``[A-Za-z0-9_-]`` becomes ``-``; a
   receipt without a receipt id uses its orderid instead (``SITOO-S-ST001-10042``); a key longer
   than 255 characters is an error, never truncated (truncation could collide).
2. **Kind**: a receipt whose gross total is negative (or zero while linking an original sale via
   ``refund_of_orderid`` / ``creditorderid``) is a return and becomes ``REFUND`` (cashRefund) or
   ``CREDIT_MEMO`` (``options.return_document``); every other finalised receipt is one ``SALE``. A
   return carries POSITIVE quantities and amounts (every POS amount times ``sign = -1``) and
   ``created_from_external_id`` = the original sale's externalId (known when the caller passes the
   original's header). A positive receipt that links a *return* (``creditorderid`` -> a refund) is a
   **return of a return**: the customer takes the goods back again, so it is a ``SALE`` linked to that
   return (``created_from_external_id`` = the return's externalId, memo names it). A positive receipt
   that links a sale (or an original not staged) is an error. Partial and cross-store returns are
   ordinary returns: the document is at the return's store, ``createdFrom`` is the original sale
   wherever it was rung up. An exchange is just its two receipts: the refund (a return) and the new
   sale, each its own document.
3. **Finalised only**: ``orderstateid`` must be 10 and ``paymentstateid`` 20 (when present).
4. **Lines**: one line per receipt row, in ``orderitemid`` order, numbered 1..n; ``rate`` = net unit
   price actually paid (campaign reductions, manual discounts and CRM promotions stay in the rate,
   never a line discount); ``amount`` = the row's net total (``money_net``). A row redeeming a bonus
   cheque (rule 8) posts at its original price instead.
5. **POS VAT per rate** (invariant 4): ``posting/vat.py`` is the one rule (shared with the gate and the
   reconciliation): whether the till derived VAT per line from net, per line from VAT-inclusive
   prices or once per receipt, ``vat_R`` is the receipt's VAT at R and ``sum(vat_R)`` =
   ``money_vat``; per rate ``|vat_R - sum of row VAT at R|`` must stay within what rounding can
   explain (``0.005 x (1 + units x (100+R)/100)``), else ``DocumentError`` with rule
   ``tax.vat_per_rate`` / ``tax.receipt_vat_by_rate`` / ``tax.receipt_net``.
6. **Tax allocation**: each line's tax starts at its POS per-line VAT (``money_vat``); per rate the
   cent difference between the lines' target (``vat_R`` + loyalty VAT at R, so that together with
   the negative discount tax line the rate sums to ``vat_R``) and the per-line sum (a bonus-cheque
   line's POS VAT includes its loyalty VAT, so the difference is the till's own rounding) is pushed onto
   the lines with the largest rounding remainders (exact ``amount * R`` minus the line's tax; the
   most over-rounded lines when the difference is negative), ties by line number, round-robin if
   there are more cents than lines. So: sums exact per rate, every move has the sign of the
   difference, no line moves more than ``ceil(|cents| / lines)`` cents, deterministic. A till that
   kept the VAT-inclusive gross (``money_net`` = rows' gross - ``money_vat``) moves the same cent
   back out of the line's net amount, so each line keeps its shelf gross and the document's net is
   ``money_net`` (3 x 0.99 at 20 %: one line 0.83 + 0.16, two 0.82 + 0.17; net 2.47, tax 0.50).
7. **Tax variance**: ``erp_line_tax_by_rate[R]`` = what the ERP would compute without the override:
   ``round(amount * R/100, 2)`` HALF_UP per line, plus the same for the discount's net at R (a
   real Discount item carries a tax code); ``tax_variance_by_rate = pos_tax_by_rate - erp_line_tax``.
8. **Loyalty** (invariant 5), in Sitoo's vocabulary (``include/sitoo_erp/loyalty.py``): a row with
   ``crm-bonuscheckid`` / ``customcrm-bonuscheckid`` carries the cheque in its price; its loyalty net is
   ``moneydiscount x quantity`` and its loyalty VAT ``round(net x R/100)``. The line posts at the
   original price (``rate`` = ``moneyoriginalprice``, amount = row net + loyalty net, POS line VAT =
   row VAT + loyalty VAT) and a document-level ``DocumentDiscount`` on the ``loyalty_discount``
   document item takes it back: ``amount = -(loyalty net total)`` and one NEGATIVE tax line per rate
   (basis ``-loyalty net R``, tax ``-loyalty VAT R``). So per rate the ERP's net and tax are the
   till's rows, ERP taxTotal == POS VAT and total == POS gross. A bonus-cheque row whose discount is
   negative or above its original price is an error (``loyalty.row_discount``). Lines never carry a
   discount.
9. **Gift card sold** (``domain.is_gift_card_row``: the gift-card SKU, ``product-group-type`` 30 or a card
   number): the line goes to the ``gift_card`` document item at 0 % VAT: it is a liability (money
   held for a future purchase), not revenue; a gift card row with non-zero VAT is an error.
10. **Cash round-off** (``money_roundoff`` != 0): an extra last line on the ``cash_rounding`` item,
    quantity 1, amount = round-off (sign-adjusted), with a 0 % tax line, so total == POS gross.
11. **Tenders** (invariant 11: every tender on its own account). NetSuite takes one ``paymentMethod``
    per cash sale / cash refund, and a payment method deposits only to a bank-type account (its
    "Deposit To" account; undeposited funds otherwise). So:

    - *one bank tender* (every non-zero payment on one payment method, none flagged ``via_journal``):
      ``paymentMethod`` = that method; the ERP debits its deposit account. No extra document.
    - *anything else* (split tender, gift-card redemption, the POS's virtual "Exchange" payment):
      ``paymentMethod`` = the **POS settlement** method (``map_document_item`` purpose
      ``pos_settlement_method``; it deposits to the bank-type clearing account
      ``pos_settlement_account``), plus one **tender journal** (``journalEntry``, externalId
      ``SITOO-TJ-{document externalId without SITOO-}``) that moves the whole amount from the
      settlement account to each tender's own account (``map_tender_payment.account_id``): card and
      cash to their deposit accounts, a gift card to the gift-card liability (relieved by exactly
      the redeemed amount), "Exchange" to the exchange clearing account (nets to zero over the
      pair). Sale: Dr tender accounts / Cr settlement; return: the reverse. The settlement account
      nets to zero per receipt. The payments must add up to the document's gross, else
      ``DocumentError(rule="tenders.sum")``.
    - a credit memo moves no money: no payment method, no journal.

    Every tender must map (``MappingMissing`` field ``tender``; a journal tender without an account:
    field ``tender_account``). The split, sign-adjusted, is also in the memo
    (``Sitoo receipt R-1 | Card 12.00; Cash 5.00``) and in ``payments``.
12. **tranDate** = the store business date (``business_date``); if missing, the orderdate in the
    store timezone (``store_timezone``, default Europe/London).
13. **Totals check**: the document's net, tax and gross must equal the POS ``money_net``,
    ``money_vat`` and ``money_gross`` (sign-adjusted), else ``DocumentError`` (never a silent post).

Every failure is a ``DocumentError`` naming the order, the field and the rule (invariant 7);
``MappingMissing`` (a subclass) when a mapping is absent: the gate normally catches those first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.sitoo_erp import loyalty as loyalty_keys
from include.sitoo_erp.domain import (
    DEFAULT_TIMEZONE,
    DocumentKind,
    OrderState,
    PaymentState,
    is_gift_card_row,
    receipt_external_id,
    receipt_key,
)
from include.sitoo_erp.posting import vat as vat_rule

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
RATE_Q = Decimal("0.001")
HUNDRED = Decimal(100)
MAX_EXTERNAL_ID = 255
DOCUMENT_ITEM_PURPOSES = ("loyalty_discount", "cash_rounding", "gift_card")
# map_document_item purposes of the split-tender design (rule 11): a payment method and an account id.
SETTLEMENT_METHOD = "pos_settlement_method"
SETTLEMENT_ACCOUNT = "pos_settlement_account"
TENDER_JOURNAL_PREFIX = "SITOO-TJ-"


# ---------------------------------------------------------------------------------------------- errors
class DocumentError(ValueError):
    """A receipt that cannot become a correct ledger document: names the order, field and rule."""

    def __init__(self, message: str, *, orderid: int | None = None, field: str = "", rule: str = "") -> None:
        super().__init__(message if orderid is None else f"order {orderid}: {message}")
        self.orderid, self.field, self.rule = orderid, field, rule


class MappingMissing(DocumentError):
    """No mapping for ``key`` in ``field`` (store, sku, vat_rate, tender, document_item)."""

    def __init__(self, field: str, key: Any, orderid: int | None = None) -> None:
        super().__init__(
            f"no {field} mapping for {key!r}", orderid=orderid, field=field, rule=f"mapping.{field}"
        )
        self.key = key


# ---------------------------------------------------------------------------------------------- helpers
def r2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rate_key(value: Any) -> Decimal:
    """A VAT rate in percent as a Decimal with 3 dp (``20`` and ``"20.000"`` are the same key)."""
    try:
        return Decimal(str(value)).quantize(RATE_Q)
    except (InvalidOperation, ValueError) as exc:
        raise DocumentError(f"invalid VAT rate {value!r}", field="vat_rate", rule="vat_rate.number") from exc


def _dec(value: Any, field: str, orderid: int | None, default: Decimal | None = None) -> Decimal:
    if value is None or value == "":
        if default is not None:
            return default
        raise DocumentError(f"{field} is missing", orderid=orderid, field=field, rule=f"{field}.required")
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise DocumentError(
            f"{field} is not a number: {value!r}", orderid=orderid, field=field, rule=f"{field}.number"
        ) from exc
    if not out.is_finite():
        raise DocumentError(f"{field} is not finite", orderid=orderid, field=field, rule=f"{field}.number")
    return out


def _jsonish(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return dict(value)


def _money_text(value: Decimal) -> str:
    return f"{r2(value):.2f}"


def external_id_for(kind: DocumentKind, store_externalid: str, receipt_id: str | None, orderid: int) -> str:
    """``SITOO-S-{store}-{receiptId}`` (sale) / ``SITOO-R-…`` (return); orderid if no receipt id."""
    prefix = "S" if kind == DocumentKind.SALE else "R"
    key = receipt_external_id(prefix, store_externalid, receipt_key(receipt_id, orderid))
    if len(key) > MAX_EXTERNAL_ID:
        raise DocumentError(
            f"externalId would be {len(key)} characters (max {MAX_EXTERNAL_ID})",
            orderid=orderid,
            field="receipt_id",
            rule="external_id.length",
        )
    return key


# ---------------------------------------------------------------------------------------------- input
@dataclass(frozen=True)
class ReceiptRow:
    orderitemid: int
    sku: str | None
    productname: str | None
    quantity: Decimal
    vat_rate: Decimal  # percent, 3 dp
    net_unit_price: Decimal | None
    money_net: Decimal
    money_vat: Decimal
    vouchercode: str | None = None
    giftcard_number: str | None = None
    additionaldata: Mapping[str, Any] = field(default_factory=dict)
    original_unit_price: Decimal | None = None  # moneyoriginalprice: net unit price before a discount
    discount_unit: Decimal | None = None  # moneydiscount: net discount per unit


@dataclass(frozen=True)
class ReceiptPayment:
    payment_index: int
    name: str
    amount: Decimal
    giftcard_number: str | None = None
    is_virtual: bool = False


@dataclass(frozen=True)
class ReceiptInput:
    """One staged receipt: header + rows + payments, money as Decimal (POS signs: returns negative)."""

    orderid: int
    receipt_id: str | None
    store_externalid: str | None
    business_date: date | None
    money_net: Decimal
    money_vat: Decimal
    money_roundoff: Decimal
    money_gross: Decimal
    rows: tuple[ReceiptRow, ...]
    payments: tuple[ReceiptPayment, ...]
    orderdate: datetime | None = None
    store_timezone: str | None = None
    orderstateid: int | None = None
    paymentstateid: int | None = None
    creditorderid: int | None = None
    refund_of_orderid: int | None = None
    exchange_orderid: int | None = None
    loyalty_discount: Decimal = ZERO  # staged gross of the bonus cheques (POS sign); posting reads the rows
    additionaldata: Mapping[str, Any] = field(default_factory=dict)
    # The original sale of a return (its externalId becomes created_from_external_id).
    original_store_externalid: str | None = None
    original_receipt_id: str | None = None
    original_orderid: int | None = None
    original_money_gross: Decimal | None = None  # < 0: the linked original is itself a return

    @classmethod
    def from_rows(
        cls,
        header: Mapping[str, Any],
        rows: Iterable[Mapping[str, Any]],
        payments: Iterable[Mapping[str, Any]],
        original: Mapping[str, Any] | None = None,
    ) -> ReceiptInput:
        """From staging rows (keys = ``sitoo_order`` / ``sitoo_order_row`` / ``sitoo_payment`` columns).

        ``original``: the ``sitoo_order`` header of the sale a return refers to, if staged.
        """
        oid = int(header["orderid"])
        d = lambda v, f, default=None: _dec(v, f, oid, default)  # noqa: E731
        typed_rows = []
        for r in sorted(rows, key=lambda r: int(r["orderitemid"])):
            typed_rows.append(
                ReceiptRow(
                    orderitemid=int(r["orderitemid"]),
                    sku=r.get("sku"),
                    productname=r.get("productname"),
                    quantity=d(r.get("quantity"), "sitoo_order_row.quantity"),
                    vat_rate=rate_key(d(r.get("vat_rate"), "sitoo_order_row.vat_rate")),
                    net_unit_price=(
                        None
                        if r.get("net_unit_price") is None
                        else d(r["net_unit_price"], "sitoo_order_row.net_unit_price")
                    ),
                    money_net=d(r.get("money_net"), "sitoo_order_row.money_net"),
                    money_vat=d(r.get("money_vat"), "sitoo_order_row.money_vat"),
                    vouchercode=r.get("vouchercode"),
                    giftcard_number=r.get("giftcard_number"),
                    additionaldata=_jsonish(r.get("additionaldata")),
                    original_unit_price=(
                        None
                        if r.get("original_unit_price") is None
                        else d(r["original_unit_price"], "sitoo_order_row.original_unit_price")
                    ),
                    discount_unit=(
                        None
                        if r.get("discount_unit") is None
                        else d(r["discount_unit"], "sitoo_order_row.discount_unit")
                    ),
                )
            )
        typed_payments = [
            ReceiptPayment(
                payment_index=int(p.get("payment_index", i)),
                name=str(p["name"]),
                amount=d(p.get("amount"), "sitoo_payment.amount"),
                giftcard_number=p.get("giftcard_number"),
                is_virtual=bool(p.get("is_virtual", False)),
            )
            for i, p in enumerate(payments)
        ]
        typed_payments.sort(key=lambda p: p.payment_index)
        bdate = header.get("business_date")
        if isinstance(bdate, str):
            bdate = date.fromisoformat(bdate)
        elif isinstance(bdate, datetime):
            bdate = bdate.date()
        opt_int = lambda v: None if v in (None, "") else int(v)  # noqa: E731
        return cls(
            orderid=oid,
            receipt_id=header.get("receipt_id"),
            store_externalid=header.get("store_externalid"),
            business_date=bdate,
            money_net=d(header.get("money_net"), "money_net"),
            money_vat=d(header.get("money_vat"), "money_vat"),
            money_roundoff=d(header.get("money_roundoff"), "money_roundoff", ZERO),
            money_gross=d(header.get("money_gross"), "money_gross"),
            rows=tuple(typed_rows),
            payments=tuple(typed_payments),
            orderdate=header.get("orderdate"),
            store_timezone=header.get("store_timezone"),
            orderstateid=opt_int(header.get("orderstateid")),
            paymentstateid=opt_int(header.get("paymentstateid")),
            creditorderid=opt_int(header.get("creditorderid")),
            refund_of_orderid=opt_int(header.get("refund_of_orderid")),
            exchange_orderid=opt_int(header.get("exchange_orderid")),
            loyalty_discount=d(header.get("loyalty_discount"), "loyalty_discount", ZERO),
            additionaldata=_jsonish(header.get("additionaldata")),
            original_store_externalid=None if original is None else original.get("store_externalid"),
            original_receipt_id=None if original is None else original.get("receipt_id"),
            original_orderid=None if original is None else opt_int(original.get("orderid")),
            original_money_gross=(
                None
                if original is None or original.get("money_gross") is None
                else d(original["money_gross"], "original.money_gross")
            ),
        )


# ---------------------------------------------------------------------------------------------- mappings
@dataclass(frozen=True)
class StoreMapping:
    location_id: str
    customer_id: str
    subsidiary_id: str


@dataclass(frozen=True)
class TaxMapping:
    tax_code_id: str
    tax_type_id: str


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "t", "1", "yes")


@dataclass(frozen=True)
class Mappings:
    """Resolved mappings: store -> (location, customer, subsidiary), sku -> item, VAT rate -> tax code,
    tender -> payment method, document item purpose -> item."""

    stores: Mapping[str, StoreMapping]
    items: Mapping[str, str]
    tax_codes: Mapping[Decimal, TaxMapping]
    tenders: Mapping[str, str]
    document_items: Mapping[str, str]
    gift_card_tenders: frozenset[str] = frozenset({"Gift Card"})
    # Rule 11: the GL account each tender lands on, and the tenders that always go by journal
    # (gift cards: a liability; the virtual Exchange payment: a clearing account).
    tender_accounts: Mapping[str, str] = field(default_factory=dict)
    journal_tenders: frozenset[str] = frozenset()

    @classmethod
    def from_rows(
        cls,
        store_location: Iterable[Mapping[str, Any]],
        tender_payment: Iterable[Mapping[str, Any]],
        vat_tax_code: Iterable[Mapping[str, Any]],
        document_item: Iterable[Mapping[str, Any]],
        sku_item: Iterable[Mapping[str, Any]] = (),
        erp_items: Iterable[Mapping[str, Any]] = (),
    ) -> Mappings:
        """From ``map_*`` rows (or the CSV seeds) and the ``erp_item`` cache; ``sku_item`` overrides win.

        Inactive ERP items are left out (posting to them fails in the ERP: a mapping miss here).
        """
        tenders = list(tender_payment)
        items = {
            str(r["sku"]): str(r["item_id"]) for r in erp_items if not _truthy(r.get("is_inactive", False))
        }
        items.update({str(r["sku"]): str(r["item_id"]) for r in sku_item})
        return cls(
            stores={
                str(r["store_externalid"]): StoreMapping(
                    str(r["location_id"]), str(r["customer_id"]), str(r["subsidiary_id"])
                )
                for r in store_location
            },
            items=items,
            tax_codes={
                rate_key(r["vat_rate"]): TaxMapping(str(r["tax_code_id"]), str(r["tax_type_id"]))
                for r in vat_tax_code
            },
            tenders={str(r["tender"]): str(r["payment_method_id"]) for r in tenders},
            document_items={str(r["purpose"]): str(r["item_id"]) for r in document_item},
            gift_card_tenders=frozenset(str(r["tender"]) for r in tenders if _truthy(r.get("is_gift_card"))),
            tender_accounts={
                str(r["tender"]): str(r["account_id"])
                for r in tenders
                if str(r.get("account_id") or "").strip()
            },
            journal_tenders=frozenset(
                str(r["tender"])
                for r in tenders
                if _truthy(r.get("via_journal")) or _truthy(r.get("is_gift_card"))
            ),
        )


ReturnDocument = Literal["cash_refund", "credit_memo"]  # what a return becomes in the ERP


@dataclass(frozen=True)
class DocumentOptions:
    return_document: ReturnDocument = "cash_refund"
    memo_prefix: str = "Sitoo receipt"
    require_finalised: bool = True
    memo_max_length: int = 999  # NetSuite memo field limit


# ---------------------------------------------------------------------------------------------- output
class LineKind:
    ITEM = "item"
    GIFT_CARD = "gift_card"
    ROUNDING = "cash_rounding"


@dataclass(frozen=True)
class DocumentLine:
    line_no: int  # 1-based
    kind: str  # LineKind
    item_id: str
    quantity: Decimal
    rate: Decimal  # net unit price paid (document sign)
    amount: Decimal  # net line amount (document sign)
    vat_rate: Decimal  # percent
    tax_code_id: str
    tax_type_id: str
    tax_amount: Decimal  # POS tax allocated to this line (document sign)
    pos_line_tax: Decimal  # the row's own POS VAT before allocation (document sign)
    description: str | None = None
    sku: str | None = None
    orderitemid: int | None = None


@dataclass(frozen=True)
class DiscountTax:
    vat_rate: Decimal
    tax_code_id: str
    tax_type_id: str
    basis: Decimal  # negative: -(loyalty net at the rate)
    tax_amount: Decimal  # negative: -(loyalty VAT at the rate)


@dataclass(frozen=True)
class DocumentDiscount:
    """Document-level loyalty discount (never a line discount)."""

    item_id: str
    amount: Decimal  # negative: -(loyalty net total)
    taxes: tuple[DiscountTax, ...]
    gross: Decimal  # loyalty value incl. VAT, document sign (positive)
    reference: str | None = None  # e.g. the bonus cheque id


@dataclass(frozen=True)
class TenderSplit:
    name: str
    amount: Decimal  # document sign
    payment_method_id: str
    is_gift_card: bool = False
    is_virtual: bool = False
    account_id: str | None = None  # the GL account the tender lands on (map_tender_payment.account_id)
    via_journal: bool = False  # never a cash sale's payment method (gift card, exchange clearing)


@dataclass(frozen=True)
class JournalLine:
    """One line of the tender journal: debit XOR credit, positive."""

    account_id: str
    debit: Decimal
    credit: Decimal
    memo: str


@dataclass(frozen=True)
class TenderJournal:
    """Moves a split-tender receipt from the POS settlement account to each tender's own account."""

    external_id: str
    settlement_account_id: str
    lines: tuple[JournalLine, ...]

    def balance_by_account(self) -> dict[str, Decimal]:
        """Debit minus credit per account (what the journal does to the ledger)."""
        out: dict[str, Decimal] = {}
        for ln in self.lines:
            out[ln.account_id] = out.get(ln.account_id, ZERO) + ln.debit - ln.credit
        return out


@dataclass(frozen=True)
class StoreJournalLine:
    """A line of a business day's tender journal: the store's location and walk-in customer go with
    it, so each store's tender accounts and settlement account balance per location."""

    line: JournalLine
    location_id: str
    customer_id: str | None
    document_external_id: str


@dataclass(frozen=True)
class DayTenderJournal:
    """The tender journals of many summary documents of one business day (and subsidiary) in one
    ERP journal entry: each document's lines whole and balanced, under the ERP's line limit."""

    external_id: str
    subsidiary_id: str | None
    tran_date: date
    memo: str
    lines: tuple[StoreJournalLine, ...]
    documents: tuple[str, ...]


@dataclass(frozen=True)
class LedgerDocument:
    kind: DocumentKind
    external_id: str
    orderid: int
    receipt_id: str | None
    store_externalid: str
    tran_date: date
    memo: str
    location_id: str
    customer_id: str
    subsidiary_id: str
    lines: tuple[DocumentLine, ...]
    discount: DocumentDiscount | None
    payments: tuple[TenderSplit, ...]
    payment_method_id: str | None
    sign: int  # +1 sale, -1 return: document amount = sign * POS amount
    created_from_external_id: str | None
    created_from_orderid: int | None
    pos_tax_by_rate: Mapping[Decimal, Decimal]  # document sign
    erp_line_tax_by_rate: Mapping[Decimal, Decimal]
    tax_variance_by_rate: Mapping[Decimal, Decimal]
    tender_journal: TenderJournal | None = None  # rule 11: split / gift card / exchange tenders

    @property
    def is_return(self) -> bool:
        return self.kind != DocumentKind.SALE

    @property
    def net_total(self) -> Decimal:
        lines = sum((ln.amount for ln in self.lines), ZERO)
        return lines + (self.discount.amount if self.discount else ZERO)

    @property
    def tax_total(self) -> Decimal:
        lines = sum((ln.tax_amount for ln in self.lines), ZERO)
        if self.discount is None:
            return lines
        return lines + sum((t.tax_amount for t in self.discount.taxes), ZERO)

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total

    def tax_by_rate(self) -> dict[Decimal, Decimal]:
        """Σ tax per rate as posted (lines + discount tax lines)."""
        out: dict[Decimal, Decimal] = {}
        for ln in self.lines:
            out[ln.vat_rate] = out.get(ln.vat_rate, ZERO) + ln.tax_amount
        for t in self.discount.taxes if self.discount else ():
            out[t.vat_rate] = out.get(t.vat_rate, ZERO) + t.tax_amount
        return out

    @property
    def total_variance(self) -> Decimal:
        return sum(self.tax_variance_by_rate.values(), ZERO)


# ---------------------------------------------------------------------------------------------- allocation
def allocate_tax(
    amounts: list[Decimal], line_taxes: list[Decimal], rate_percent: Decimal, target: Decimal
) -> list[Decimal]:
    """Largest-remainder allocation of ``target - sum(line_taxes)`` (whole cents) over the lines.

    Lines are identified by position (their line number order). Each cent of a positive difference
    goes to the line with the largest remainder ``amount * R/100 - tax`` (most under-rounded), of a
    negative difference to the smallest (most over-rounded); ties by position; round-robin when the
    difference has more cents than there are lines.
    """
    if len(amounts) != len(line_taxes):
        raise ValueError("amounts and line_taxes differ in length")
    diff = target - sum(line_taxes, ZERO)
    cents = int((diff / CENT).to_integral_value())
    if diff != cents * CENT:
        raise ValueError(f"target {target} and line taxes are not whole cents apart")
    out = list(line_taxes)
    if cents == 0:
        return out
    if not out:
        raise ValueError(f"no lines to carry a tax difference of {diff}")
    step = CENT if cents > 0 else -CENT
    direction = 1 if cents > 0 else -1
    remainders = [amounts[i] * rate_percent / HUNDRED - line_taxes[i] for i in range(len(out))]
    order = sorted(range(len(out)), key=lambda i: (-direction * remainders[i], i))
    for k in range(abs(cents)):
        out[order[k % len(order)]] += step
    return out


# ---------------------------------------------------------------------------------------------- builder
def _tax(mappings: Mappings, rate: Decimal, orderid: int) -> TaxMapping:
    tm = mappings.tax_codes.get(rate)
    if tm is None:
        raise MappingMissing("vat_rate", f"{rate.normalize():f}", orderid)
    return tm


def _doc_item(mappings: Mappings, purpose: str, orderid: int) -> str:
    item = mappings.document_items.get(purpose)
    if not item:
        raise MappingMissing("document_item", purpose, orderid)
    return item


def _sku_item(mappings: Mappings, sku: str, orderid: int) -> str:
    item = mappings.items.get(sku)
    if not item:
        raise MappingMissing("sku", sku, orderid)
    return item


def _is_gift_card_row(row: ReceiptRow) -> bool:
    return is_gift_card_row(row.sku, row.additionaldata, row.giftcard_number)


def _row_loyalty(receipt: ReceiptInput) -> dict[int, tuple[Decimal, Decimal]]:
    """{orderitemid: (net, VAT)} of each bonus-cheque row's discount, POS sign (``loyalty.py``)."""
    out: dict[int, tuple[Decimal, Decimal]] = {}
    for row in receipt.rows:
        try:
            net, vat = loyalty_keys.row_loyalty(
                row.additionaldata, row.quantity, row.discount_unit, row.original_unit_price, row.vat_rate
            )
        except loyalty_keys.LoyaltyError as exc:
            raise DocumentError(
                f"row {row.orderitemid}: {exc}", orderid=receipt.orderid, field=exc.field, rule=exc.rule
            ) from exc
        if net or vat:
            out[row.orderitemid] = (net, vat)
    return out


def loyalty_by_rate(receipt: ReceiptInput) -> dict[Decimal, tuple[Decimal, Decimal]]:
    """{rate: (net, VAT)} of the receipt's bonus cheques, POS sign: what the document discount takes back."""
    by_row = _row_loyalty(receipt)
    out: dict[Decimal, tuple[Decimal, Decimal]] = {}
    for row in receipt.rows:
        if row.orderitemid in by_row:
            net, vat = by_row[row.orderitemid]
            n0, v0 = out.get(row.vat_rate, (ZERO, ZERO))
            out[row.vat_rate] = (n0 + net, v0 + vat)
    return out


def _tran_date(receipt: ReceiptInput) -> date:
    if receipt.business_date is not None:
        return receipt.business_date
    if receipt.orderdate is None:
        raise DocumentError(
            "neither business_date nor orderdate is set",
            orderid=receipt.orderid,
            field="business_date",
            rule="tran_date.required",
        )
    try:
        zone = ZoneInfo(receipt.store_timezone or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    return receipt.orderdate.astimezone(zone).date()


def _document_kind(receipt: ReceiptInput, options: DocumentOptions) -> DocumentKind:
    linked = receipt.refund_of_orderid or receipt.creditorderid
    if receipt.money_gross < 0 or (receipt.money_gross == 0 and linked):
        if options.return_document == "credit_memo":
            return DocumentKind.CREDIT_MEMO
        if options.return_document == "cash_refund":
            return DocumentKind.REFUND
        raise ValueError(
            f"return_document must be 'cash_refund' or 'credit_memo', not {options.return_document!r}"
        )
    if linked and receipt.original_money_gross is not None and receipt.original_money_gross < 0:
        return DocumentKind.SALE  # a return of a return: the goods go out again (rule 2)
    if linked:
        raise DocumentError(
            f"refund receipt (original order {linked}) has a positive total {receipt.money_gross}"
            " and its original is not a return",
            orderid=receipt.orderid,
            field="money_gross",
            rule="return.negative_total",
        )
    return DocumentKind.SALE


def receipt_vat(receipt: ReceiptInput) -> vat_rule.ReceiptVat:
    """The receipt's VAT and net per rate (POS sign) by the one rule in ``posting/vat.py``."""
    lines: dict[Decimal, int] = {}
    nets: dict[Decimal, Decimal] = {}
    vats: dict[Decimal, Decimal] = {}
    for row in receipt.rows:  # roundings: a till may round VAT per unit (``posting/vat.py``)
        lines[row.vat_rate] = lines.get(row.vat_rate, 0) + max(1, math.ceil(abs(row.quantity)))
        nets[row.vat_rate] = nets.get(row.vat_rate, ZERO) + row.money_net
        vats[row.vat_rate] = vats.get(row.vat_rate, ZERO) + row.money_vat
    rates = {r: vat_rule.RateLines(lines[r], nets[r], vats[r]) for r in lines}
    try:
        return vat_rule.receipt_vat(rates, receipt.money_net, receipt.money_vat)
    except vat_rule.VatInconsistent as exc:
        raise DocumentError(str(exc), orderid=receipt.orderid, field=exc.field, rule=exc.rule) from exc


def pos_vat_by_rate(receipt: ReceiptInput) -> dict[Decimal, Decimal]:
    """The receipt's VAT per rate (POS sign), however the till computed it (``posting/vat.py``)."""
    return receipt_vat(receipt).vat_by_rate


class _DraftLine(TypedDict):
    """A document line before its number: tax and (VAT-inclusive till) amount still move in allocation."""

    kind: str
    item_id: str
    quantity: Decimal
    rate: Decimal
    amount: Decimal
    vat_rate: Decimal
    tax_code_id: str
    tax_type_id: str
    tax_amount: Decimal
    pos_line_tax: Decimal
    description: str | None
    sku: str | None
    orderitemid: int | None


def build_document(
    receipt: ReceiptInput, mappings: Mappings, options: DocumentOptions | None = None
) -> LedgerDocument:
    """One finalised receipt -> one ERP-neutral ledger document (rules in the module docstring).

    The steps run in a fixed order so a receipt with several faults always reports the same first one.
    """
    options = options or DocumentOptions()
    oid = receipt.orderid
    store_externalid, store = _check_postable(receipt, mappings, options)
    kind = _document_kind(receipt, options)
    sign = 1 if kind == DocumentKind.SALE else -1
    s = Decimal(sign)
    external_id = external_id_for(kind, store_externalid, receipt.receipt_id, oid)

    till = receipt_vat(receipt)  # POS VAT per rate (POS sign), cross-checked against money_vat / _net
    lines = _item_lines(receipt, mappings, options, s)
    rounding = _rounding_line(receipt, mappings, s)
    if rounding is not None:
        lines.append(rounding)
    discount = _loyalty_discount(receipt, mappings, s)
    pos_doc = {rate: s * v for rate, v in till.vat_by_rate.items()}
    _allocate_line_tax(lines, pos_doc, discount, till.keeps_gross, oid)
    doc_lines = tuple(DocumentLine(line_no=n, **ln) for n, ln in enumerate(lines, start=1))
    pos_doc, erp_tax, variance = _tax_variance(doc_lines, discount, pos_doc)

    splits = _tender_splits(receipt, mappings, s)
    linked = receipt.refund_of_orderid or receipt.creditorderid
    resale = sign > 0 and bool(linked)  # a return of a return
    memo = _memo(receipt, options, splits, linked if resale else None)
    created_from_orderid, created_from = _created_from(receipt, store_externalid, linked, sign, resale)
    payment_method_id, journal = _tender_plan(kind, external_id, splits, mappings, oid)

    doc = LedgerDocument(
        kind=kind,
        external_id=external_id,
        orderid=oid,
        receipt_id=receipt.receipt_id,
        store_externalid=store_externalid,
        tran_date=_tran_date(receipt),
        memo=memo,
        location_id=store.location_id,
        customer_id=store.customer_id,
        subsidiary_id=store.subsidiary_id,
        lines=doc_lines,
        discount=discount,
        payments=tuple(splits),
        payment_method_id=payment_method_id,
        sign=sign,
        created_from_external_id=created_from,
        created_from_orderid=created_from_orderid,
        pos_tax_by_rate=pos_doc,
        erp_line_tax_by_rate=erp_tax,
        tax_variance_by_rate=variance,
        tender_journal=journal,
    )
    _check_totals(doc, receipt, pos_doc, splits)
    return doc


def _check_postable(
    receipt: ReceiptInput, mappings: Mappings, options: DocumentOptions
) -> tuple[str, StoreMapping]:
    """Rule 3 and the header: only a finalised receipt of a mapped store with rows becomes a document."""
    oid = receipt.orderid
    if options.require_finalised and (
        receipt.orderstateid not in (None, OrderState.CLOSED)
        or receipt.paymentstateid not in (None, PaymentState.SUCCESSFUL)
    ):
        raise DocumentError(
            f"not finalised (orderstateid={receipt.orderstateid}, paymentstateid={receipt.paymentstateid})",
            orderid=oid,
            field="orderstateid",
            rule="finalised_only",
        )
    if not receipt.store_externalid:
        raise DocumentError(
            "store external id is missing", orderid=oid, field="store_externalid", rule="store.required"
        )
    store = mappings.stores.get(receipt.store_externalid)
    if store is None:
        raise MappingMissing("store", receipt.store_externalid, oid)
    if not receipt.rows:
        raise DocumentError("receipt has no rows", orderid=oid, field="orderitems", rule="rows.required")
    return receipt.store_externalid, store


def _item_lines(
    receipt: ReceiptInput, mappings: Mappings, options: DocumentOptions, s: Decimal
) -> list[_DraftLine]:
    """Rules 4, 8, 9: one line per row (document sign); a bonus-cheque row at its original price."""
    oid = receipt.orderid
    row_loyalty = _row_loyalty(receipt)
    lines: list[_DraftLine] = []
    for row in receipt.rows:
        item_id, line_kind = _row_item(row, mappings, options, oid)
        qty = s * row.quantity
        lnet, lvat = row_loyalty.get(row.orderitemid, (ZERO, ZERO))
        amount = s * (row.money_net + lnet)
        # The unit price paid keeps its POS sign (positive); quantity and amount carry the direction.
        unit = row.original_unit_price if lnet else row.net_unit_price
        if unit is None:
            unit = r2(amount / qty) if qty else amount
        tm = _tax(mappings, row.vat_rate, oid)
        pos_line_tax = s * (row.money_vat + lvat)
        lines.append(
            _DraftLine(
                kind=line_kind,
                item_id=item_id,
                quantity=qty,
                rate=unit,
                amount=amount,
                vat_rate=row.vat_rate,
                tax_code_id=tm.tax_code_id,
                tax_type_id=tm.tax_type_id,
                tax_amount=pos_line_tax,
                pos_line_tax=pos_line_tax,
                description=row.productname,
                sku=row.sku,
                orderitemid=row.orderitemid,
            )
        )
    return lines


def _row_item(row: ReceiptRow, mappings: Mappings, options: DocumentOptions, oid: int) -> tuple[str, str]:
    """The ERP item and line kind of a row: a gift card sold is a 0 % liability, never revenue (rule 9)."""
    if _is_gift_card_row(row):
        if row.vat_rate != 0 or row.money_vat != 0:
            raise DocumentError(
                f"gift card row {row.orderitemid} carries VAT {row.vat_rate.normalize():f}% / {row.money_vat}"
                " (a gift card sold is a liability at 0 % VAT)",
                orderid=oid,
                field="sitoo_order_row.vat_rate",
                rule="gift_card.zero_vat",
            )
        return _doc_item(mappings, "gift_card", oid), LineKind.GIFT_CARD
    if not row.sku:
        raise DocumentError(
            f"row {row.orderitemid} has no SKU", orderid=oid, field="sitoo_order_row.sku", rule="sku.required"
        )
    return _sku_item(mappings, row.sku, oid), LineKind.ITEM


def _rounding_line(receipt: ReceiptInput, mappings: Mappings, s: Decimal) -> _DraftLine | None:
    """Rule 10: the cash round-off as one last 0 % line, so the document's total is the POS gross."""
    if not receipt.money_roundoff:
        return None
    oid = receipt.orderid
    zero = rate_key(0)
    tm = _tax(mappings, zero, oid)
    amount = s * receipt.money_roundoff
    return _DraftLine(
        kind=LineKind.ROUNDING,
        item_id=_doc_item(mappings, "cash_rounding", oid),
        quantity=Decimal(1),
        rate=amount,
        amount=amount,
        vat_rate=zero,
        tax_code_id=tm.tax_code_id,
        tax_type_id=tm.tax_type_id,
        tax_amount=ZERO,
        pos_line_tax=ZERO,
        description="Cash rounding",
        sku=None,
        orderitemid=None,
    )


def _loyalty_discount(receipt: ReceiptInput, mappings: Mappings, s: Decimal) -> DocumentDiscount | None:
    """Rule 8: bonus cheques come back at document level, one negative tax line per rate (never per line)."""
    loyalty = loyalty_by_rate(receipt)
    if not loyalty:
        return None
    oid = receipt.orderid
    taxes = []
    for rate, (lnet, lvat) in sorted(loyalty.items()):
        tm = _tax(mappings, rate, oid)
        taxes.append(DiscountTax(rate, tm.tax_code_id, tm.tax_type_id, -s * lnet, -s * lvat))
    lnet_total = sum((n for n, _ in loyalty.values()), ZERO)
    return DocumentDiscount(
        item_id=_doc_item(mappings, "loyalty_discount", oid),
        amount=-s * lnet_total,
        taxes=tuple(taxes),
        gross=s * (lnet_total + sum((v for _, v in loyalty.values()), ZERO)),
        reference=loyalty_keys.reference(receipt.additionaldata, (r.additionaldata for r in receipt.rows)),
    )


def _allocate_line_tax(
    lines: list[_DraftLine],
    pos_doc: Mapping[Decimal, Decimal],
    discount: DocumentDiscount | None,
    keeps_gross: bool,
    oid: int,
) -> None:
    """Rule 6, in place: per rate the lines carry POS VAT at R minus the (negative) discount tax at R."""
    discount_tax = {t.vat_rate: t.tax_amount for t in discount.taxes} if discount else {}
    by_rate: dict[Decimal, list[int]] = {}
    for i, ln in enumerate(lines):
        if ln["kind"] != LineKind.ROUNDING:
            by_rate.setdefault(ln["vat_rate"], []).append(i)
    for rate, idx in by_rate.items():
        target = pos_doc.get(rate, ZERO) - discount_tax.get(rate, ZERO)
        try:
            allocated = allocate_tax(
                [lines[i]["amount"] for i in idx], [lines[i]["pos_line_tax"] for i in idx], rate, target
            )
        except ValueError as exc:
            raise DocumentError(str(exc), orderid=oid, field="money_vat", rule="tax.allocation") from exc
        for i, tax in zip(idx, allocated, strict=True):
            lines[i]["tax_amount"] = tax
            if keeps_gross:  # VAT-inclusive till: the line keeps its gross, its net gives the cent
                lines[i]["amount"] -= tax - lines[i]["pos_line_tax"]


def _tax_variance(
    doc_lines: tuple[DocumentLine, ...], discount: DocumentDiscount | None, pos_doc: dict[Decimal, Decimal]
) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """Rule 7: what the ERP would compute per line without the tax override, and the POS's difference.

    Returns (POS tax per rate incl. 0 for a rate only the ERP taxes, ERP line tax, variance) per rate.
    """
    erp_tax: dict[Decimal, Decimal] = {}
    for dl in doc_lines:
        erp_tax[dl.vat_rate] = erp_tax.get(dl.vat_rate, ZERO) + r2(dl.amount * dl.vat_rate / HUNDRED)
    for t in discount.taxes if discount else ():
        erp_tax[t.vat_rate] = erp_tax.get(t.vat_rate, ZERO) + r2(t.basis * t.vat_rate / HUNDRED)
    for rate in erp_tax:
        pos_doc.setdefault(rate, ZERO)
    variance = {rate: pos_doc[rate] - erp_tax.get(rate, ZERO) for rate in pos_doc}
    return pos_doc, erp_tax, variance


def _tender_splits(receipt: ReceiptInput, mappings: Mappings, s: Decimal) -> list[TenderSplit]:
    """Rule 11: every payment as a mapped tender (document sign); an unmapped tender cannot post."""
    splits = []
    for p in receipt.payments:
        method = mappings.tenders.get(p.name)
        if not method:
            raise MappingMissing("tender", p.name, receipt.orderid)
        splits.append(
            TenderSplit(
                name=p.name,
                amount=s * p.amount,
                payment_method_id=method,
                is_gift_card=p.name in mappings.gift_card_tenders,
                is_virtual=p.is_virtual,
                account_id=mappings.tender_accounts.get(p.name),
                via_journal=p.name in mappings.journal_tenders or p.is_virtual,
            )
        )
    return splits


def _memo(
    receipt: ReceiptInput, options: DocumentOptions, splits: list[TenderSplit], reversed_return: int | None
) -> str:
    """The receipt, the return it reverses (if any) and the tender split, cut to the ERP's memo limit."""
    memo = f"{options.memo_prefix} {receipt.receipt_id or receipt.orderid}"
    if reversed_return:
        memo += f" (reverses return {receipt.original_receipt_id or reversed_return})"
    if splits:
        memo += " | " + "; ".join(f"{t.name} {_money_text(t.amount)}" for t in splits)
    if len(memo) > options.memo_max_length:
        memo = memo[: options.memo_max_length - 3] + "..."
    return memo


def _created_from(
    receipt: ReceiptInput, store_externalid: str, linked: int | None, sign: int, resale: bool
) -> tuple[int | None, str | None]:
    """Rule 2: a return links its original sale, a return of a return links that return (order, key)."""
    created_from = None
    created_from_orderid = linked if (sign < 0 or resale) else None
    if created_from_orderid and (receipt.original_receipt_id or receipt.original_orderid):
        created_from = external_id_for(
            DocumentKind.REFUND if resale else DocumentKind.SALE,
            receipt.original_store_externalid or store_externalid,
            receipt.original_receipt_id,
            receipt.original_orderid or created_from_orderid,
        )
    return created_from_orderid, created_from


def _check_totals(
    doc: LedgerDocument, receipt: ReceiptInput, pos_doc: Mapping[Decimal, Decimal], splits: list[TenderSplit]
) -> None:
    """Rules 11 and 13: the document must add up to the POS (and the tenders to it): never a silent post."""
    oid = receipt.orderid
    s = Decimal(doc.sign)
    for what, got, want in (
        ("money_net", doc.net_total, s * (receipt.money_net + receipt.money_roundoff)),
        ("money_vat", doc.tax_total, s * receipt.money_vat),
        ("money_gross", doc.gross_total, s * receipt.money_gross),
    ):
        if got != want:
            raise DocumentError(
                f"document {what} {got} != POS {want} (document sign)",
                orderid=oid,
                field=what,
                rule=f"totals.{what}",
            )
    if any(doc.tax_by_rate().get(rate, ZERO) != v for rate, v in pos_doc.items()):
        raise DocumentError(
            "document tax per rate differs from POS VAT per rate",
            orderid=oid,
            field="money_vat",
            rule="tax.per_rate",
        )
    if doc.tender_journal is not None:
        paid = sum((t.amount for t in splits), ZERO)
        if paid != doc.gross_total:
            raise DocumentError(
                f"the payments add up to {paid} but the document total is {doc.gross_total} (document sign):"
                " the POS settlement account would not clear",
                orderid=oid,
                field="sitoo_payment.amount",
                rule="tenders.sum",
            )


def tender_journal_external_id(document_external_id: str) -> str:
    """``SITOO-TJ-S-ST001-R1`` for the sale ``SITOO-S-ST001-R1`` (sale and return keys stay apart)."""
    rest = document_external_id.removeprefix("SITOO-")
    return TENDER_JOURNAL_PREFIX + rest


def _tender_plan(
    kind: DocumentKind, external_id: str, splits: list[TenderSplit], mappings: Mappings, orderid: int
) -> tuple[str | None, TenderJournal | None]:
    """Rule 11: the document's payment method, and the tender journal when one method cannot say it."""
    paying = [t for t in splits if t.amount]
    if kind == DocumentKind.CREDIT_MEMO:
        return None, None  # store credit: no money moves, no payment method
    methods = {t.payment_method_id for t in paying}
    if not paying:
        return (splits[0].payment_method_id if splits else None), None
    if len(methods) == 1 and not any(t.via_journal for t in paying):
        return paying[0].payment_method_id, None
    method = mappings.document_items.get(SETTLEMENT_METHOD)
    settlement = mappings.document_items.get(SETTLEMENT_ACCOUNT)
    if not method:
        raise MappingMissing("document_item", SETTLEMENT_METHOD, orderid)
    if not settlement:
        raise MappingMissing("document_item", SETTLEMENT_ACCOUNT, orderid)
    direction = 1 if kind == DocumentKind.SALE else -1  # a sale brings money in: Dr the tenders
    lines: list[JournalLine] = []
    settled = ZERO
    for t in paying:
        if not t.account_id:
            raise MappingMissing("tender_account", t.name, orderid)
        effect = direction * t.amount
        settled += effect
        lines.append(
            JournalLine(
                t.account_id, max(effect, ZERO), max(-effect, ZERO), f"{t.name} {_money_text(t.amount)}"
            )
        )
    if settled:
        lines.append(JournalLine(settlement, max(-settled, ZERO), max(settled, ZERO), "POS settlement"))
    journal = TenderJournal(tender_journal_external_id(external_id), settlement, tuple(lines))
    if len(journal.external_id) > MAX_EXTERNAL_ID:
        raise DocumentError(
            f"tender journal externalId would be {len(journal.external_id)} characters (max {MAX_EXTERNAL_ID})",
            orderid=orderid,
            field="receipt_id",
            rule="external_id.length",
        )
    return method, journal


__all__ = [
    "DayTenderJournal",
    "DiscountTax",
    "DocumentDiscount",
    "DocumentError",
    "DocumentKind",
    "DocumentLine",
    "DocumentOptions",
    "JournalLine",
    "LedgerDocument",
    "LineKind",
    "MappingMissing",
    "Mappings",
    "ReceiptInput",
    "ReceiptPayment",
    "ReceiptRow",
    "StoreJournalLine",
    "StoreMapping",
    "TaxMapping",
    "TenderJournal",
    "TenderSplit",
    "allocate_tax",
    "build_document",
    "external_id_for",
    "loyalty_by_rate",
    "pos_vat_by_rate",
    "rate_key",
    "receipt_vat",
    "tender_journal_external_id",
]
