"""SQLite-backed state of the NetSuite emulator: master data, transactions, stock.

Tables and column names follow the SuiteQL names of reference erp-api.md §9 so the adapter's
reconciliation and stock queries run verbatim. Ids are INTEGER, money REAL, dates ISO text
(``YYYY-MM-DD``), flags ``'T'``/``'F'``. One connection, guarded by a lock.

Record validation and computed totals (tax recomputation, discount, sign conventions) live
here too, so the HTTP layer only translates between JSON and this module.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, overload

from include.sandbox.netsuite import errors as E
from include.sandbox.netsuite.errors import NetSuiteError

RECORD_TYPES: dict[str, str] = {
    "cashSale": "CashSale",
    "cashRefund": "CashRfnd",
    "creditMemo": "CustCred",
    "inventoryAdjustment": "InvAdjst",
    "journalEntry": "Journal",
}
TRANID_PREFIX = {
    "cashSale": "CS",
    "cashRefund": "CR",
    "creditMemo": "CM",
    "inventoryAdjustment": "IA",
    "journalEntry": "JE",
}
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
CENT = Decimal("0.01")
# A tax line may reference the body-level discount with this taxDetailsReference (our rule, [U]).
DISCOUNT_TAX_REFERENCE = "DISCOUNT"
TAX_FIELDS = ("taxType", "taxCode", "taxBasis", "taxRate", "taxAmount")

# Built-in ledger accounts the emulator posts to (added to the master's accounts).
ACCOUNT_UNDEPOSITED_FUNDS = 120
ACCOUNT_INVENTORY_ASSET = 130
ACCOUNT_TAX_PAYABLE = 220
ACCOUNT_SALES = 400
ACCOUNT_DISCOUNT = 410
ACCOUNT_CUSTOMER_CREDIT = 250
ACCOUNT_GIFT_CERTIFICATES = 260  # default liability account of GiftCert items
DEFAULT_ACCOUNTS = [
    {"id": str(ACCOUNT_UNDEPOSITED_FUNDS), "name": "Undeposited funds", "accttype": "OthCurrAsset"},
    {"id": str(ACCOUNT_INVENTORY_ASSET), "name": "Inventory asset", "accttype": "OthCurrAsset"},
    {"id": str(ACCOUNT_TAX_PAYABLE), "name": "VAT payable", "accttype": "OthCurrLiab"},
    {"id": str(ACCOUNT_CUSTOMER_CREDIT), "name": "Customer store credit", "accttype": "OthCurrLiab"},
    {"id": str(ACCOUNT_GIFT_CERTIFICATES), "name": "Gift certificates", "accttype": "OthCurrLiab"},
    {"id": str(ACCOUNT_SALES), "name": "Sales revenue", "accttype": "Income"},
    {"id": str(ACCOUNT_DISCOUNT), "name": "Loyalty discounts", "accttype": "Income"},
]
# Where an item line posts when the item names no account (NetSuite: the item's income account;
# a gift certificate item's liability account; a discount item's account).
DEFAULT_ITEM_ACCOUNT = {"GiftCert": ACCOUNT_GIFT_CERTIFICATES, "Discount": ACCOUNT_DISCOUNT}
STOCK_ITEM_TYPES = {"InvtPart", "Assembly"}
FIRST_TRANSACTION_ID = 10001

OnHand = Callable[[str, str], int | None] | dict[tuple[str, str], int] | None

SCHEMA = """
CREATE TABLE subsidiary (id INTEGER PRIMARY KEY, name TEXT, isinactive TEXT DEFAULT 'F');
CREATE TABLE location (id INTEGER PRIMARY KEY, name TEXT, externalid TEXT, isinactive TEXT DEFAULT 'F',
    subsidiary INTEGER);
CREATE TABLE customer (id INTEGER PRIMARY KEY, entityid TEXT, externalid TEXT, isinactive TEXT DEFAULT 'F',
    subsidiary INTEGER);
CREATE TABLE item (id INTEGER PRIMARY KEY, itemid TEXT, displayname TEXT, itemtype TEXT,
    isinactive TEXT DEFAULT 'F', incomeaccount INTEGER);
