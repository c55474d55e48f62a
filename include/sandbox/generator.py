"""Seeded Sitoo POS data generator: orders, stock movements and Z-reports, built lazily.

Deterministic by seed: the same arguments give byte-identical payloads. The dataset keeps only a
compact numpy index per order (orderid, store, orderdate, dateadded, kind, flags, tender, links,
receipt number, state ids: ~50 bytes/order) and builds each order's JSON on demand from a
``random.Random`` seeded by ``(seed, orderid)``, so a server can page through millions of orders.

It models what real tills vary, from Sitoo's documentation and published examples, not from what
the posting code expects (``docs/`` of the public ``sitoo-client`` OpenAPI spec; see
``/work/shared/reference/sitoo-api.md``):

- **Pricing per store** (``catalogue.Store.pricing``): VAT-inclusive shelf prices by default, with
  VAT derived per unit and per receipt from the gross (``gross_receipt``), per row from the row's
  gross (``gross_line``), or net prices with VAT per row (``net_line``) or per receipt
  (``net_receipt``). Rows always carry Sitoo's *net* unit prices (``moneynetpriceperunit``) and row
  totals with net + VAT = the row's gross; under ``gross_receipt`` the receipt's VAT per rate is
  round(gross_R x R / (100 + R)), so it may differ from the sum of the rows' VAT by pennies (3 x 0.99
  at 20 %: rows 0.82 + 0.17 per unit = 2.46 + 0.51, receipt net 2.47 + VAT 0.50 = 2.97); under
  ``gross_line`` ``moneyitemtotal_net`` need not equal ``moneynetpriceperunit x quantity``.
  ``receipt_vat_by_rate`` gives the receipt's (net, VAT) per rate. A Nordic store (``nordic_stores``)
  sells in SEK at 25 / 12 / 6 / 0 % and rounds cash to whole kronor; UK stores round cash to 0.05.
- **Shapes as Sitoo publishes them**: an order has exactly the keys of Sitoo's single-order example
  (empty strings where Sitoo has them, ``creditorderid`` null on a sale), rows and payments exactly
  the keys of the list example, warehouse items without ``warehouseid`` (it is in the URL),
  transactions and Z-reports with the keys of their examples (plus ``dateadded`` on
  ``/pos-z-reports``). ``additionaldata`` keys are only those Sitoo documents. Money 2-dp strings,
  quantities 3-dp strings, ROUND_HALF_UP. A row without a discount has ``moneydiscountedprice`` and
  ``moneydiscount`` ``"0.00"`` and ``moneypriceorg`` ``"0.00"``, as in the examples.
- **Discounts**: a campaign sits in the row price (``moneyoriginalprice`` - ``moneydiscountedprice``
  = ``moneydiscount`` per unit, net) with ``voucherid`` / ``vouchercode`` / ``vouchername``. A
  **loyalty bonus cheque** is also a row discount (Sitoo documents no amount key): the row carries
  ``additionaldata["crm-bonuscheckid"]`` and no voucher code, the order ``crm-membernumber`` and
  ``crm-customerid``; its value is sum((moneyoriginalprice - moneydiscountedprice) x qty) net plus
  that VAT. The Z-report lists bonus cheques under vouchercode ``""``.
- **Gift cards**: sold as a 0 % row (product group type 30, ``product-group-name`` "Gift cards",
  ``giftcard-cardnumber``); redeemed as payment ``"Gift Card"`` with ``giftcard-cardnumber(-display)``.
- **Tenders**: Card, Cash, Klarna, Gift Card + Card, Card + Cash, Foreign Currency (unmapped);
  exchanges move value with payment ``"Exchange"`` (``virtual-payment: "true"``), the balance by Card.
- **Receipt kinds**: sales, partial returns (some rows, some units), cross-store returns (returned at
  another store of the same country), exchanges (a refund + a sale, the new item usually dearer),
  returns of a return (a positive receipt whose ``creditorderid`` is a refund), open / parked /
  booking / cancelled / abandoned POS orders, and web orders without a register (``registerid`` and
  ``warehouseid`` null, delivery fee, Klarna; closed and paid, or open with a reserved payment).
- Invariant of every paid order: ``sum(payments) == moneytotal_gross_all == moneyfinal_net +
  moneyfinal_vat + moneytotal_gross_roundoff``.

Order ids ascend in backend arrival order (``dateadded``): an offline receipt that reaches the
backend hours late gets a higher orderid than receipts made after it. ``dateadded`` is not an
order field in the API; the sandbox clock hides orders whose ``dateadded`` is in its future.

Stock: every store warehouse starts with ``initial_on_hand(store, sku)``; transactions: Sales (30) /
Refund (40) per finalised POS receipt (``orderdeliveryid = orderid * 10 + 1``, ``datecreated =
dateadded``), plus per store-day a Move In (10) at 07:00 that replenishes every SKU the next 24 hours
will sell beyond its level, sometimes a Move Out (20) at 18:00 and a StockTaking (50) at 20:30 local,
both bounded so that stock never goes below zero (only a planted case can). Transactions, levels
and Z-reports are materialised on first use (O(orders); fine up to ~100k orders).
"""

from __future__ import annotations

import bisect
import copy
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from include.sandbox.catalogue import (
    DEFAULT_TIMEZONE,
    GIFT_CARD_SKU,
    PRICING_CONVENTIONS,
    UNMAPPED_TENDER,
    Catalogue,
    Product,
    Store,
    build_catalogue,
)

ORDERID_BASE = 10_001
CURRENCY = "GBP"
Q2 = Decimal("0.01")
Q5 = Decimal("0.05")
ZERO = Decimal("0.00")
CASH_ROUNDING = {"GB": Decimal("0.05"), "SE": Decimal("1.00")}

# Order kinds (index column ``kind``).
(
    SALE,
    RETURN,
    EXCH_REFUND,
    EXCH_SALE,
    OPEN,
    PARKED,
    BOOKING,
    CANCELLED,
    ABANDONED,
    RETURN_REVERSAL,
    WEB,
    WEB_OPEN,
) = range(12)
KIND_NAMES = (
    "sale",
    "return",
    "exchange_refund",
    "exchange_sale",
    "open",
    "parked",
    "booking",
    "cancelled",
    "abandoned",
    "return_reversal",
    "web",
    "web_open",
)
KIND_BY_NAME = {n: i for i, n in enumerate(KIND_NAMES)}
WEB_KINDS = (WEB, WEB_OPEN)
# (orderstateid, paymentstateid, ordertypeid)
STATES: dict[int, tuple[int, int, int]] = {
    SALE: (10, 20, 10),
    RETURN: (10, 20, 10),
    EXCH_REFUND: (10, 20, 10),
    EXCH_SALE: (10, 20, 10),
    OPEN: (0, 10, 10),
    PARKED: (0, 0, 110),
    BOOKING: (0, 15, 100),
    CANCELLED: (20, 30, 10),
    ABANDONED: (-1, 0, 10),
    RETURN_REVERSAL: (10, 20, 10),
    WEB: (10, 20, 10),
    WEB_OPEN: (0, 15, 10),
}
# Primary draw (EXCH_SALE is added for each EXCH_REFUND). ``generate_dataset(kind_weights=...)``.
KIND_WEIGHTS = {
    SALE: 0.84,
    RETURN: 0.04,
    EXCH_REFUND: 0.01,
    OPEN: 0.01,
    PARKED: 0.02,
    BOOKING: 0.01,
    CANCELLED: 0.02,
    ABANDONED: 0.02,
    RETURN_REVERSAL: 0.005,
    WEB: 0.015,
    WEB_OPEN: 0.01,
}

# Basket flags (sales; F_CROSS_STORE on returns).
F_UNKNOWN_SKU, F_PENNY, F_LOYALTY, F_CAMPAIGN, F_GIFTCARD_SOLD, F_CROSS_STORE = 1, 2, 4, 8, 16, 32
FLAG_RATES = {
    F_UNKNOWN_SKU: 0.005,
    F_PENNY: 0.05,
    F_LOYALTY: 0.05,
    F_CAMPAIGN: 0.15,
    F_GIFTCARD_SOLD: 0.02,
}
CROSS_STORE_SHARE = 0.15  # of returns, when another store of the same country exists
# Tender plans (sales only; everything else pays by Card).
T_CARD, T_CASH, T_SPLIT, T_GIFTCARD, T_KLARNA, T_FOREIGN = range(6)
TENDER_WEIGHTS = {
    T_CARD: 0.615,
    T_CASH: 0.18,
    T_SPLIT: 0.05,
    T_GIFTCARD: 0.03,
    T_KLARNA: 0.12,
    T_FOREIGN: 0.005,
}
OFFLINE_SHARE = 0.02
OPEN_HOUR, OPEN_SECONDS = 9, 12 * 3600
INDEX_COLUMNS = (
    "orderid",
    "store",
    "orderdate",
    "dateadded",
    "kind",
    "flags",
    "tender",
    "link",
    "partner",
    "receiptno",
    "orderstateid",
    "paymentstateid",
    "ordertypeid",
)
VATID_BY_RATE = {20: 2, 5: 3, 0: 4, 25: 6, 12: 7, 6: 8}
GIFT_CARD_VATID = 5
VOUCHER_IDS = {10: 11, 20: 12, 30: 13}
WEB_PRICING = "gross_line"  # the web shop shows VAT-inclusive prices and taxes each row