CREATE INDEX item_itemid ON item (itemid);
CREATE TABLE taxtype (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE salestaxitem (id INTEGER PRIMARY KEY, itemid TEXT, name TEXT, rate REAL, taxtype INTEGER,
    isinactive TEXT DEFAULT 'F');
CREATE TABLE paymentmethod (id INTEGER PRIMARY KEY, name TEXT, isinactive TEXT DEFAULT 'F', account INTEGER,
    undepfunds TEXT DEFAULT 'F');
CREATE TABLE account (id INTEGER PRIMARY KEY, name TEXT, isinactive TEXT DEFAULT 'F', accttype TEXT);
CREATE TABLE dual (dummy TEXT);
INSERT INTO dual VALUES ('X');
CREATE TABLE "transaction" (
    id INTEGER PRIMARY KEY, type TEXT NOT NULL, recordtype TEXT NOT NULL, externalid TEXT NOT NULL,
    tranid TEXT, trandate TEXT, postingperiod TEXT, entity INTEGER, location INTEGER, subsidiary INTEGER,
    memo TEXT, total REAL, taxtotal REAL, subtotal REAL, discounttotal REAL, createdfrom INTEGER,
    paymentmethod INTEGER, account INTEGER, taxdetailsoverride TEXT, posting TEXT DEFAULT 'T',
    voided TEXT DEFAULT 'F', createddate TEXT, lastmodifieddate TEXT, body TEXT,
    UNIQUE (recordtype, externalid)
);
CREATE INDEX transaction_trandate ON "transaction" (trandate);
CREATE TABLE transactionline (
    "transaction" INTEGER NOT NULL, id INTEGER NOT NULL, linesequencenumber INTEGER, item INTEGER,
    location INTEGER, subsidiary INTEGER, entity INTEGER, quantity REAL, rate REAL, netamount REAL,
    mainline TEXT, taxline TEXT, itemtype TEXT, isinventoryaffecting TEXT, memo TEXT,
    taxdetailsreference TEXT, PRIMARY KEY ("transaction", id)
);
CREATE TABLE transactiontaxdetail (
    "transaction" INTEGER NOT NULL, line INTEGER NOT NULL, id INTEGER NOT NULL, taxcode INTEGER,
    taxtype INTEGER, taxrate REAL, taxbasis REAL, taxamount REAL, taxdetailsreference TEXT,
    PRIMARY KEY ("transaction", id)
);
CREATE TABLE transactionaccountingline (
    "transaction" INTEGER NOT NULL, transactionline INTEGER NOT NULL, account INTEGER, debit REAL,
    credit REAL, amount REAL, posting TEXT DEFAULT 'T', accountingbook INTEGER DEFAULT 1
);
CREATE INDEX tal_transaction ON transactionaccountingline ("transaction");
CREATE TABLE inventoryitemlocations (
    item INTEGER NOT NULL, location INTEGER NOT NULL, quantityonhand REAL, quantityavailable REAL,
    PRIMARY KEY (item, location)
) WITHOUT ROWID;
"""


def default_on_hand(item_id: str, location_id: str) -> int:
    """Deterministic initial on-hand: 0..39, cheap to compute for a million pairs."""
    return (int(item_id) * 7 + int(location_id) * 13) % 40


def money(value: Any, field: str) -> Decimal:
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise NetSuiteError(
            400, E.INVALID_FLD_VALUE, f"Invalid number for field {field}: {value!r}", field
        ) from exc
    if not dec.is_finite():
        raise NetSuiteError(400, E.INVALID_FLD_VALUE, f"Invalid number for field {field}: {value!r}", field)
    return dec


# NetSuite Help, "Limitations for Creating Transactions": invoices and journal entries take at most
# 200 lines (sales orders 500); a cash sale / cash refund is an invoice paid at once, so 200 it is.
MAX_TRANSACTION_LINES = 200


def _check_line_limit(count: int, sublist: str) -> None:
    if count > MAX_TRANSACTION_LINES:
        raise NetSuiteError(
            400,
            E.USER_ERROR,
            f"You have exceeded the maximum number of lines ({MAX_TRANSACTION_LINES}) for this transaction:"
            f" {sublist} has {count}.",
            sublist,
        )


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ref_id(value: Any) -> str | None:
    """``{"id": "12"}`` (or a bare id) -> ``"12"``; None when absent."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
        if value is None:
            return None
    return str(value)


@dataclass
class Prepared:
    """A validated record, ready to write: header row, lines, tax details, ledger, stock effect."""

    record_type: str
    external_id: str
    header: dict[str, Any]
    lines: list[dict[str, Any]]
    tax_details: list[dict[str, Any]]
    accounting: list[tuple[int, int, Decimal]]  # (line id, account, signed amount: + debit / - credit)
    stock: dict[tuple[int, int], Decimal]
    totals: dict[str, float]
    record: dict[str, Any]  # the record as GET returns it (without id/links)


@dataclass
class _SaleDiscount:
    """The body-level discount of a sale: its (negative) amount, item and line id, if any."""

    amount: Decimal
    item: dict[str, Any] | None
    line_id: int | None


@dataclass
class _TaxDetailIn:
    """A checked taxDetails line of the request body."""

    ref: str
    code: str | None
    ttype: str | None
    body: dict[str, Any]
    path: str


class Store:
    """Master data + transactions in SQLite."""

    def __init__(
        self,
        master: dict[str, list[dict]],
        on_hand: OnHand = default_on_hand,
        closed_periods: Iterable[str] = (),
    ) -> None:
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.executescript(SCHEMA)
        self.master = master
        self.on_hand_source = on_hand
        self.closed_periods: set[str] = set(closed_periods)
        self._load_master(master)
        self.seed_seconds = self.seed_stock(on_hand)

    # ------------------------------------------------------------------ master data
    def _load_master(self, m: dict[str, list[dict]]) -> None:
        subsidiary = m.get("subsidiaries", [{"id": "1"}])[0]["id"]
        c = self.conn
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO subsidiary (id, name) VALUES (?, ?)",
            [(int(r["id"]), r.get("name")) for r in m.get("subsidiaries", [])],
        )
        c.executemany(
            "INSERT INTO location (id, name, externalid, isinactive, subsidiary) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    int(r["id"]),
                    r.get("name"),
                    r.get("externalid"),
                    r.get("isinactive", "F"),
                    int(r.get("subsidiary", subsidiary)),
                )
                for r in m.get("locations", [])
            ],
        )
        c.executemany(
            "INSERT INTO customer (id, entityid, externalid, isinactive, subsidiary) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    int(r["id"]),
                    r.get("entityid"),
                    r.get("externalid"),
                    r.get("isinactive", "F"),
                    int(r.get("subsidiary", subsidiary)),
                )
                for r in m.get("customers", [])
            ],
        )
        c.executemany(
            "INSERT INTO item (id, itemid, displayname, itemtype, isinactive, incomeaccount) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    int(r["id"]),
                    r.get("itemid"),
                    r.get("displayname"),
                    r.get("itemtype", "InvtPart"),
                    r.get("isinactive", "F"),
                    int(r["incomeaccount"]) if r.get("incomeaccount") else None,
                )
                for r in m.get("items", [])
            ],
        )
        c.executemany(
            "INSERT INTO taxtype (id, name) VALUES (?, ?)",
            [(int(r["id"]), r.get("name")) for r in m.get("tax_types", [])],
        )
        c.executemany(
            "INSERT INTO salestaxitem (id, itemid, name, rate, taxtype, isinactive) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    int(r["id"]),
                    r.get("itemid"),
                    r.get("name", r.get("itemid")),
                    float(r["rate"]),
                    int(r["taxtype"]) if r.get("taxtype") else None,
                    r.get("isinactive", "F"),
                )
                for r in m.get("tax_codes", [])
            ],
        )
        c.executemany(
            "INSERT INTO paymentmethod (id, name, isinactive, account, undepfunds) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    int(r["id"]),
                    r.get("name"),
                    r.get("isinactive", "F"),
                    int(r["account"]) if r.get("account") else None,
                    "F" if r.get("account") else "T",
                )
                for r in m.get("payment_methods", [])
            ],
        )
        accounts = {a["id"]: a for a in [*DEFAULT_ACCOUNTS, *m.get("accounts", [])]}
        c.executemany(
            "INSERT INTO account (id, name, accttype) VALUES (?, ?, ?)",
            [(int(a["id"]), a.get("name"), a.get("accttype")) for a in accounts.values()],
        )
        c.execute("COMMIT")
        self.subsidiaries = {str(r["id"]) for r in m.get("subsidiaries", [])}
        self.locations = {str(r["id"]): r for r in m.get("locations", [])}
        self.customers = {str(r["id"]) for r in m.get("customers", [])}
        self.items = {str(r["id"]): r for r in m.get("items", [])}
        self.tax_types = {str(r["id"]) for r in m.get("tax_types", [])}
        self.tax_codes = {str(r["id"]): r for r in m.get("tax_codes", [])}
        self.payment_methods = {str(r["id"]) for r in m.get("payment_methods", [])}
        # A payment method's "Deposit To" account (None: group with undeposited funds).
        self.payment_method_account = {
            str(r["id"]): (int(r["account"]) if r.get("account") else None)
            for r in m.get("payment_methods", [])
        }
        self.accounts = set(accounts)
        self.inactive_accounts: set[str] = set()  # made inactive by a finance user (``set_account_active``)

    def seed_stock(self, on_hand: OnHand) -> float:
        """(Re)write ``inventoryitemlocations``; returns the seconds it took."""
        started = datetime.now(UTC)
        stock_items = [i for i, r in self.items.items() if r.get("itemtype", "InvtPart") in STOCK_ITEM_TYPES]
        locations = list(self.locations)
        if isinstance(on_hand, dict):
            rows: Iterable[tuple] = (
                (int(i), int(loc), q, q)
                for (i, loc), q in sorted(on_hand.items(), key=lambda kv: (int(kv[0][0]), int(kv[0][1])))
            )
        else:
            fn = on_hand or default_on_hand

            def gen() -> Iterable[tuple]:
                for i in sorted(stock_items, key=int):
                    ii = int(i)
                    for loc in locations:
                        q = fn(i, loc)
                        if q is not None:
                            yield (ii, int(loc), q, q)

            rows = gen()
        with self.lock:
            c = self.conn
            c.execute("BEGIN")
            c.execute("DROP INDEX IF EXISTS iil_location")
            c.execute("DELETE FROM inventoryitemlocations")
            c.executemany("INSERT OR REPLACE INTO inventoryitemlocations VALUES (?, ?, ?, ?)", rows)
            c.execute("CREATE INDEX iil_location ON inventoryitemlocations (location, item)")
            c.execute("COMMIT")
        return (datetime.now(UTC) - started).total_seconds()

    # ------------------------------------------------------------------ reads
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, tuple(params)).fetchall()

    def on_hand(self, item_id: str, location_id: str) -> float:
        rows = self.query(
            "SELECT quantityonhand FROM inventoryitemlocations WHERE item = ? AND location = ?",
            (int(item_id), int(location_id)),
        )
        return rows[0][0] if rows else 0

    def get_record(
        self, record_type: str, *, internal_id: str | None = None, external_id: str | None = None
    ) -> dict[str, Any] | None:
        if internal_id is not None:
            if not internal_id.isdigit():
                return None
            rows = self.query(
                'SELECT id, body FROM "transaction" WHERE recordtype = ? AND id = ?',
                (record_type, int(internal_id)),
            )
        else:
            rows = self.query(
                'SELECT id, body FROM "transaction" WHERE recordtype = ? AND externalid = ?',
                (record_type, external_id),
            )
        if not rows:
            return None
        record = json.loads(rows[0][1])
        record["id"] = str(rows[0][0])
        return record

    def documents(self, record_type: str | None = None) -> list[dict[str, Any]]:
        sql = 'SELECT id, body FROM "transaction"'
        params: tuple = ()
        if record_type:
            sql += " WHERE recordtype = ?"
            params = (record_type,)
        out = []
        for tid, body in self.query(sql + " ORDER BY id", params):
            rec = json.loads(body)
            rec["id"] = str(tid)
            out.append(rec)
        return out

    # ------------------------------------------------------------------ validation
    @overload
    def _check_ref(self, value: Any, known: set[str] | dict, field: str, required: Literal[True]) -> str: ...
    @overload
    def _check_ref(
        self, value: Any, known: set[str] | dict, field: str, required: bool = False
    ) -> str | None: ...
    def _check_ref(
        self, value: Any, known: set[str] | dict, field: str, required: bool = False
    ) -> str | None:
        rid = ref_id(value)
        if rid is None:
            if required:
                raise NetSuiteError(400, E.USER_ERROR, f"Please enter value(s) for: {field}", field)
            return None
        if rid not in known:
            raise NetSuiteError(400, E.INVALID_KEY_OR_REF, f"Invalid {field} reference key {rid}.", field)
        if known is self.accounts and rid in self.inactive_accounts:
            raise NetSuiteError(
                400,
                E.INVALID_KEY_OR_REF,
                f"Invalid {field} reference key {rid}: the account is inactive.",
                field,
            )
        return rid

    def _check_item(self, value: Any, field: str) -> dict[str, Any]:
        rid = ref_id(value)
        if rid is None:
            raise NetSuiteError(400, E.USER_ERROR, f"Please enter value(s) for: {field}", field)
        item = self.items.get(rid)
        if item is None:
            raise NetSuiteError(400, E.INVALID_KEY_OR_REF, f"Invalid {field} reference key {rid}.", field)
        if item.get("isinactive") == "T":
            raise NetSuiteError(
                400,
                E.INVALID_KEY_OR_REF,
                f"Invalid {field} reference key {rid}: item {item.get('itemid')} is inactive.",
                field,
            )
        return item

    def prepare(self, record_type: str, external_id: str, body: dict[str, Any]) -> Prepared:
        if record_type not in RECORD_TYPES:
            raise NetSuiteError(404, E.NONEXISTENT_ID, f"Record type {record_type} is not supported.")
        if not EXTERNAL_ID_RE.match(external_id):
            raise NetSuiteError(
                400,
                E.INVALID_FLD_VALUE,
                f"Invalid externalId {external_id!r}: use letters, digits, '_' and '-' only.",
                "externalId",
            )
        if not isinstance(body, dict):
            raise NetSuiteError(400, E.USER_ERROR, "The request body must be a JSON object.")
        if "externalId" in body and str(body["externalId"]) != external_id:
            raise NetSuiteError(
                400,
                E.INVALID_FLD_VALUE,
                f"externalId {body['externalId']!r} in the body does not match {external_id!r}.",
                "externalId",
            )
        tran_date = body.get("tranDate") or date.today().isoformat()
        try:
            date.fromisoformat(str(tran_date))
        except ValueError as exc:
            raise NetSuiteError(
                400, E.INVALID_FLD_VALUE, f"Invalid date for field tranDate: {tran_date!r}", "tranDate"
            ) from exc
        period = str(tran_date)[:7]
        if period in self.closed_periods:
            raise NetSuiteError(
                400,
                E.PERIOD_CLOSED,
                f"The accounting period {period} is closed; tranDate {tran_date} is not allowed.",
                "tranDate",
            )
        subsidiary = self._check_ref(body.get("subsidiary"), self.subsidiaries, "subsidiary")
        if record_type == "inventoryAdjustment":
            return self._prepare_adjustment(external_id, body, str(tran_date), subsidiary)
        if record_type == "journalEntry":
            return self._prepare_journal(external_id, body, str(tran_date), subsidiary)
        return self._prepare_sale(record_type, external_id, body, str(tran_date), subsidiary)

    def _prepare_sale(
        self, record_type: str, external_id: str, body: dict[str, Any], tran_date: str, subsidiary: str | None
    ) -> Prepared:
        """A cash sale, cash refund or credit memo: validated in NetSuite's order, then posted.

        Each step below emulates one documented NetSuite rule; the order of the steps is the order
        in which errors surface, so it must not change.
        """
        entity, location, payment, account = self._sale_header_refs(body)
        lines, out_items, refs = self._sale_item_lines(body, location)
        subtotal = sum((ln["amount"] for ln in lines), Decimal(0))
        discount = self._sale_discount(body, subtotal, len(lines))
        override = body.get("taxDetailsOverride") is True
        tax_rows = self._sale_tax_rows(body, override, lines, refs, discount)
        tax_total = sum((t["taxamount"] for t in tax_rows), Decimal(0))
        total = subtotal + discount.amount + tax_total
        sign = Decimal(-1) if record_type == "cashSale" else Decimal(1)  # netamount sign of item lines
        tl = self._sale_transaction_lines(body, location, lines, discount, tax_rows, sign, total)
        cash_account = self._sale_cash_account(record_type, body, payment, account)
        accounting = self._sale_accounting(cash_account, lines, discount, tax_rows, -sign, total)
        stock = self._sale_stock(lines, sign)
        totals = {
            "subtotal": float(subtotal),
            "discountTotal": float(discount.amount),
            "taxTotal": float(tax_total),
            "total": float(total),
        }
        header = {
            "type": RECORD_TYPES[record_type],
            "trandate": tran_date,
            "entity": int(entity),
            "location": int(location) if location else None,
            "subsidiary": int(subsidiary) if subsidiary else None,
            "memo": body.get("memo"),
            "total": float(total),
            "taxtotal": float(tax_total),
            "subtotal": float(subtotal),
            "discounttotal": float(discount.amount),
            "createdfrom": self._sale_created_from(body),
            "paymentmethod": int(payment) if payment else None,
            "account": int(account) if account else None,
            "taxdetailsoverride": "T" if override else "F",
        }
        record = self._sale_record(body, external_id, tran_date, override, out_items, tax_rows, totals)
        return Prepared(record_type, external_id, header, tl, tax_rows, accounting, stock, totals, record)

    def _sale_header_refs(self, body: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
        """Body references: entity (required), location, paymentMethod, account — in that order."""
        entity = self._check_ref(body.get("entity"), self.customers, "entity", required=True)
        location = self._check_ref(body.get("location"), self.locations, "location")
        payment = self._check_ref(body.get("paymentMethod"), self.payment_methods, "paymentMethod")
        account = self._check_ref(body.get("account"), self.accounts, "account")
        return entity, location, payment, account

    def _sale_item_lines(
        self, body: dict[str, Any], location: str | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
        """The item sublist: at least one line, at most MAX_TRANSACTION_LINES, each line checked.

        Returns the stored lines, the lines as GET returns them, and taxDetailsReference -> line id.
        """
        items = (body.get("item") or {}).get("items") or []
        if not items:
            raise NetSuiteError(
                400, E.USER_ERROR, "You must enter at least one line item for this transaction.", "item"
            )
        _check_line_limit(len(items), "item")
        lines: list[dict[str, Any]] = []
        refs: dict[str, int] = {}
        out_items = []
        for n, line in enumerate(items):
            stored, shown = self._sale_item_line(n, line, location, refs)
            lines.append(stored)
            out_items.append(shown)
        return lines, out_items, refs

    def _sale_item_line(
        self, n: int, line: dict[str, Any], location: str | None, refs: dict[str, int]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One item line: active item, a location (the line's or the body's), quantity, rate/amount
        (amount wins; else quantity x rate, rounded half-up), taxCode, a unique taxDetailsReference
        (recorded in ``refs``)."""
        path = f"item.items[{n}]"
        item = self._check_item(line.get("item"), f"{path}.item")
        loc = self._check_ref(line.get("location"), self.locations, f"{path}.location") or location
        if loc is None:
            raise NetSuiteError(
                400, E.USER_ERROR, f"Please enter value(s) for: {path}.location", f"{path}.location"
            )
        qty = money(line.get("quantity", 1), f"{path}.quantity")
        rate = money(line["rate"], f"{path}.rate") if line.get("rate") is not None else None
        if line.get("amount") is not None:
            amount = round2(money(line["amount"], f"{path}.amount"))
        elif rate is not None:
            amount = round2(qty * rate)
        else:
            raise NetSuiteError(
                400, E.USER_ERROR, f"Please enter value(s) for: {path}.amount", f"{path}.amount"
            )
        if rate is None:
            rate = (amount / qty).quantize(Decimal("0.0001")) if qty else amount
        ref = line.get("taxDetailsReference")
        if line.get("taxCode") is not None:
            self._check_ref(line.get("taxCode"), self.tax_codes, f"{path}.taxCode")
        line_id = n + 1
        if ref is not None:
            if str(ref) in refs:
                raise NetSuiteError(
                    400,
                    E.USER_ERROR,
                    f"Duplicate taxDetailsReference {ref!r}.",
                    f"{path}.taxDetailsReference",
                )
            refs[str(ref)] = line_id
        stored = {
            "id": line_id,
            "item": int(item["id"]),
            "itemtype": item.get("itemtype", "InvtPart"),
            "location": int(loc),
            "quantity": qty,
            "rate": rate,
            "amount": amount,
            "taxdetailsreference": None if ref is None else str(ref),
            "taxcode": ref_id(line.get("taxCode")),
            "memo": line.get("description"),
        }
        shown = {
            "line": line_id,
            "item": {"id": item["id"], "refName": item.get("itemid")},
            "quantity": float(qty),
            "rate": float(rate),
            "amount": float(amount),
            "location": {"id": loc},
            **({"taxDetailsReference": str(ref)} if ref is not None else {}),
            **({"description": line["description"]} if line.get("description") else {}),
        }
        return stored, shown

    def _sale_discount(self, body: dict[str, Any], subtotal: Decimal, item_line_count: int) -> _SaleDiscount:
        """Body-level discount (loyalty): a Discount item with a negative amount or "-10%" of the
        subtotal; a discountRate without a discountItem is refused. Its line follows the item lines."""
        if body.get("discountItem") is None:
            if body.get("discountRate") not in (None, 0, "0"):
                raise NetSuiteError(
                    400, E.USER_ERROR, "Please enter value(s) for: discountItem", "discountItem"
                )
            return _SaleDiscount(Decimal(0), None, None)
        discount_item = self._check_item(body.get("discountItem"), "discountItem")
        if discount_item.get("itemtype") not in ("Discount", None):
            raise NetSuiteError(
                400,
                E.INVALID_KEY_OR_REF,
                f"Invalid discountItem reference key {discount_item['id']}: not a discount item.",
                "discountItem",
            )
        raw = body.get("discountRate", 0)
        if isinstance(raw, str) and raw.strip().endswith("%"):
            pct = money(raw.strip()[:-1], "discountRate")
            discount = round2(subtotal * pct / 100)
        else:
            discount = round2(money(raw, "discountRate"))
        if discount > 0:
            discount = -discount
        return _SaleDiscount(discount, discount_item, item_line_count + 1)

    def _sale_tax_rows(
        self,
        body: dict[str, Any],
        override: bool,
        lines: list[dict[str, Any]],
        refs: dict[str, int],
        discount: _SaleDiscount,
    ) -> list[dict[str, Any]]:
        """Tax details: the body's lines are checked, then either taken as given
        (taxDetailsOverride) or NetSuite computes the tax per line itself."""
        valid_refs = dict(refs)
        if discount.line_id is not None:
            valid_refs[DISCOUNT_TAX_REFERENCE] = discount.line_id
        parsed_tax = self._sale_parse_tax_details(body, override, valid_refs)
        if override:
            return self._sale_override_tax_rows(lines, parsed_tax, valid_refs)
        return self._sale_computed_tax_rows(lines, parsed_tax)

    def _sale_parse_tax_details(
        self, body: dict[str, Any], override: bool, valid_refs: dict[str, int]
    ) -> list[_TaxDetailIn]:
        """Each taxDetails line must reference an item line (or the discount); under the override
        every tax field is required; taxCode and taxType must be known."""
        tax_in = (body.get("taxDetails") or {}).get("items") or []
        parsed_tax = []
        for n, t in enumerate(tax_in):
            path = f"taxDetails.items[{n}]"
            ref = t.get("taxDetailsReference")
            if ref is None or str(ref) not in valid_refs:
                raise NetSuiteError(
                    400,
                    E.USER_ERROR,
                    f"Tax detail line {n + 1} references taxDetailsReference {ref!r}, which matches no item line.",
                    f"{path}.taxDetailsReference",
                )
            if override:
                missing = [f for f in TAX_FIELDS if t.get(f) is None]
                if missing:
                    raise NetSuiteError(
                        400,
                        E.USER_ERROR,
                        f"Please enter value(s) for: {', '.join(f'{path}.{m}' for m in missing)}",
                        f"{path}.{missing[0]}",
                    )
            code = self._check_ref(t.get("taxCode"), self.tax_codes, f"{path}.taxCode")
            ttype = self._check_ref(t.get("taxType"), self.tax_types, f"{path}.taxType")
            parsed_tax.append(_TaxDetailIn(str(ref), code, ttype, t, path))
        return parsed_tax

    def _sale_override_tax_rows(
        self, lines: list[dict[str, Any]], parsed_tax: list[_TaxDetailIn], valid_refs: dict[str, int]
    ) -> list[dict[str, Any]]:
        """taxDetailsOverride: every item line needs a taxDetailsReference covered by a tax detail
        line; the given basis, rate and amount are stored as sent (amount rounded to cents)."""
        covered = {p.ref for p in parsed_tax}
        for n, ln in enumerate(lines):
            ref = ln["taxdetailsreference"]
            if ref is None:
                raise NetSuiteError(
                    400,
                    E.USER_ERROR,
                    f"Item line {n + 1} has no taxDetailsReference (taxDetailsOverride is on).",
                    f"item.items[{n}].taxDetailsReference",
                )
            if ref not in covered:
                raise NetSuiteError(
                    400,
                    E.USER_ERROR,
                    f"Item line {n + 1} (taxDetailsReference {ref!r}) has no tax detail line.",
                    "taxDetails.items",
                )
        tax_rows: list[dict[str, Any]] = []
        for p in parsed_tax:
            assert p.code is not None and p.ttype is not None  # the override requires both (checked above)
            t, path = p.body, p.path
            tax_rows.append(
                {
                    "line": valid_refs[p.ref],
                    "ref": p.ref,
                    "taxcode": int(p.code),
                    "taxtype": int(p.ttype),
                    "taxrate": money(t["taxRate"], f"{path}.taxRate"),
                    "taxbasis": money(t["taxBasis"], f"{path}.taxBasis"),
                    "taxamount": round2(money(t["taxAmount"], f"{path}.taxAmount")),
                }
            )
        return tax_rows

    def _sale_computed_tax_rows(
        self, lines: list[dict[str, Any]], parsed_tax: list[_TaxDetailIn]
    ) -> list[dict[str, Any]]:
        """No override: NetSuite computes tax itself, per line, round(amount x rate, 2) half-up; the
        code is the line's taxCode, else the one of its tax detail line."""
        code_by_ref = {p.ref: (p.code, p.ttype) for p in parsed_tax}
        tax_rows: list[dict[str, Any]] = []
        for n, ln in enumerate(lines):
            code, ttype = None, None
            if ln["taxcode"] is not None:
                code = ln["taxcode"]
            elif ln["taxdetailsreference"] in code_by_ref:
                code, ttype = code_by_ref[ln["taxdetailsreference"]]
            if code is None:
                raise NetSuiteError(
                    400,
                    E.USER_ERROR,
                    f"Item line {n + 1} has no tax code (give item.items[{n}].taxCode or a taxDetails line).",
                    f"item.items[{n}].taxCode",
                )
            tc = self.tax_codes[code]
            rate = Decimal(str(tc["rate"]))
            ttype = ttype or str(tc.get("taxtype") or next(iter(self.tax_types), "0"))
            tax_rows.append(
                {
                    "line": ln["id"],
                    "ref": ln["taxdetailsreference"] or f"L{ln['id']}",
                    "taxcode": int(code),
                    "taxtype": int(ttype),
                    "taxrate": rate,
                    "taxbasis": ln["amount"],
                    "taxamount": round2(ln["amount"] * rate / 100),
                }
            )
        return tax_rows

    def _sale_transaction_lines(
        self,
        body: dict[str, Any],
        location: str | None,
        lines: list[dict[str, Any]],
        discount: _SaleDiscount,
        tax_rows: list[dict[str, Any]],
        sign: Decimal,
        total: Decimal,
    ) -> list[dict[str, Any]]:
        """transactionline rows: 0 mainline, 1..n items, discount line, then one tax line per tax
        detail (numbering each tax row: ``id`` and ``taxline_id``). Signs as SuiteQL shows them."""
        head_loc = int(location) if location else lines[0]["location"]
        tl: list[dict[str, Any]] = [
            {
                "id": 0,
                "item": None,
                "location": head_loc,
                "quantity": None,
                "rate": None,
                "netamount": -sign * total,
                "mainline": "T",
                "taxline": "F",
                "itemtype": None,
                "isinventoryaffecting": "F",
                "memo": body.get("memo"),
                "taxdetailsreference": None,
            }
        ]
        for ln in lines:
            tl.append(
                {
                    "id": ln["id"],
                    "item": ln["item"],
                    "location": ln["location"],
                    "quantity": sign * ln["quantity"],
                    "rate": ln["rate"],
                    "netamount": sign * ln["amount"],
                    "mainline": "F",
                    "taxline": "F",
                    "itemtype": ln["itemtype"],
                    "isinventoryaffecting": "T" if ln["itemtype"] in STOCK_ITEM_TYPES else "F",
                    "memo": ln["memo"],
                    "taxdetailsreference": ln["taxdetailsreference"],
                }
            )
        if discount.line_id is not None:
            assert discount.item is not None  # a discount line exists only for a discount item
            tl.append(
                {
                    "id": discount.line_id,
                    "item": int(discount.item["id"]),
                    "location": head_loc,
                    "quantity": None,
                    "rate": discount.amount,
                    "netamount": sign * discount.amount,
                    "mainline": "F",
                    "taxline": "F",
                    "itemtype": "Discount",
                    "isinventoryaffecting": "F",
                    "memo": "discount",
                    "taxdetailsreference": DISCOUNT_TAX_REFERENCE,
                }
            )
        next_id = len(tl)
        line_loc = {row["id"]: row["location"] for row in tl}
        for k, t in enumerate(tax_rows):
            t["id"] = k + 1
            t["taxline_id"] = next_id + k
            tl.append(
                {
                    "id": next_id + k,
                    "item": t["taxcode"],
                    "location": line_loc[t["line"]],
                    "quantity": None,
                    "rate": t["taxrate"],
                    "netamount": sign * t["taxamount"],
                    "mainline": "F",
                    "taxline": "T",
                    "itemtype": "TaxItem",
                    "isinventoryaffecting": "F",
                    "memo": None,
                    "taxdetailsreference": t["ref"],
                }
            )
        return tl

    def _sale_cash_account(
        self, record_type: str, body: dict[str, Any], payment: str | None, account: str | None
    ) -> int:
        """The money side follows NetSuite's default payment account hierarchy: the body's account,
        else undeposited funds if asked, else the payment method's "Deposit To" account, else
        undeposited funds. A credit memo credits the customer instead."""
        if account:
            return int(account)
        if record_type == "creditMemo":
            return ACCOUNT_CUSTOMER_CREDIT
        if body.get("undepFunds") is True or payment is None:
            return ACCOUNT_UNDEPOSITED_FUNDS
        return self.payment_method_account.get(payment) or ACCOUNT_UNDEPOSITED_FUNDS

    def _sale_accounting(
        self,
        cash_account: int,
        lines: list[dict[str, Any]],
        discount: _SaleDiscount,
        tax_rows: list[dict[str, Any]],
        s: Decimal,
        total: Decimal,
    ) -> list[tuple[int, int, Decimal]]:
        """Ledger (+ debit / - credit; ``s`` is +1 for a sale): Dr funds, Cr each line's item account
        and VAT payable, Dr the discount item's account. A refund or credit memo is mirrored."""
        accounting: list[tuple[int, int, Decimal]] = [(0, cash_account, s * total)]
        accounting += [(ln["id"], self._item_account(ln["item"]), -s * ln["amount"]) for ln in lines]
        if discount.line_id is not None:
            assert discount.item is not None  # a discount line exists only for a discount item
            accounting.append(
                (discount.line_id, self._item_account(int(discount.item["id"])), -s * discount.amount)
            )
        accounting += [(t["taxline_id"], ACCOUNT_TAX_PAYABLE, -s * t["taxamount"]) for t in tax_rows]
        return accounting

    @staticmethod
    def _sale_stock(lines: list[dict[str, Any]], sign: Decimal) -> dict[tuple[int, int], Decimal]:
        """Stock effect per (item, location): only inventory items move; a sale takes stock out,
        a refund or credit memo puts it back."""
        stock: dict[tuple[int, int], Decimal] = {}
        for ln in lines:
            if ln["itemtype"] in STOCK_ITEM_TYPES:
                key = (ln["item"], ln["location"])
                stock[key] = stock.get(key, Decimal(0)) + sign * ln["quantity"]
        return stock

    @staticmethod
    def _sale_created_from(body: dict[str, Any]) -> int | None:
        """createdFrom of a return (the original sale's internal id): stored as given, not checked."""
        created_from = ref_id(body.get("createdFrom"))
        return int(created_from) if created_from else None

    @staticmethod
    def _sale_record(
        body: dict[str, Any],
        external_id: str,
        tran_date: str,
        override: bool,
        out_items: list[dict[str, Any]],
        tax_rows: list[dict[str, Any]],
        totals: dict[str, float],
    ) -> dict[str, Any]:
        """The record as GET returns it: the body's own fields, with the sublists and totals as
        NetSuite computed them."""
        record = {k: v for k, v in body.items() if k not in ("item", "taxDetails", "id", "links")}
        record.update(
            {
                "externalId": external_id,
                "tranDate": tran_date,
                "taxDetailsOverride": override,
                "item": {"links": [], "items": out_items, "totalResults": len(out_items)},
                "taxDetails": {
                    "links": [],
                    "items": [
                        {
                            "taxDetailsReference": t["ref"],
                            "taxType": {"id": str(t["taxtype"])},
                            "taxCode": {"id": str(t["taxcode"])},
                            "taxBasis": float(t["taxbasis"]),
                            "taxRate": float(t["taxrate"]),
                            "taxAmount": float(t["taxamount"]),
                        }
                        for t in tax_rows
                    ],
                    "totalResults": len(tax_rows),
                },
                **totals,
            }
        )
        return record

    def _item_account(self, item_id: int) -> int:
        """The account an item line credits on a sale: its own, else the default for its type."""
        item = self.items.get(str(item_id)) or {}
        if item.get("incomeaccount"):
            return int(item["incomeaccount"])
        return DEFAULT_ITEM_ACCOUNT.get(item.get("itemtype", "InvtPart"), ACCOUNT_SALES)

    def _prepare_journal(
        self, external_id: str, body: dict[str, Any], tran_date: str, subsidiary: str | None
    ) -> Prepared:
        """A journal entry: ``line.items[]`` of ``account`` + ``debit`` or ``credit``; must balance."""
        items = (body.get("line") or {}).get("items") or []
        if not items:
            raise NetSuiteError(400, E.USER_ERROR, "You must enter at least one line in line.", "line")
        _check_line_limit(len(items), "line")
        tl: list[dict[str, Any]] = []
        accounting: list[tuple[int, int, Decimal]] = []
        out_items = []
        debits = credits = Decimal(0)
        for n, line in enumerate(items):
            path = f"line.items[{n}]"
            acct = self._check_ref(line.get("account"), self.accounts, f"{path}.account", required=True)
            loc = self._check_ref(line.get("location"), self.locations, f"{path}.location")
            entity = self._check_ref(line.get("entity"), self.customers, f"{path}.entity")
            debit = round2(money(line["debit"], f"{path}.debit")) if line.get("debit") is not None else None
            credit = (
                round2(money(line["credit"], f"{path}.credit")) if line.get("credit") is not None else None
            )
            if (debit is None) == (credit is None) or (debit or credit or Decimal(0)) < 0:
                raise NetSuiteError(
                    400,
                    E.USER_ERROR,
                    f"Journal line {n + 1}: enter either a debit or a credit amount (not negative).",
                    f"{path}.debit",
                )
            if debit is not None:  # + debit / - credit (exactly one of them: checked above)
                amount = debit
            else:
                assert credit is not None
                amount = -credit
            debits += debit or 0
            credits += credit or 0
            tl.append(
                {
                    "id": n,
                    "item": None,
                    "location": int(loc) if loc else None,
                    "quantity": None,
                    "rate": None,
                    "netamount": amount,
                    "mainline": "F",
                    "taxline": "F",
                    "itemtype": None,
                    "isinventoryaffecting": "F",
                    "memo": line.get("memo"),
                    "taxdetailsreference": None,
                }
            )
            accounting.append((n, int(acct), amount))
            out_items.append(
                {
                    "line": n,
                    "account": {"id": acct},
                    **({"debit": float(debit)} if debit is not None else {"credit": float(-amount)}),
                    **({"location": {"id": loc}} if loc else {}),
                    **({"entity": {"id": entity}} if entity else {}),
                    **({"memo": line["memo"]} if line.get("memo") else {}),
                }
            )
        if debits != credits:
            raise NetSuiteError(
                400,
                E.USER_ERROR,
                f"The transaction is not in balance: debits {debits} and credits {credits}.",
                "line",
            )
        head_loc = next((ln["location"] for ln in tl if ln["location"] is not None), None)
        totals = {"subtotal": 0.0, "discountTotal": 0.0, "taxTotal": 0.0, "total": float(debits)}
        header = {
            "type": "Journal",
            "trandate": tran_date,
            "entity": None,
            "location": head_loc,
            "subsidiary": int(subsidiary) if subsidiary else None,
            "memo": body.get("memo"),
            "total": float(debits),
            "taxtotal": 0.0,
            "subtotal": 0.0,
            "discounttotal": 0.0,
            "createdfrom": None,
            "paymentmethod": None,
            "account": None,
            "taxdetailsoverride": "F",
        }
        record = {k: v for k, v in body.items() if k not in ("line", "id", "links")}
        record.update(
            {
                "externalId": external_id,
                "tranDate": tran_date,
                "line": {"links": [], "items": out_items, "totalResults": len(out_items)},
                "total": float(debits),
            }
        )
        return Prepared("journalEntry", external_id, header, tl, [], accounting, {}, totals, record)

    def ledger(self, externalid_like: str = "%") -> dict[str, dict[str, Any]]:
        """Posted balance per account (debit - credit), as ``transactionaccountingline`` holds it."""
        rows = self.query(
            "SELECT tal.account, a.name, a.accttype, COALESCE(SUM(tal.debit), 0), COALESCE(SUM(tal.credit), 0) "
            'FROM transactionaccountingline tal JOIN "transaction" t ON t.id = tal."transaction" '
            "LEFT JOIN account a ON a.id = tal.account "
            "WHERE tal.posting = 'T' AND t.externalid LIKE ? GROUP BY tal.account, a.name, a.accttype "
            "ORDER BY tal.account",
            (externalid_like,),
        )
        return {
            str(acct): {
                "name": name,
                "type": acct_type,
                "debit": f"{round2(Decimal(str(dr))):.2f}",
                "credit": f"{round2(Decimal(str(cr))):.2f}",
                "balance": f"{round2(Decimal(str(dr)) - Decimal(str(cr))):.2f}",
            }
            for acct, name, acct_type, dr, cr in rows
        }

    def _prepare_adjustment(
        self, external_id: str, body: dict[str, Any], tran_date: str, subsidiary: str | None
    ) -> Prepared:
        account = self._check_ref(body.get("account"), self.accounts, "account")
        adj_loc = self._check_ref(body.get("adjLocation"), self.locations, "adjLocation")
        items = (body.get("inventory") or {}).get("items") or []
        if not items:
            raise NetSuiteError(
                400, E.USER_ERROR, "You must enter at least one line in inventory.", "inventory"
            )
        tl: list[dict[str, Any]] = []
        accounting: list[tuple[int, int, Decimal]] = []
        stock: dict[tuple[int, int], Decimal] = {}
        out_items = []
        value_total = Decimal(0)
        for n, line in enumerate(items):
            path = f"inventory.items[{n}]"
            item = self._check_item(line.get("item"), f"{path}.item")
            loc = self._check_ref(line.get("location"), self.locations, f"{path}.location") or adj_loc
            if loc is None:
                raise NetSuiteError(
                    400, E.USER_ERROR, f"Please enter value(s) for: {path}.location", f"{path}.location"
                )
            if line.get("adjustQtyBy") is None:
                raise NetSuiteError(
                    400, E.USER_ERROR, f"Please enter value(s) for: {path}.adjustQtyBy", f"{path}.adjustQtyBy"
                )
            qty = money(line["adjustQtyBy"], f"{path}.adjustQtyBy")
            cost = (
                money(line["unitCost"], f"{path}.unitCost")
                if line.get("unitCost") is not None
                else Decimal(0)
            )
            value = round2(qty * cost)
            value_total += value
            tl.append(
                {
                    "id": n + 1,
                    "item": int(item["id"]),
                    "location": int(loc),
                    "quantity": qty,
                    "rate": cost,
                    "netamount": value,
                    "mainline": "F",
                    "taxline": "F",
                    "itemtype": item.get("itemtype"),
                    "isinventoryaffecting": "T",
                    "memo": line.get("memo"),
                    "taxdetailsreference": None,
                }
            )
            if value:
                accounting.append((n + 1, ACCOUNT_INVENTORY_ASSET, value))
            key = (int(item["id"]), int(loc))
            stock[key] = stock.get(key, Decimal(0)) + qty
            out_items.append(
                {
                    "line": n + 1,
                    "item": {"id": item["id"], "refName": item.get("itemid")},
                    "location": {"id": loc},
                    "adjustQtyBy": float(qty),
                    **({"unitCost": float(cost)} if line.get("unitCost") is not None else {}),
                }
            )
        head_loc = int(adj_loc) if adj_loc else tl[0]["location"]
        tl.insert(
            0,
            {
                "id": 0,
                "item": None,
                "location": head_loc,
                "quantity": None,
                "rate": None,
                "netamount": -value_total,
                "mainline": "T",
                "taxline": "F",
                "itemtype": None,
                "isinventoryaffecting": "F",
                "memo": body.get("memo"),
                "taxdetailsreference": None,
            },
        )
        if value_total:
            accounting.insert(0, (0, int(account) if account else ACCOUNT_INVENTORY_ASSET, -value_total))
        totals = {"subtotal": 0.0, "discountTotal": 0.0, "taxTotal": 0.0, "total": float(value_total)}
        header = {
            "type": "InvAdjst",
            "trandate": tran_date,
            "entity": None,
            "location": head_loc,
            "subsidiary": int(subsidiary) if subsidiary else None,
            "memo": body.get("memo"),
            "total": float(value_total),
            "taxtotal": 0.0,
            "subtotal": 0.0,
            "discounttotal": 0.0,
            "createdfrom": None,
            "paymentmethod": None,
            "account": int(account) if account else None,
            "taxdetailsoverride": "F",
        }
        record = {k: v for k, v in body.items() if k not in ("inventory", "id", "links")}
        record.update(
            {
                "externalId": external_id,
                "tranDate": tran_date,
                "inventory": {"links": [], "items": out_items, "totalResults": len(out_items)},
                "estimatedTotalValue": float(value_total),
            }
        )
        return Prepared("inventoryAdjustment", external_id, header, tl, [], accounting, stock, totals, record)

    # ------------------------------------------------------------------ writes
    def upsert(self, p: Prepared) -> tuple[str, bool]:
        """Write a prepared record; returns (internal id, created?). Stock is applied as a delta."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.lock:
            c = self.conn
            c.execute("BEGIN")
            try:
                row = c.execute(
                    'SELECT id, createddate FROM "transaction" WHERE recordtype = ? AND externalid = ?',
                    (p.record_type, p.external_id),
                ).fetchone()
                old_stock: dict[tuple[int, int], float] = {}
                if row:
                    tid, created_at = row[0], row[1]
                    created = False
                    for item, loc, qty, affects_stock in c.execute(
                        "SELECT item, location, quantity, isinventoryaffecting FROM transactionline "
                        'WHERE "transaction" = ?',
                        (tid,),
                    ):
                        if affects_stock == "T" and item is not None:
                            old_stock[(item, loc)] = old_stock.get((item, loc), 0) + qty
                    for table in ("transactionline", "transactiontaxdetail", "transactionaccountingline"):
                        c.execute(f'DELETE FROM {table} WHERE "transaction" = ?', (tid,))
                else:
                    nxt = c.execute('SELECT MAX(id) FROM "transaction"').fetchone()[0]
                    tid = max(FIRST_TRANSACTION_ID, (nxt or 0) + 1)
                    created, created_at = True, now
                h = p.header
                record = dict(
                    p.record,
                    createdDate=created_at,
                    lastModifiedDate=now,
                    tranId=f"{TRANID_PREFIX[p.record_type]}{tid}",
                )
                c.execute(
                    'INSERT OR REPLACE INTO "transaction" (id, type, recordtype, externalid, tranid, trandate, '
                    "postingperiod, entity, location, subsidiary, memo, total, taxtotal, subtotal, discounttotal, "
                    "createdfrom, paymentmethod, account, taxdetailsoverride, createddate, lastmodifieddate, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tid,
                        h["type"],
                        p.record_type,
                        p.external_id,
                        record["tranId"],
                        h["trandate"],
                        h["trandate"][:7],
                        h["entity"],
                        h["location"],
                        h["subsidiary"],
                        h["memo"],
                        h["total"],
                        h["taxtotal"],
                        h["subtotal"],
                        h["discounttotal"],
                        h["createdfrom"],
                        h["paymentmethod"],
                        h["account"],
                        h["taxdetailsoverride"],
                        created_at,
                        now,
                        json.dumps(record),
                    ),
                )

                def f(v: Any) -> Any:
                    return float(v) if isinstance(v, Decimal) else v

                c.executemany(
                    'INSERT INTO transactionline ("transaction", id, linesequencenumber, item, location, subsidiary, '
                    "entity, quantity, rate, netamount, mainline, taxline, itemtype, isinventoryaffecting, memo, "
                    "taxdetailsreference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            tid,
                            ln["id"],
                            ln["id"],
                            ln["item"],
                            ln["location"],
                            h["subsidiary"],
                            h["entity"],
                            f(ln["quantity"]),
                            f(ln["rate"]),
                            f(ln["netamount"]),
                            ln["mainline"],
                            ln["taxline"],
                            ln["itemtype"],
                            ln["isinventoryaffecting"],
                            ln["memo"],
                            ln["taxdetailsreference"],
                        )
                        for ln in p.lines
                    ],
                )
                c.executemany(
                    'INSERT INTO transactiontaxdetail ("transaction", line, id, taxcode, taxtype, taxrate, taxbasis, '
                    "taxamount, taxdetailsreference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            tid,
                            t["line"],
                            t["id"],
                            t["taxcode"],
                            t["taxtype"],
                            float(t["taxrate"]),
                            float(t["taxbasis"]),
                            float(t["taxamount"]),
                            t["ref"],
                        )
                        for t in p.tax_details
                    ],
                )
                c.executemany(
                    'INSERT INTO transactionaccountingline ("transaction", transactionline, account, debit, credit, '
                    "amount, posting) VALUES (?, ?, ?, ?, ?, ?, 'T')",
                    [
                        (
                            tid,
                            line,
                            acct,
                            float(amt) if amt > 0 else None,
                            float(-amt) if amt < 0 else None,
                            float(amt),
                        )
                        for line, acct, amt in p.accounting
                        if amt
                    ],
                )
                new_stock = {k: float(v) for k, v in p.stock.items()}
                deltas = {k: new_stock.get(k, 0) - old_stock.get(k, 0) for k in {*old_stock, *new_stock}}
                c.executemany(
                    "INSERT INTO inventoryitemlocations (item, location, quantityonhand, quantityavailable) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (item, location) DO UPDATE SET "
                    "quantityonhand = quantityonhand + excluded.quantityonhand, "
                    "quantityavailable = quantityavailable + excluded.quantityavailable",
                    [(k[0], k[1], d, d) for k, d in sorted(deltas.items()) if d],
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return str(tid), created

    def edit_line_quantity(self, internal_id: str, line: int, quantity: Decimal) -> None:
        """A finance user opens a posted sale or return in the UI, changes an item line's quantity and
        types the line's amount back in: amounts, tax details and the ledger stay as they were; the line's
        quantity changes, NetSuite derives its rate (amount / quantity), the stock it moves follows, and
        the record's lastModifiedDate. ``quantity`` as on the record (a sale's lines positive)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.lock:
            c = self.conn
            head = c.execute(
                'SELECT recordtype, trandate, body FROM "transaction" WHERE id = ?', (int(internal_id),)
            ).fetchone()
            if head is None or head[0] not in ("cashSale", "cashRefund", "creditMemo"):
                raise ValueError(f"no sale, refund or credit memo with internal id {internal_id}")
            if head[1][:7] in self.closed_periods:
                raise ValueError(
                    f"the accounting period {head[1][:7]} is closed: {internal_id} cannot be edited"
                )
            row = c.execute(
                "SELECT item, location, quantity, netamount, isinventoryaffecting FROM transactionline WHERE "
                "\"transaction\" = ? AND id = ? AND mainline = 'F' AND taxline = 'F' AND quantity IS NOT NULL",
                (int(internal_id), line),
            ).fetchone()
            if row is None:
                raise ValueError(f"{internal_id}: line {line} is not an item line")
            item, location, old_qty, netamount, affects_stock = row
            sign = -1 if head[0] == "cashSale" else 1  # quantity and netamount sign of item lines
            qty = Decimal(str(quantity))
            rate = (Decimal(str(sign * netamount)) / qty).quantize(Decimal("0.0001")) if qty else None
            record = json.loads(head[2])
            for it in record["item"]["items"]:
                if it["line"] == line:
                    it["quantity"] = float(qty)
                    if rate is not None:
                        it["rate"] = float(rate)
            record["lastModifiedDate"] = now
            c.execute("BEGIN")
            try:
                c.execute(
                    'UPDATE transactionline SET quantity = ?, rate = coalesce(?, rate) WHERE "transaction" = ? '
                    "AND id = ?",
                    (float(sign * qty), None if rate is None else float(rate), int(internal_id), line),
                )
                c.execute(
                    'UPDATE "transaction" SET body = ?, lastmodifieddate = ? WHERE id = ?',
                    (json.dumps(record), now, int(internal_id)),
                )
                delta = float(sign * qty) - old_qty
                if affects_stock == "T" and delta:
                    c.execute(
                        "INSERT INTO inventoryitemlocations (item, location, quantityonhand, quantityavailable) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (item, location) DO UPDATE SET "
                        "quantityonhand = quantityonhand + excluded.quantityonhand, "
                        "quantityavailable = quantityavailable + excluded.quantityavailable",
                        (item, location, delta, delta),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def clear_transactions(self) -> None:
        with self.lock:
            for table in (
                '"transaction"',
                "transactionline",
                "transactiontaxdetail",
                "transactionaccountingline",
            ):
                self.conn.execute(f"DELETE FROM {table}")


def on_hand_from_store_sku(
    fn: Callable[[int | str, str], int | None], master: dict[str, list[dict]]
) -> Callable[[str, str], int | None]:
    """Adapt a Sitoo-side ``initial_on_hand(store, sku)`` to the emulator's ``(item_id, location_id)``.

    The location's ``externalid`` (``"ST001"``) is passed as the store; items map to their ``itemid`` (SKU).
    """
    sku = {str(r["id"]): r["itemid"] for r in master.get("items", [])}
    store = {str(r["id"]): r.get("externalid") or int(r["id"]) - 1000 for r in master.get("locations", [])}
    return lambda item_id, location_id: fn(store[location_id], sku[item_id])