# Key sets of Sitoo's published examples (sitoo-client src/paths/sites/_siteid_/orders/_orderid_.yaml,
# orders.yaml, warehouseitems.yaml, warehousetransactions.yaml, zreports.yaml), in their order.
ORDER_KEYS = [
    "orderid",
    "eshopid",
    "externalid",
    "creditorderid",
    "checkouttypeid",
    "deliverytypeid",
    "email",
    "namefirst",
    "namelast",
    "personalid",
    "company",
    "phone",
    "invoice_address",
    "invoice_address2",
    "invoice_zip",
    "invoice_city",
    "invoice_state",
    "invoice_countryid",
    "delivery_address",
    "delivery_address2",
    "delivery_zip",
    "delivery_city",
    "delivery_state",
    "delivery_countryid",
    "comment",
    "commentinternal",
    "customerref",
    "checkoutref",
    "moneytotal_net",
    "moneytotal_vat",
    "moneycheckout_net",
    "moneycheckout_vat",
    "moneytotal_gross_checkout",
    "moneydelivery_net",
    "moneydelivery_vat",
    "moneytotal_gross_delivery",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneyfinal_salestax",
    "moneytotal_gross_roundoff",
    "moneytotal_gross_all",
    "checkouttypename",
    "checkoutmethodid",
    "checkoutmethodsubid",
    "deliverytypename",
    "orderdate",
    "orderstateid",
    "paymentstateid",
    "ordertypeid",
    "userid_staff",
    "registerid",
    "warehouseid",
    "datereserved",
    "currencycode",
    "additionaldata",
    "orderitems",
    "payments",
]

# Sitoo's example has "" for absent strings and "0.00" for absent money.
_ORDER_TEMPLATE: dict[str, Any] = {k: "0.00" if k.startswith("money") else "" for k in ORDER_KEYS}


def r2(x: Decimal) -> Decimal:
    return x.quantize(Q2, ROUND_HALF_UP)


def money(x: Decimal | int | str) -> str:
    """A Sitoo money string: 2 decimals, no negative zero."""
    d = r2(Decimal(x))
    return "0.00" if d == 0 else f"{d:.2f}"


def dec3(x: Decimal | int | str) -> str:
    d = Decimal(x).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return "0.000" if d == 0 else f"{d:.3f}"


def rate_of(vatvalue: Any) -> Decimal:
    return Decimal(str(vatvalue)) / 100


def vat_from_gross(gross: Decimal, vatvalue: Any) -> Decimal:
    """VAT contained in a VAT-inclusive amount, rounded half up (away from zero)."""
    r = Decimal(str(vatvalue))
    return r2(gross * r / (100 + r))


def vat_from_net(net: Decimal, vatvalue: Any) -> Decimal:
    return r2(net * rate_of(vatvalue))


def row_totals_by_rate(order: dict) -> dict[Any, tuple[Decimal, Decimal]]:
    """Sum of the rows' (moneyitemtotal_net, moneyitemtotal_vat) per VAT rate."""
    out: dict[Any, tuple[Decimal, Decimal]] = {}
    for row in order.get("orderitems") or []:
        n, v = out.get(row["vatvalue"], (ZERO, ZERO))
        out[row["vatvalue"]] = (
            n + Decimal(row["moneyitemtotal_net"]),
            v + Decimal(row["moneyitemtotal_vat"]),
        )
    return out


def by_rate_under(
    rows: dict[Any, tuple[Decimal, Decimal]], pricing: str
) -> dict[Any, tuple[Decimal, Decimal]]:
    """The receipt's (net, VAT) per rate as a till of ``pricing`` computes it from its rows."""
    if pricing in ("net_line", "gross_line"):
        return dict(rows)
    if pricing == "net_receipt":
        return {r: (n, vat_from_net(n, r)) for r, (n, _v) in rows.items()}
    if pricing == "gross_receipt":
        out = {}
        for r, (n, v) in rows.items():
            vat = vat_from_gross(n + v, r)
            out[r] = (n + v - vat, vat)
        return out
    raise ValueError(f"pricing {pricing!r}: expected one of {PRICING_CONVENTIONS}")


def receipt_vat_by_rate(order: dict, pricing: str | None = None) -> dict[Any, tuple[Decimal, Decimal]]:
    """The receipt's (net, VAT) per rate. Without ``pricing`` it is inferred from the payload: the
    first convention (rows as they are, VAT from each rate's gross, VAT from each rate's net) whose
    totals equal the order's item totals (use ``SitooDataset.vat_by_rate`` for the store's own)."""
    rows = row_totals_by_rate(order)
    if pricing is not None:
        return by_rate_under(rows, pricing)
    net = Decimal(order.get("moneytotal_net", order.get("moneyfinal_net", "0")))
    vat = Decimal(order.get("moneytotal_vat", order.get("moneyfinal_vat", "0")))
    for conv in ("net_line", "gross_receipt", "net_receipt"):
        cand = by_rate_under(rows, conv)
        if (
            sum((n for n, _ in cand.values()), ZERO) == net
            and sum((v for _, v in cand.values()), ZERO) == vat
        ):
            return cand
    return by_rate_under(rows, "net_line")


def row_vat_by_rate(order: dict) -> dict[Any, Decimal]:
    return {r: v for r, (_n, v) in row_totals_by_rate(order).items()}


def is_pos(order: dict) -> bool:
    """A till's order: web orders have no register."""
    return order.get("registerid") is not None


def is_finalised(order: dict) -> bool:
    """A finalised POS receipt (what the pipeline posts): closed, paid, order type, from a register."""
    return (
        order["orderstateid"] == 10
        and order["paymentstateid"] == 20
        and order["ordertypeid"] == 10
        and is_pos(order)
    )


@dataclass
class _Line:
    product: Product
    qty: int
    rate: int
    price: Decimal  # unit price paid, in the store's price basis (VAT-inclusive or net)
    regular: Decimal  # unit price before a campaign or bonus cheque, same basis
    voucher: tuple[int, str, str] | None = None  # (voucherid, vouchercode, vouchername)
    bonus: str | None = None  # crm-bonuscheckid
    gc_number: str | None = None
    orig_itemid: int | None = None


def _unit_net(price: Decimal, rate: int, pricing: str) -> Decimal:
    return price - vat_from_gross(price, rate) if pricing.startswith("gross") else price


def _line_money(ln: _Line, pricing: str) -> tuple[Decimal, Decimal]:
    """(row net, row VAT) as the till of ``pricing`` stores them."""
    if pricing.startswith("net"):
        net = r2(ln.price * ln.qty)
        return net, vat_from_net(net, ln.rate)
    if pricing == "gross_line":
        gross = ln.price * ln.qty
        vat = vat_from_gross(gross, ln.rate)
        return gross - vat, vat
    unit_vat = vat_from_gross(ln.price, ln.rate)
    return (ln.price - unit_vat) * ln.qty, unit_vat * ln.qty


def _lines_by_rate(lines: list[_Line], pricing: str) -> dict[int, tuple[Decimal, Decimal]]:
    out: dict[int, tuple[Decimal, Decimal]] = {}
    for ln in lines:
        n, v = _line_money(ln, pricing)
        a, b = out.get(ln.rate, (ZERO, ZERO))
        out[ln.rate] = (a + n, b + v)
    return out


def _mismatch(lines: list[_Line], pricing: str) -> bool:
    """Does the receipt's VAT differ from the sum of its rows' VAT at some rate?"""
    rows = _lines_by_rate(lines, pricing)
    rec = by_rate_under(rows, pricing)
    return any(rows[r][1] != rec[r][1] for r in rows)


@dataclass
class SitooDataset:
    """Compact order index + lazy payload builder + mutable overlay for planted scenarios."""

    seed: int
    catalogue: Catalogue
    start: date
    days: int
    timezone: str
    idx: dict[str, np.ndarray]
    _overrides: dict[int, dict] = field(default_factory=dict, repr=False)
    _raw: dict[int, dict] = field(default_factory=dict, repr=False)
    _finalised_at: dict[int, int] = field(default_factory=dict, repr=False)
    version: int = 0

    def __post_init__(self) -> None:
        self.stores_by_id: dict[int, Store] = {s.storeid: s for s in self.catalogue.stores}
        self.store_by_warehouse = {s.warehouseid: s.storeid for s in self.catalogue.stores}
        self.store_by_registerkey = {s.registerkey: s.storeid for s in self.catalogue.stores}
        self.store_by_registerid = {s.registerid: s.storeid for s in self.catalogue.stores}
        known = [p for p in self.catalogue.sellable if p.in_erp and not p.erp_inactive]
        self._pool = known
        self._penny = [p for p in known if p.shelf_price == Decimal("0.99") and p.vat_rate == 20]
        self._unknown = [p for p in self.catalogue.sellable if not p.in_erp] or known[:1]
        self._tz = ZoneInfo(self.timezone)
        self._costs = {p.sku: p.cost for p in self.catalogue.products}
        self._cache_version = -1
        self._ledger_cache: tuple[list[dict], list[int], dict[tuple[int, str], int]] | None = None
        self._z_cache: tuple[int, list[dict]] | None = None  # (version, reports)

    # ------------------------------------------------------------------ index access
    def __len__(self) -> int:
        return len(self.idx["orderid"])

    @property
    def max_orderid(self) -> int:
        return int(self.idx["orderid"][-1]) if len(self) else ORDERID_BASE - 1

    def pos(self, orderid: int) -> int:
        p = int(orderid) - ORDERID_BASE
        if p < 0 or p >= len(self):
            raise KeyError(orderid)
        return p

    def row(self, orderid: int) -> dict[str, int]:
        """The compact index entry of one order as plain ints."""
        p = self.pos(orderid)
        return {c: int(self.idx[c][p]) for c in INDEX_COLUMNS}

    def __iter__(self):
        for p in range(len(self)):
            yield {c: int(self.idx[c][p]) for c in INDEX_COLUMNS}

    def iter_orders(self):
        for p in range(len(self)):
            yield self.order(ORDERID_BASE + p)

    @property
    def end_ts(self) -> int:
        """Backend time by which every generated order has arrived."""
        return int(self.idx["dateadded"].max()) if len(self) else 0

    def receipt_id(self, store: int, receiptno: int) -> str:
        return f"{self.stores_by_id[store].registerkey}{receiptno:07d}"

    def day_bounds(self, day: date) -> tuple[int, int]:
        """Local business day [start, end) in epoch seconds."""
        a = datetime.combine(day, time(0), self._tz)
        b = datetime.combine(day + timedelta(days=1), time(0), self._tz)
        return int(a.timestamp()), int(b.timestamp())

    def local_ts(self, day: date, hour: int, minute: int = 0) -> int:
        return int(datetime.combine(day, time(hour, minute), self._tz).timestamp())

    # ------------------------------------------------------------------ stock seed
    def initial_on_hand(self, store: int | str, sku: str) -> int:
        """Initial on-hand of ``sku`` in store (storeid or externalid); the ERP seeds the same."""
        sid = int(store[2:]) if isinstance(store, str) else int(store)
        return 10 + zlib.crc32(f"{self.seed}:{sid}:{sku}".encode()) % 51

    # ------------------------------------------------------------------ overlay
    def update_order(self, orderid: int, at: int | None = None, **changes: Any) -> dict:
        """Change fields of an order (e.g. ``orderstateid=10, paymentstateid=20, ordertypeid=10``).

        ``additionaldata`` given as a dict is merged. State ids also update the index. When the order
        becomes finalised its stock transaction is appended with ``datecreated = at`` (default: now-ish =
        the order's dateadded)."""
        p = self.pos(orderid)
        before = self.order(orderid)
        ov = self._overrides.setdefault(int(orderid), {})
        for k, v in changes.items():
            if k == "additionaldata" and isinstance(v, dict):
                ov.setdefault("additionaldata", {}).update(v)
            else:
                ov[k] = v
        for col in ("orderstateid", "paymentstateid", "ordertypeid"):
            if col in changes:
                self.idx[col][p] = int(changes[col])
        self.version += 1
        after = self.order(orderid)
        if not is_finalised(before) and is_finalised(after):
            ts = int(at) if at is not None else int(self.idx["dateadded"][p])
            self._finalised_at[int(orderid)] = ts
            if self._ledger_cache is not None:
                self._append_order_tx(after, ts)
        return after

    def add_order(
        self,
        store: int = 1,
        orderdate: int | None = None,
        dateadded: int | None = None,
        kind: str = "sale",
        flags: int = 0,
        tender: int = T_CARD,
        link: int = 0,
        payload: dict | None = None,
    ) -> int:
        """Append an order (new highest orderid, as a late arrival gets). ``kind`` names a generated
        kind ('sale', 'open', 'parked', 'return' with ``link`` = sale orderid, ...) or pass a full
        ``payload`` dict (its orderid is overwritten). Returns the orderid."""
        k = KIND_BY_NAME[kind]
        orderid = self.max_orderid + 1
        orderdate = int(orderdate if orderdate is not None else self.end_ts)
        dateadded = int(dateadded if dateadded is not None else orderdate + 5)
        st = STATES[k]
        if payload is not None:
            st = (
                payload.get("orderstateid", st[0]),
                payload.get("paymentstateid", st[1]),
                payload.get("ordertypeid", st[2]),
            )
        receiptno = int(self.idx["receiptno"][self.idx["store"] == store].max(initial=0)) + 1
        vals = {
            "orderid": orderid,
            "store": store,
            "orderdate": orderdate,
            "dateadded": dateadded,
            "kind": k,
            "flags": flags,
            "tender": tender,
            "link": link,
            "partner": 0,
            "receiptno": receiptno,
            "orderstateid": st[0],
            "paymentstateid": st[1],
            "ordertypeid": st[2],
        }
        for c in INDEX_COLUMNS:
            self.idx[c] = np.append(self.idx[c], np.array([vals[c]], dtype=self.idx[c].dtype))
        if payload is not None:
            self._raw[orderid] = {**payload, "orderid": orderid}
        self.version += 1
        if self._ledger_cache is not None:
            o = self.order(orderid)
            if is_finalised(o):
                self._append_order_tx(o, dateadded)
        return orderid

    # ------------------------------------------------------------------ payloads
    def order(self, orderid: int, logitems: bool = False) -> dict:
        """The order JSON exactly as the API returns it (a fresh dict)."""
        p = self.pos(orderid)
        o = copy.deepcopy(self._raw[int(orderid)]) if int(orderid) in self._raw else self._build(p)
        ov = self._overrides.get(int(orderid))
        if ov:
            for k, v in ov.items():
                if k == "additionaldata":
                    o["additionaldata"] = {**o.get("additionaldata", {}), **v}
                else:
                    o[k] = v
        if logitems:
            o["orderlogitems"] = [
                {
                    "datelog": int(self.idx["dateadded"][p]),
                    "orderlogtypeid": 0,
                    "strvalue": None,
                    "fvalue": None,
                }
            ]
        return o

    def store_of(self, order: dict) -> Store | None:
        """The store whose till rang the order up (None for a web order)."""
        registerid = order.get("registerid")
        sid = self.store_by_registerid.get(registerid) if registerid is not None else None
        return self.stores_by_id[sid] if sid is not None else None

    def vat_by_rate(self, order: dict) -> dict[Any, tuple[Decimal, Decimal]]:
        """The receipt's (net, VAT) per rate under its store's pricing convention."""
        store = self.store_of(order)
        return receipt_vat_by_rate(order, store.pricing if store else WEB_PRICING)

    def _rng(self, orderid: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + int(orderid))

    def _build(self, p: int) -> dict:
        kind = int(self.idx["kind"][p])
        if kind in (RETURN, EXCH_REFUND, RETURN_REVERSAL):
            return self._build_refund(p)
        if kind == EXCH_SALE:
            return self._build_exchange_pair(int(self.pos(int(self.idx["partner"][p]))))[1]
        if kind in WEB_KINDS:
            return self._build_web(p)
        return self._build_sale(p)

    def _store(self, p: int) -> Store:
        return self.stores_by_id[int(self.idx["store"][p])]

    def _line(self, prod: Product, store: Store, qty: int) -> _Line:
        price = prod.price_in(store)
        return _Line(prod, qty, prod.rate_in(store.country), price, price)

    def _sale_lines(self, p: int, rng: random.Random, store: Store) -> list[_Line]:
        flags = int(self.idx["flags"][p])
        lines: list[_Line] = []
        for _attempt in range(60):
            n = rng.choices((1, 2, 3, 4, 5, 6), weights=(30, 25, 18, 12, 8, 7))[0]
            prods = rng.sample(self._pool, min(n, len(self._pool)))
            if flags & F_UNKNOWN_SKU:
                prods[rng.randrange(len(prods))] = rng.choice(self._unknown)
            lines = []
            if flags & F_PENNY and self._penny:
                lines.append(self._line(rng.choice(self._penny), store, 3))  # 3 x 0.99
            for prod in prods:
                ln = self._line(prod, store, rng.choices((1, 2, 3), weights=(80, 15, 5))[0])
                if flags & F_CAMPAIGN and (not lines or rng.random() < 0.5):
                    pct = rng.choice((10, 20, 30))
                    ln.price = r2(ln.regular * (100 - pct) / 100)
                    ln.voucher = (VOUCHER_IDS[pct], f"CAMP{pct}", f"Campaign {pct}% off")
                lines.append(ln)
            # A penny basket must show the till's receipt rounding where the till rounds per receipt.
            if (
                not (flags & F_PENNY)
                or not store.pricing.endswith("receipt")
                or _mismatch(lines, store.pricing)
            ):
                break
        return lines

    def _header(self, p: int, rng: random.Random, store: Store | None) -> dict[str, Any]:
        """Every key of Sitoo's single-order example, in its order, with a POS receipt's values."""
        st = (
            int(self.idx["orderstateid"][p]),
            int(self.idx["paymentstateid"][p]),
            int(self.idx["ordertypeid"][p]),
        )
        o: dict[str, Any] = dict(_ORDER_TEMPLATE)
        o.update(
            orderid=int(self.idx["orderid"][p]),
            eshopid=1,
            externalid=None,
            creditorderid=None,
            checkouttypeid=0,
            deliverytypeid=0,
            checkoutmethodid=0,
            checkoutmethodsubid=0,
            orderdate=int(self.idx["orderdate"][p]),
            orderstateid=st[0],
            paymentstateid=st[1],
            ordertypeid=st[2],
            userid_staff=None,
            registerid=None,
            warehouseid=None,
            datereserved=None,
            currencycode=store.currency if store else CURRENCY,
            additionaldata={},
            orderitems=[],
            payments=[],
        )
        if store is not None:
            staff = rng.randint(1, 6)
            o.update(
                userid_staff=f"{{5AFF{store.storeid:04X}-0000-4000-8000-{staff:012X}}}",
                registerid=store.registerid,
                warehouseid=store.warehouseid,
            )
            o["additionaldata"] = {
                "pos-receiptid": self.receipt_id(store.storeid, int(self.idx["receiptno"][p])),
                "pos-timezone": store.timezone,
                "pos-staff-externalid": f"STAFF{staff}",
                "store-externalid": store.externalid,
                "store-externalgroupid": store.country,
                "store-name": store.name,
            }
        return o

    def _rows(self, lines: list[_Line], pricing: str) -> list[dict]:
        rows = []
        for i, ln in enumerate(lines):
            prod = ln.product
            ad = {"product-group-name": "Gift cards" if prod.group_type == 30 else f"VAT {ln.rate}%"}
            if ln.gc_number:
                ad["giftcard-cardnumber"] = ln.gc_number
            if ln.bonus:
                ad["crm-bonuscheckid"] = ln.bonus
            if ln.orig_itemid is not None:
                ad["pos-originalsales-orderitemid"] = str(ln.orig_itemid)
                if ln.qty < 0:
                    ad["reasoncode-return"] = "RC-RETURN"
            unit = _unit_net(ln.price, ln.rate, pricing)
            orig = _unit_net(ln.regular, ln.rate, pricing)
            net, vat = _line_money(ln, pricing)
            discounted = ln.price != ln.regular
            rows.append(
                {
                    "orderitemid": i,
                    "orderitemtype": 10,
                    "productid": prod.productid,
                    "productname": prod.title,
                    "sku": prod.sku,
                    "productattributes": "",
                    "externalinput": "",
                    "externalinputtitle": "",
                    "unitlabel": "",
                    "quantity": ln.qty,
                    "decimalunitquantity": None,
                    "moneynetpriceperunit": money(unit),
                    "moneypriceorg": "0.00",
                    "vatvalue": ln.rate,
                    "deliveryinfo": "",
                    "moneyitemtotal_net": money(net),
                    "moneyitemtotal_vat": money(vat),
                    "voucherid": ln.voucher[0] if ln.voucher else 0,
                    "vouchercode": ln.voucher[1] if ln.voucher else "",
                    "vouchername": ln.voucher[2] if ln.voucher else "",
                    "moneyoriginalprice": money(orig),
                    "moneydiscountedprice": money(unit) if discounted else "0.00",
                    "moneydiscount": money(orig - unit) if discounted else "0.00",
                    "salestaxes": [],
                    "additionaldata": ad,
                    "decimalquantitytotal": dec3(ln.qty),
                    "moneynetpriceperquantity": money(unit),
                }
            )
        return rows

    @staticmethod
    def _totals(o: dict, lines: list[_Line], pricing: str) -> Decimal:
        """Set the item and final money totals on ``o``; returns net + VAT (before round-off)."""
        rec = by_rate_under(_lines_by_rate(lines, pricing), pricing)
        net = sum((n for n, _ in rec.values()), ZERO)
        vat = sum((v for _, v in rec.values()), ZERO)
        o["moneytotal_net"], o["moneytotal_vat"] = money(net), money(vat)
        o["moneyfinal_net"], o["moneyfinal_vat"] = money(net), money(vat)
        return net + vat

    @staticmethod
    def _bonus_cheque(rng: random.Random, lines: list[_Line], store: Store, cheque_id: str) -> None:
        """Apply a bonus cheque (5 or 10; 50 or 100 SEK) to the dearest plain row, per unit, at most
        half its price: Sitoo keeps it in the row's discount fields with ``crm-bonuscheckid``."""
        plain = [ln for ln in lines if ln.voucher is None and ln.product.group_type == 10 and ln.qty > 0]
        if not plain:
            return
        ln = max(plain, key=lambda x: (x.price * x.qty, -lines.index(x)))
        value = Decimal(rng.choice((5, 10))) * (10 if store.country == "SE" else 1)
        if not store.prices_include_vat:
            value = value * 100 / (100 + ln.rate)
        per_unit = min((value / ln.qty).quantize(Q2, ROUND_FLOOR), (ln.price / 2).quantize(Q2, ROUND_FLOOR))
        if per_unit > 0:
            ln.price -= per_unit
            ln.bonus = cheque_id

    def _cash_roundoff(self, store: Store, gross: Decimal) -> Decimal:
        step = CASH_ROUNDING[store.country]
        return (gross / step).quantize(Decimal(1), ROUND_HALF_UP) * step - gross

    def _card(self, rng: random.Random, amount: Decimal, extra: dict | None = None) -> dict:
        issuer = rng.choice(("Visa", "Mastercard", "Amex"))
        ref = f"{rng.getrandbits(40):012d} {rng.getrandbits(30):012d}"
        return {
            "name": "Card",
            "moneyamount": money(amount),
            "externalid": f"{rng.getrandbits(20):06d}",
            "reftype": "verifonelpp",
            "refid": ref,
            "cardissuer": issuer,
            "additionaldata": {
                "payment-method": "card",
                "verifone-lpp-reference-number": ref,
                "verifone-card-masked-pan": f"************{rng.randint(0, 9999):04d}",
                **(extra or {}),
            },
        }

    @staticmethod
    def _simple(name: str, method: str, amount: Decimal, extra: dict | None = None) -> dict:
        return {
            "name": name,
            "moneyamount": money(amount),
            "externalid": "",
            "reftype": "",
            "refid": "",
            "cardissuer": "",
            "additionaldata": {"payment-method": method, **(extra or {})},
        }

    def _build_sale(self, p: int, exchange_credit: Decimal | None = None) -> dict:
        orderid = int(self.idx["orderid"][p])
        rng = self._rng(orderid)
        store = self._store(p)
        o = self._header(p, rng, store)
        flags = int(self.idx["flags"][p])
        tender = int(self.idx["tender"][p]) if exchange_credit is None else T_CARD
        lines = self._sale_lines(p, rng, store)
        if flags & F_GIFTCARD_SOLD:
            gc = self.catalogue.gift_card
            value = Decimal(rng.choice((10, 25, 50))) * (10 if store.country == "SE" else 1)
            lines.append(_Line(gc, 1, 0, value, value, gc_number=f"GC{self.seed % 1000:03d}{orderid:010d}"))
        if flags & F_LOYALTY:
            self._bonus_cheque(rng, lines, store, f"BC{orderid:09d}")
            o["additionaldata"]["crm-membernumber"] = f"M{rng.randint(1, 999_999):07d}"
            o["additionaldata"]["crm-customerid"] = f"{rng.getrandbits(48):012x}"
        gross = self._totals(o, lines, store.pricing)
        roundoff = self._cash_roundoff(store, gross) if tender == T_CASH else ZERO
        total = gross + roundoff
        o["moneytotal_gross_roundoff"] = money(roundoff)
        o["moneytotal_gross_all"] = money(total)
        o["orderitems"] = self._rows(lines, store.pricing)
        pays: list[dict] = []
        if exchange_credit is not None:
            v = min(exchange_credit, total)
            pays.append(self._simple("Exchange", "exchange", v, {"virtual-payment": "true"}))
            if total > v:
                pays.append(self._card(rng, total - v))
        elif tender == T_CASH:
            pays.append(self._simple("Cash", "cash", total))
        elif tender == T_SPLIT:
            cash = min(Decimal(rng.choice((5, 10, 20))), (total / 2).quantize(Decimal(1), ROUND_HALF_UP))
            cash = cash if 0 < cash < total else r2(total / 2)
            pays += [self._card(rng, total - cash), self._simple("Cash", "cash", cash)]
        elif tender == T_GIFTCARD:
            num = f"GC{rng.getrandbits(32):010d}"
            g = min(total, Decimal(rng.choice((10, 25, 50))) * (10 if store.country == "SE" else 1))
            pays.append(
                self._simple(
                    "Gift Card",
                    "giftcard",
                    g,
                    {"giftcard-cardnumber": num, "giftcard-cardnumber-display": "******" + num[-4:]},
                )
            )
            if total > g:
                pays.append(self._card(rng, total - g))
        elif tender == T_KLARNA:
            pays.append(
                self._simple("Klarna", "klarna", total, {"klarna-klarnareference": f"K{orderid:012d}"})
            )
        elif tender == T_FOREIGN:
            pays.append(self._simple(UNMAPPED_TENDER, "foreigncurrency", total))
        else:
            pays.append(self._card(rng, total))
        o["payments"] = pays
        o["checkouttypename"] = f"Sitoo POS - {pays[0]['name']}"
        return o

    @staticmethod
    def _paid_unit(row: dict, store: Store) -> Decimal:
        """The unit price the customer paid on ``row``, in ``store``'s price basis."""
        net_unit = Decimal(row["moneynetpriceperunit"])
        if not store.prices_include_vat:
            return net_unit
        q = abs(int(row["quantity"]))
        gross = abs(Decimal(row["moneyitemtotal_net"]) + Decimal(row["moneyitemtotal_vat"]))
        unit = gross / q
        return unit if unit == r2(unit) else r2(net_unit * (100 + Decimal(str(row["vatvalue"]))) / 100)

    def _build_refund(self, p: int, exchange_debit: Decimal | None = None) -> dict:
        """A return (negative rows) of a sale, or the reversal (positive rows) of a return."""
        kind = int(self.idx["kind"][p])
        if kind == EXCH_REFUND and exchange_debit is None:
            return self._build_exchange_pair(p)[0]
        orderid = int(self.idx["orderid"][p])
        rng = self._rng(orderid)
        store = self._store(p)
        o = self._header(p, rng, store)
        orig_id = int(self.idx["link"][p])
        orig = self.order(orig_id)
        sign = 1 if kind == RETURN_REVERSAL else -1
        by_sku = self.catalogue.product_by_sku()
        cands = [r for r in orig["orderitems"] if r["sku"] != GIFT_CARD_SKU and -sign * r["quantity"] > 0]
        k = 1 if kind == EXCH_REFUND else rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        chosen = sorted(rng.sample(cands, min(k, len(cands))), key=lambda r: r["orderitemid"])
        lines = []
        for r in chosen:
            price = self._paid_unit(r, store)
            lines.append(
                _Line(
                    by_sku[r["sku"]],
                    sign * rng.randint(1, abs(r["quantity"])),  # partial returns: some units of some rows
                    r["vatvalue"],
                    price,
                    price,
                    orig_itemid=r["orderitemid"],
                )
            )
        gross = self._totals(o, lines, store.pricing)
        orig_tender = orig["payments"][0]["name"] if orig["payments"] else "Card"
        roundoff = ZERO
        if exchange_debit is None and orig_tender == "Cash":
            roundoff = self._cash_roundoff(store, gross)
        total = gross + roundoff
        o["creditorderid"] = orig_id
        o["moneytotal_gross_roundoff"] = money(roundoff)
        o["moneytotal_gross_all"] = money(total)
        o["orderitems"] = self._rows(lines, store.pricing)
        ad = o["additionaldata"]
        ad["pos-originalsales-orderid"] = str(orig_id)
        ad["refundreasoncode-reasoncode"] = rng.choice(("RC-DAMAGED", "RC-CHANGEDMIND", "RC-WRONGSIZE"))
        link = {"pos-originalsales-payment-index": "0"}
        if exchange_debit is not None:
            v = min(exchange_debit, -total)
            pays = [self._simple("Exchange", "exchange", -v, {"virtual-payment": "true"})]
            if -total > v:
                pays.append(self._card(rng, total + v, link))
        elif orig_tender in ("Cash", "Klarna"):
            pays = [self._simple(orig_tender, orig_tender.lower(), total, link)]
        else:
            pays = [self._card(rng, total, link)]
        o["payments"] = pays
        o["checkouttypename"] = f"Sitoo POS - {pays[0]['name']}"
        return o

    def _build_exchange_pair(self, p_refund: int) -> tuple[dict, dict]:
        p_sale = self.pos(int(self.idx["partner"][p_refund]))
        # Totals first (payments depend on the other side), then the real builds.
        probe_ref = self._build_refund(p_refund, exchange_debit=Decimal("0"))
        probe_sale = self._build_sale(p_sale, exchange_credit=Decimal("0"))
        credit = -Decimal(probe_ref["moneytotal_gross_all"])
        sale_total = Decimal(probe_sale["moneytotal_gross_all"])
        moved = min(credit, sale_total)
        refund = self._build_refund(p_refund, exchange_debit=moved)
        sale = self._build_sale(p_sale, exchange_credit=moved)
        refund["additionaldata"]["pos-refundsales-orderid"] = str(sale["orderid"])
        sale["additionaldata"]["pos-refund-orderid"] = str(refund["orderid"])
        sale["additionaldata"]["pos-refund-receiptid"] = refund["additionaldata"]["pos-receiptid"]
        return refund, sale

    def _build_web(self, p: int) -> dict:
        """A web-shop order: no register, no store warehouse, a customer, a delivery fee, Klarna."""
        orderid = int(self.idx["orderid"][p])
        rng = self._rng(orderid)
        stores = self.catalogue.stores
        store = self.stores_by_id.get(int(self.idx["store"][p])) or stores[orderid % len(stores)]
        web = replace(store, pricing=WEB_PRICING)
        o = self._header(p, rng, None)
        o["currencycode"] = store.currency
        lines = [
            self._line(prod, web, rng.choices((1, 2), weights=(85, 15))[0])
            for prod in rng.sample(self._pool, rng.randint(1, 3))
        ]
        items = self._totals(o, lines, WEB_PRICING)
        fee = Decimal("3.95") * (10 if store.country == "SE" else 1)
        fee_rate = 25 if store.country == "SE" else 20
        fee_vat = vat_from_gross(fee, fee_rate)
        o["moneydelivery_net"], o["moneydelivery_vat"] = money(fee - fee_vat), money(fee_vat)
        o["moneytotal_gross_delivery"] = money(fee)
        o["moneyfinal_net"] = money(Decimal(o["moneytotal_net"]) + fee - fee_vat)
        o["moneyfinal_vat"] = money(Decimal(o["moneytotal_vat"]) + fee_vat)
        o["moneytotal_gross_all"] = money(items + fee)
        first, last = rng.choice(("Alex", "Sam", "Jo", "Kim")), rng.choice(("Smith", "Berg", "Jones"))
        o.update(
            email=f"{first.lower()}.{last.lower()}{orderid}@example.com",
            namefirst=first,
            namelast=last,
            delivery_address=f"{rng.randint(1, 99)} Station Road",
            delivery_zip="AB1 2CD" if store.country == "GB" else "111 22",
            delivery_city="Leeds" if store.country == "GB" else "Stockholm",
            delivery_countryid=store.country,
            invoice_countryid=store.country,
            checkouttypename="Klarna Checkout",
            deliverytypename="Standard delivery",
        )
        o["orderitems"] = self._rows(lines, WEB_PRICING)
        if o["paymentstateid"] == 20:
            o["payments"] = [
                self._simple(
                    "Klarna", "klarna", items + fee, {"klarna-orderid": f"{rng.getrandbits(64):016x}"}
                )
            ]
        else:  # reserved at checkout, captured on delivery
            o["datereserved"] = o["orderdate"] + 7 * 86400
        return o

    # ------------------------------------------------------------------ filtering helpers
    def visible_count(self, now: int) -> int:
        return int((self.idx["dateadded"] <= now).sum())

    # ------------------------------------------------------------------ summary
    @property
    def expected(self) -> dict[str, int]:
        """Scenario counts from the index (``sales_*`` counts are over generated sales)."""
        kind, flags, tender = self.idx["kind"], self.idx["flags"], self.idx["tender"]
        sales = kind == SALE
        web = np.isin(kind, WEB_KINDS)
        fin = (
            (self.idx["orderstateid"] == 10)
            & (self.idx["paymentstateid"] == 20)
            & (self.idx["ordertypeid"] == 10)
            & ~web
        )
        out = {f"kind_{n}": int((kind == i).sum()) for i, n in enumerate(KIND_NAMES)}
        out.update(
            total=len(self),
            finalised=int(fin.sum()),
            not_finalised=int((~fin).sum()),
            offline=int((self.idx["dateadded"] - self.idx["orderdate"] > 3600).sum()),
            exchanges=int((kind == EXCH_REFUND).sum()),
            returns_cross_store=int(((kind == RETURN) & ((flags & F_CROSS_STORE) > 0)).sum()),
            sales_unknown_sku=int((sales & ((flags & F_UNKNOWN_SKU) > 0)).sum()),
            sales_penny_rounding=int((sales & ((flags & F_PENNY) > 0)).sum()),
            sales_loyalty=int((sales & ((flags & F_LOYALTY) > 0)).sum()),
            sales_campaign=int((sales & ((flags & F_CAMPAIGN) > 0)).sum()),
            sales_giftcard_sold=int((sales & ((flags & F_GIFTCARD_SOLD) > 0)).sum()),
            sales_cash=int((sales & (tender == T_CASH)).sum()),
            sales_split_tender=int((sales & (tender == T_SPLIT)).sum()),
            sales_giftcard_redeemed=int((sales & (tender == T_GIFTCARD)).sum()),
            sales_klarna=int((sales & (tender == T_KLARNA)).sum()),
            sales_foreign_tender=int((sales & (tender == T_FOREIGN)).sum()),
        )
        return out

    # ------------------------------------------------------------------ stores / warehouses
    def warehouses(self) -> list[dict]:
        return [
            {
                "warehouseid": s.warehouseid,
                "warehousetype": 10,
                "usetype": 10,
                "storeid": s.storeid,
                "sellable": True,
                "name": f"{s.name} stock",
                "externalid": f"WH-{s.externalid}",
            }
            for s in self.catalogue.stores
        ]

    def stores(self) -> list[dict]:
        return [
            {
                "storeid": s.storeid,
                "eshopid": s.eshopid,
                "storetype": 10,
                "name": s.name,
                "externalid": s.externalid,
                "externalgroupid": s.country,
                "countryid": s.country,
                "city": "London" if s.country == "GB" else "Stockholm",
                "address": f"{s.storeid} High Street",
                "zip": f"EC{s.storeid} 1AA" if s.country == "GB" else "111 22",
                "usetype_movein": 10,
                "usetype_moveout": 20,
                "tags": [],
            }
            for s in self.catalogue.stores
        ]

    def products(self) -> list[dict]:
        """Products as the Default price list shows them (VAT-inclusive UK shelf prices)."""
        out = []
        modified = self.local_ts(self.start - timedelta(days=30), 12)
        for prod in [*self.catalogue.products, self.catalogue.gift_card]:
            gross = prod.net_price if prod.group_type == 30 else prod.shelf_price
            out.append(
                {
                    "productid": prod.productid,
                    "sku": prod.sku,
                    "title": prod.title,
                    "active": True,
                    "activepos": True,
                    "vatid": GIFT_CARD_VATID if prod.group_type == 30 else VATID_BY_RATE[prod.vat_rate],
                    "vatvalue": prod.vat_rate,
                    "productgrouptype": prod.group_type,
                    "moneyprice": money(gross),
                    "moneypriceorg": money(gross),
                    "moneyfinalprice": money(gross),
                    "moneypricein": money(prod.cost),
                    "stockcountenable": prod.group_type == 10,
                    "stockallowbackorder": True,
                    "manufacturerid": None,
                    "barcode": f"50{prod.productid:011d}",
                    "variantparentid": None,
                    "datecreated": modified,
                    "datemodified": modified,
                }
            )
        return out

    # ------------------------------------------------------------------ stock ledger
    def _order_tx_items(self, o: dict) -> tuple[int, list[tuple[str, int]]]:
        items = [
            (r["sku"], -r["quantity"]) for r in o["orderitems"] if r["sku"] != GIFT_CARD_SKU and r["quantity"]
        ]
        ttype = 40 if any(q > 0 for _, q in items) else 30
        return ttype, items

    def _pos_finalised(self) -> np.ndarray:
        return np.flatnonzero(
            (self.idx["orderstateid"] == 10)
            & (self.idx["paymentstateid"] == 20)
            & (self.idx["ordertypeid"] == 10)
            & ~np.isin(self.idx["kind"], WEB_KINDS)
        )

    def _ledger(self) -> tuple[list[dict], list[int], dict[tuple[int, str], int]]:
        """All warehouse transactions (ascending id and datecreated) with running levels.

        Stock never goes below zero: the 07:00 Move In tops up every SKU the next 24 hours will sell
        beyond its level, and a Move Out or a count never takes away what is sold before the next
        Move In. Only orders finalised or added after this was built (planted cases) can overdraw."""
        if self._ledger_cache is not None:
            return self._ledger_cache
        events: list[tuple[int, int, int, Any]] = []  # (datecreated, seq, warehouseid, spec)
        outflow: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
        for p in self._pos_finalised().tolist():
            oid = ORDERID_BASE + p
            o = self.order(oid)
            if o.get("warehouseid") is None:
                continue
            ts = self._finalised_at.get(oid, int(self.idx["dateadded"][p]))
            ttype, items = self._order_tx_items(o)
            if not items:
                continue
            events.append((ts, oid, o["warehouseid"], ("order", o, ttype, items)))
            for sku, q in items:
                if q < 0:
                    outflow[(o["warehouseid"], sku)].append((ts, -q))
        times: dict[tuple[int, str], list[int]] = {}
        cum: dict[tuple[int, str], list[int]] = {}
        for key, evs in outflow.items():
            evs.sort()
            times[key] = [t for t, _ in evs]
            acc, c = 0, []
            for _, q in evs:
                acc += q
                c.append(acc)
            cum[key] = c

        def demand(key: tuple[int, str], t0: int, t1: int) -> int:
            ts = times.get(key)
            if not ts:
                return 0
            a, b = bisect.bisect_left(ts, t0), bisect.bisect_left(ts, t1)
            c = cum[key]
            return (c[b - 1] if b else 0) - (c[a - 1] if a else 0)

        skus_by_wid: dict[int, list[str]] = defaultdict(list)
        for wid, sku in times:
            skus_by_wid[wid].append(sku)
        far = 2**62
        for s in self.catalogue.stores:
            move_ins = [self.local_ts_in(s, self.start + timedelta(days=d), 7) for d in range(self.days)]
            for d in range(self.days):
                day = self.start + timedelta(days=d)
                nxt = move_ins[d + 1] if d + 1 < self.days else far
                rng = random.Random(f"stock:{self.seed}:{s.storeid}:{d}")
                skus = [p.sku for p in rng.sample(self._pool, rng.randint(3, 6))]
                events.append(
                    (move_ins[d], 0, s.warehouseid, ("in", [(k, rng.randint(6, 24)) for k in skus], nxt))
                )
                if rng.random() < 0.4:
                    skus = [p.sku for p in rng.sample(self._pool, rng.randint(1, 3))]
                    spec = ("out", [(k, -rng.randint(1, 4)) for k in skus], nxt)
                    events.append((self.local_ts_in(s, day, 18), 0, s.warehouseid, spec))
                if rng.random() < 0.3:
                    skus = [p.sku for p in rng.sample(self._pool, rng.randint(2, 4))]
                    spec = ("count", [(k, rng.randint(-3, 1)) for k in skus], nxt)
                    events.append((self.local_ts_in(s, day, 20, 30), 0, s.warehouseid, spec))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        self._ledger_cache = ([], [], {})
        for ts, _seq, wid, spec in events:
            if spec[0] == "order":
                _, o, ttype, items = spec
                self._append_tx(wid, ts, ttype, items, orderdeliveryid=o["orderid"] * 10 + 1, description="")
                continue
            kind, planned, nxt = spec
            moves: dict[str, int] = {}
            if kind == "in":
                moves = dict(planned)
                for sku in skus_by_wid.get(wid, []):
                    short = demand((wid, sku), ts, nxt) - self._level(wid, sku)
                    if short > 0:
                        moves[sku] = max(moves.get(sku, 0), short + 6)
                self._append_tx(wid, ts, 10, sorted(moves.items()))
            elif kind == "out":
                for sku, q in planned:
                    spare = self._level(wid, sku) - demand((wid, sku), ts, nxt)
                    q = max(q, -spare)
                    if q < 0:
                        moves[sku] = q
                if moves:
                    self._append_tx(wid, ts, 20, list(moves.items()))
            else:  # a count: the counted level, never below what is sold before the next Move In
                for sku, err in planned:
                    before = self._level(wid, sku)
                    after = max(before + err, demand((wid, sku), ts, nxt), 0)
                    moves[sku] = after - before
                self._append_tx(wid, ts, 50, list(moves.items()))
        return self._ledger_cache

    def _level(self, wid: int, sku: str) -> int:
        assert self._ledger_cache is not None  # _ledger() sets it before it appends
        levels = self._ledger_cache[2]
        key = (wid, sku)
        if key not in levels:
            levels[key] = self.initial_on_hand(self.store_by_warehouse[wid], sku)
        return levels[key]

    def _append_order_tx(self, o: dict, ts: int) -> None:
        ttype, items = self._order_tx_items(o)
        if items and o.get("warehouseid") is not None:
            self._append_tx(
                o["warehouseid"], ts, ttype, items, orderdeliveryid=o["orderid"] * 10 + 1, description=""
            )

    def _append_tx(
        self,
        wid: int,
        ts: int,
        ttype: int,
        items: list[tuple[str, int]],
        orderdeliveryid: int | None = None,
        description: str | None = None,
        counted: bool = False,
    ) -> None:
        """Append one transaction; ``items`` are (sku, change), or (sku, count error) if ``counted``."""
        assert self._ledger_cache is not None  # _ledger() sets it before it appends
        txs, times, levels = self._ledger_cache
        txid = len(txs) + 1
        costs = self._costs
        logs = []
        for sku, q in items:
            before = self._level(wid, sku)
            delta = q if not counted else max(0, before + q) - before
            levels[(wid, sku)] = after = before + delta
            cost = costs.get(sku, ZERO)
            logs.append(
                {
                    "decimalquantity": dec3(delta),
                    "decimaltotal": dec3(after),
                    "moneypricein": money(cost) if ttype == 10 else "0.00",
                    "moneytotal": money(cost * after),
                    "moneyvalue": money(cost * delta),
                    "sku": sku,
                }
            )
        names = {10: "Move In", 20: "Move Out", 30: "", 40: "", 50: "Stocktaking has been completed!"}
        txs.append(
            {
                "warehousetransactionid": txid,
                "warehouseid": wid,
                "datecreated": int(ts),
                "transactiontype": ttype,
                "description": names[ttype] if description is None else description,
                "orderdeliveryid": orderdeliveryid,
                "shipmentid": None,
                "externalid": None if orderdeliveryid else f"SBX-TX-{txid}",
                "reasoncode": None,
                "items": logs,
            }
        )
        times.append(int(ts))

    def warehouse_transactions(self, now: int | None = None) -> list[dict]:
        """All transactions with ``datecreated <= now`` (ascending id)."""
        txs = self._ledger()[0]
        return [t for t in txs if now is None or t["datecreated"] <= now]

    def warehouse_items(self, warehouseid: int, now: int | None = None) -> list[dict]:
        """Stock per SKU at ``now`` in the shape of Sitoo's example (no ``warehouseid``: it is in the URL)."""
        store = self.store_by_warehouse[warehouseid]
        base_ts = self.local_ts(self.start - timedelta(days=1), 12)
        levels: dict[str, Decimal] = {}
        modified: dict[str, int] = {}
        counted: dict[str, int] = {}
        for t in self.warehouse_transactions(now):
            if t["warehouseid"] != warehouseid:
                continue
            for it in t["items"]:
                levels[it["sku"]] = Decimal(it["decimaltotal"])
                modified[it["sku"]] = t["datecreated"]
                if t["transactiontype"] == 50:
                    counted[it["sku"]] = t["datecreated"]
        out = []
        for prod in self.catalogue.products:
            lvl = levels.get(prod.sku, Decimal(self.initial_on_hand(store, prod.sku)))
            out.append(
                {
                    "warehouseitemid": warehouseid * 1_000_000 + prod.productid,
                    "sku": prod.sku,
                    "binlocation": "",
                    "decimalthreshold": "5.000",
                    "decimaltotal": dec3(lvl),
                    "moneytotal": money(prod.cost * lvl),
                    "datelastmodified": modified.get(prod.sku, base_ts),
                    "datelaststocktaking": counted.get(prod.sku),
                    "decimalreserved": "0.000",
                    "decimalavailable": dec3(lvl),
                }
            )
        return out

    # ------------------------------------------------------------------ Z-reports
    def z_business_day(self, z: dict) -> date:
        """The business day a Z-report closes: its close time in the store's timezone."""
        store = self.stores_by_id[self.store_by_registerid[z["registerid"]]]
        return datetime.fromtimestamp(z["datecreated"], ZoneInfo(store.timezone)).date()

    def z_reports(self) -> list[dict]:
        """One Z-report per register per business day (ascending dateadded; cached per version)."""
        if self._z_cache is not None and self._z_cache[0] == self.version:
            return self._z_cache[1]
        fin = self._pos_finalised()
        reports = []
        for s in self.catalogue.stores:
            tz = ZoneInfo(s.timezone)
            starts = [
                int(datetime.combine(self.start + timedelta(days=d), time(0), tz).timestamp())
                for d in range(self.days + 1)
            ]
            mine = fin[self.idx["store"][fin] == s.storeid]
            by_day: dict[int, list[int]] = {}
            for p in mine.tolist():
                d = bisect.bisect_right(starts, int(self.idx["orderdate"][p])) - 1
                if 0 <= d < self.days:
                    by_day.setdefault(d, []).append(ORDERID_BASE + p)
            for d in range(self.days):
                orders = [self.order(oid) for oid in by_day.get(d, [])]
                reports.append(self._z_report(s, self.start + timedelta(days=d), d + 1, orders))
        reports.sort(key=lambda z: (z["dateadded"], z["registerid"]))
        self._z_cache = (self.version, reports)
        return reports

    def _z_report(self, s: Store, day: date, number: int, orders: list[dict]) -> dict:
        def agg() -> dict:
            return {"net": ZERO, "gross": ZERO, "n": 0, "items": 0, "vat": {}, "pay": {}, "disc": {}}

        sales, refunds = agg(), agg()
        roundoff = ZERO
        giftcards = 0
        for o in orders:
            total = Decimal(o["moneytotal_gross_all"])
            a = refunds if total < 0 else sales
            sign = -1 if total < 0 else 1
            a["n"] += 1
            a["items"] += sum(abs(r["quantity"]) for r in o["orderitems"])
            roundoff += Decimal(o["moneytotal_gross_roundoff"])
            for v, (n, vat) in receipt_vat_by_rate(o, s.pricing).items():
                g = a["vat"].setdefault(v, [ZERO, ZERO])
                g[0] += sign * n
                g[1] += sign * vat
                a["net"] += sign * n
                a["gross"] += sign * (n + vat)
            for pay in o["payments"]:
                a["pay"][pay["name"]] = a["pay"].get(pay["name"], ZERO) + sign * Decimal(pay["moneyamount"])
            for r in o["orderitems"]:
                if r["sku"] == GIFT_CARD_SKU and r["quantity"] > 0:
                    giftcards += r["quantity"]
                if Decimal(r["moneydiscount"]):
                    net = sign * Decimal(r["moneydiscount"]) * abs(r["quantity"])
                    dd = a["disc"].setdefault(r["vouchercode"], [ZERO, ZERO])
                    dd[0] += net
                    dd[1] += vat_from_net(net, r["vatvalue"])

        def vatgroups(a: dict) -> list[dict]:
            return [
                {
                    "vatvalue": v,
                    "moneytotal": money(n + t),
                    "moneytotalnet": money(n),
                    "moneytotalvat": money(t),
                }
                for v, (n, t) in sorted(a["vat"].items())
            ]

        def payments(a: dict) -> list[dict]:
            return [
                {"name": k, "moneytotal": money(v), "subpayments": []} for k, v in sorted(a["pay"].items())
            ]

        def discounts(a: dict) -> list[dict]:
            return [
                {
                    "vouchercode": k,
                    "moneytotal": money(n + t),
                    "moneytotalnet": money(n),
                    "moneytotalvat": money(t),
                }
                for k, (n, t) in sorted(a["disc"].items())
            ]

        subtotal = sales["gross"] - refunds["gross"]
        opened, closed = self.local_ts_in(s, day, 8, 30), self.local_ts_in(s, day, 21, 30)
        cash = sales["pay"].get("Cash", ZERO) - refunds["pay"].get("Cash", ZERO)
        return {
            "zreportid": number,
            "registerid": s.registerid,
            "manufacturerid": f"SITOO{s.registerid.strip('{}').replace('-', '')}",
            "registerkey": s.registerkey,
            "registernumber": 1,
            "datecreated": closed,
            "dateopened": opened,
            "dateadded": closed + 60,
            "eshopid": s.eshopid,
            "store_id": s.externalid,
            "store_name": s.name,
            "company": "Sandbox Retail Ltd" if s.country == "GB" else "Sandbox Retail AB",
            "companyid": "GB000000000" if s.country == "GB" else "556677-8899",
            "address": f"{s.storeid} High Street",
            "address2": "",
            "address3": "",
            "currencycode": s.currency,
            "staff": "Manager",
            "staffuserid": f"{{5AFF{s.storeid:04X}-0000-4000-8000-{1:012X}}}",
            "comment": "",
            "moneysalestotal": money(sales["gross"]),
            "moneysalestotalnet": money(sales["net"]),
            "numsales": sales["n"],
            "numsalesitems": sales["items"],
            "vatgroupssales": vatgroups(sales),
            "productgroupssales": [],
            "moneyrefundtotal": money(refunds["gross"]),
            "moneyrefundtotalnet": money(refunds["net"]),
            "numrefund": refunds["n"],
            "numrefunditems": refunds["items"],
            "vatgroupsrefund": vatgroups(refunds),
            "productgroupsrefund": [],
            "moneyroundoff": money(roundoff),
            "salestaxessales": [],
            "salestaxesrefund": [],
            "moneysummarysales": money(sales["gross"]),
            "moneysummaryrefund": money(refunds["gross"]),
            "moneysummarysubtotal": money(subtotal),
            "moneysummarysalestax": "0.00",
            "moneysummaryroundoff": money(roundoff),
            "moneysummarytotal": money(subtotal + roundoff),
            "paymentssales": payments(sales),
            "paymentsrefund": payments(refunds),
            "discountssales": discounts(sales),
            "discountsrefund": discounts(refunds),
            "moneycash_in": "200.00",
            "moneycash_salesrefunds": money(cash),
            "moneycash_petty": "0.00",
            "moneycash_bank": money(-cash),
            "moneycash_expected": money(Decimal(200) + cash),
            "moneycash_counted": money(Decimal(200) + cash),
            "moneycash_diff": "0.00",
            "moneycash_bankfinal": money(cash),
            "moneycash_out": "200.00",
            "moneydiscount": money(sum((n + t for n, t in sales["disc"].values()), ZERO)),
            "numsalestypeproduct": sales["items"] - giftcards,
            "numsalestypeservice": 0,
            "numsalestypegiftcard": giftcards,
            "numreceipts": len(orders),
            "numopendrawer": 0,
            "numpractice": 0,
            "moneypractice": "0.00",
            "moneygrandtotalsales": money(sales["gross"]),
            "moneygrandtotalrefund": money(refunds["gross"]),
            "moneygrandtotalnet": money(subtotal),
        }

    def local_ts_in(self, s: Store, day: date, hour: int, minute: int = 0) -> int:
        return int(datetime.combine(day, time(hour, minute), ZoneInfo(s.timezone)).timestamp())


def _epoch_grid(cat: Catalogue, start: date, days: int) -> np.ndarray:
    """Opening time (epoch) per (store, day) in each store's timezone."""
    out = np.zeros((len(cat.stores), days), dtype=np.int64)
    for i, s in enumerate(cat.stores):
        tz = ZoneInfo(s.timezone)
        for d in range(days):
            out[i, d] = int(datetime.combine(start + timedelta(days=d), time(OPEN_HOUR), tz).timestamp())
    return out


def generate_dataset(
    seed: int = 42,
    stores: int = 5,
    days: int = 7,
    receipts_per_store_day: int = 40,
    start: date = date(2026, 11, 16),
    timezone: str = DEFAULT_TIMEZONE,
    skus: int = 400,
    catalogue: Catalogue | None = None,
    pricing: str | tuple[str, ...] | None = None,
    nordic_stores: int = 0,
    kind_weights: dict[int, float] | None = None,
    flag_rates: dict[int, float] | None = None,
    tender_weights: dict[int, float] | None = None,
    cross_store_share: float = CROSS_STORE_SHARE,
) -> SitooDataset:
    """Build the compact index (vectorised; ~1 s per million orders) for a deterministic dataset.

    ``pricing`` (one convention or one per store, cycled) overrides the catalogue's store pricing;
    ``kind_weights`` / ``flag_rates`` / ``tender_weights`` override the scenario frequencies."""
    cat = catalogue or build_catalogue(
        seed=seed, stores=stores, skus=skus, timezone=timezone, nordic_stores=nordic_stores
    )
    if pricing is not None:
        cycle = (pricing,) if isinstance(pricing, str) else tuple(pricing)
        for conv in cycle:
            if conv not in PRICING_CONVENTIONS:
                raise ValueError(f"pricing {conv!r}: expected one of {PRICING_CONVENTIONS}")
        cat = replace(
            cat, stores=[replace(st, pricing=cycle[i % len(cycle)]) for i, st in enumerate(cat.stores)]
        )
    kw = KIND_WEIGHTS if kind_weights is None else kind_weights
    fr = FLAG_RATES if flag_rates is None else flag_rates
    tw_ = TENDER_WEIGHTS if tender_weights is None else tender_weights
    S, D, n = len(cat.stores), days, receipts_per_store_day
    rs = np.random.default_rng(seed)
    N = S * D * n
    store = np.repeat(np.arange(S, dtype=np.int64), D * n)
    day = np.tile(np.repeat(np.arange(D, dtype=np.int64), n), S)
    offs = (
        np.sort(rs.integers(0, OPEN_SECONDS, N).reshape(S * D, max(n, 1)), axis=1).reshape(N)
        if N
        else np.zeros(0, dtype=np.int64)
    )
    orderdate = _epoch_grid(cat, start, D)[store, day] + offs
    kinds = np.array(list(kw), dtype=np.int8)
    w = np.array(list(kw.values()), dtype=float)
    kind = kinds[rs.choice(len(kinds), N, p=w / w.sum())]
    delay = np.where(rs.random(N) < OFFLINE_SHARE, rs.integers(3600, 8 * 3600, N), rs.integers(2, 30, N))
    # Exchanges: each EXCH_REFUND gets an EXCH_SALE 1-4 minutes later on the same till.
    ex = np.flatnonzero(kind == EXCH_REFUND)
    partner_pre = np.full(N + len(ex), -1, dtype=np.int64)
    partner_pre[ex] = N + np.arange(len(ex))
    partner_pre[N + np.arange(len(ex))] = ex
    store = np.concatenate([store, store[ex]])
    orderdate = np.concatenate([orderdate, orderdate[ex] + rs.integers(60, 240, len(ex))])
    kind = np.concatenate([kind, np.full(len(ex), EXCH_SALE, dtype=np.int8)])
    delay = np.concatenate([delay, delay[ex]])
    web = np.isin(kind, WEB_KINDS)
    delay = np.where(web, rs.integers(1, 5, len(kind)), delay)  # web orders are never offline
    dateadded = orderdate + delay
    M = len(kind)
    fl = np.zeros(M, dtype=np.int8)
    for bit, share in fr.items():
        fl |= np.where(rs.random(M) < share, bit, 0).astype(np.int8)
    cross_u = rs.random(M)
    tk = np.array(list(tw_), dtype=np.int8)
    tw = np.array(list(tw_.values()), dtype=float)
    tender = tk[rs.choice(len(tk), M, p=tw / tw.sum())]
    link_u = rs.random(M)
    # Receipt numbers: per store's till, in orderdate order (web orders count apart: no till).
    till = np.where(web, S, store)
    by_till = np.lexsort((np.arange(M), orderdate, till))
    receiptno = np.zeros(M, dtype=np.int32)
    counts = np.bincount(till, minlength=S + 1)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    receiptno[by_till] = (np.arange(M) - np.repeat(firsts, counts) + 1).astype(np.int32)
    # Arrival order -> orderids.
    order = np.lexsort((np.arange(M), dateadded))
    inv = np.empty(M, dtype=np.int64)
    inv[order] = np.arange(M)
    orderid = ORDERID_BASE + np.arange(M, dtype=np.int64)
    store, orderdate, dateadded = store[order], orderdate[order], dateadded[order]
    kind, fl, tender = kind[order], fl[order], tender[order]
    receiptno, link_u, cross_u = receiptno[order], link_u[order], cross_u[order]
    partner_pre = partner_pre[order]
    partner = np.where(partner_pre >= 0, ORDERID_BASE + inv[np.maximum(partner_pre, 0)], 0)
    # Returns / exchange refunds link to an earlier finalised sale that had already reached the
    # backend when the return was made: of the same store, or (a share of returns) of another store
    # of the same country. Returns of a return link to an earlier return of the same store.
    country = np.array([st.country for st in cat.stores])
    link = np.zeros(M, dtype=np.int64)
    cross = np.zeros(M, dtype=bool)

    def pick(cand: np.ndarray, rp: np.ndarray) -> np.ndarray:
        k = np.searchsorted(dateadded[cand], orderdate[rp], side="left")
        ok = k > 0
        chosen = np.minimum((link_u[rp] * k).astype(np.int64), np.maximum(k - 1, 0))
        link[rp[ok]] = orderid[cand[chosen[ok]]]
        return rp[~ok]

    def by_store(mask: np.ndarray) -> list[np.ndarray]:
        """Positions where ``mask`` holds, per store (each ascending = arrival order)."""
        pos = np.flatnonzero(mask)
        pos = pos[np.argsort(store[pos], kind="stable")]
        return np.split(pos, np.cumsum(np.bincount(store[pos], minlength=S))[:-1])

    is_cross = (kind == RETURN) & (cross_u < cross_store_share)
    sales_of = by_store(kind == SALE)
    same_of = by_store(((kind == RETURN) | (kind == EXCH_REFUND)) & ~is_cross)
    cross_of = by_store(is_cross)
    unlinked: list[np.ndarray] = []
    for s in range(S):
        unlinked.append(pick(sales_of[s], same_of[s]))
    for c in set(country.tolist()):
        stores_c = np.flatnonzero(country == c)
        rp = np.sort(np.concatenate([cross_of[s] for s in stores_c]))
        if len(stores_c) < 2:  # no other store to return to: a same-store return
            for s in stores_c.tolist():
                unlinked.append(pick(sales_of[s], cross_of[s]))
            continue
        unlinked.append(pick(np.sort(np.concatenate([sales_of[s] for s in stores_c])), rp))
        linked = rp[link[rp] > 0]
        cross[linked] = store[link[linked] - ORDERID_BASE] != store[linked]
    for b in np.concatenate(unlinked).tolist():
        # No earlier sale: becomes (or its exchange pair becomes) a plain sale.
        if kind[b] == EXCH_REFUND:
            kind[partner[b] - ORDERID_BASE] = SALE
            partner[partner[b] - ORDERID_BASE] = 0
            partner[b] = 0
        kind[b] = SALE
    returns_of = by_store(kind == RETURN)
    reversals_of = by_store(kind == RETURN_REVERSAL)
    for s in range(S):
        for b in pick(returns_of[s], reversals_of[s]).tolist():
            kind[b] = SALE
    sales = kind == SALE
    fl = np.where(sales, fl, 0).astype(np.int8)
    fl = np.where(cross & (kind == RETURN), F_CROSS_STORE, fl).astype(np.int8)
    tender = np.where(sales, tender, T_CARD).astype(np.int8)
    st = np.array([STATES[k] for k in range(len(KIND_NAMES))], dtype=np.int16)
    idx = {
        "orderid": orderid,
        "store": np.where(np.isin(kind, WEB_KINDS), 0, store + 1).astype(np.int16),  # 0: the web shop
        "orderdate": orderdate.astype(np.int64),
        "dateadded": dateadded.astype(np.int64),
        "kind": kind.astype(np.int8),
        "flags": fl,
        "tender": tender,
        "link": link,
        "partner": partner.astype(np.int64),
        "receiptno": receiptno,
        "orderstateid": st[kind, 0].astype(np.int8),
        "paymentstateid": st[kind, 1].astype(np.int8),
        "ordertypeid": st[kind, 2].astype(np.int16),
    }
    return SitooDataset(seed=seed, catalogue=cat, start=start, days=days, timezone=timezone, idx=idx)
