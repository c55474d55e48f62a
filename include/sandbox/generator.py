"""Seeded Sitoo POS data generator: orders, stock movements and Z-reports, built lazily.

Deterministic by seed: the same arguments give byte-identical payloads. The dataset keeps only a
compact numpy index per order (orderid, store, orderdate, dateadded, kind, flags, tender, links,
receipt number, state ids: ~50 bytes/order) and builds each order's JSON on demand from a
``random.Random`` seeded by ``(seed, orderid)``, so a server can page through millions of orders.

Order ids ascend in backend arrival order (``dateadded``): an offline receipt that reaches the
backend hours late gets a higher orderid than receipts made after it (the orderid high-water mark
is the only safe watermark). ``dateadded`` is not an order field in the API; the sandbox clock
hides orders whose ``dateadded`` is in its future.

Payload representation (what the posting code reads):

- **Money** 2-dp strings, quantities 3-dp strings; all rounding is ROUND_HALF_UP (away from zero).
- **Row prices** are net per unit. ``moneypriceorg`` / ``moneyoriginalprice`` = regular net price;
  ``moneydiscountedprice`` = ``moneynetpriceperunit`` = price paid; ``moneydiscount`` = the
  difference (``"0.00"`` without a campaign). Campaign rows carry ``vouchercode`` ``"CAMP10"``,
  ``"CAMP20"`` or ``"CAMP30"`` and ``vouchername``. ``moneyitemtotal_net = unit * quantity``;
  ``moneyitemtotal_vat = round(moneyitemtotal_net * vatvalue/100)`` per line.
- **Receipt VAT rule**: for each ``vatvalue`` R: ``net_R = sum(row net at R) - loyalty net at R`` and
  ``vat_R = round(net_R * R/100)``; ``moneyfinal_net = sum(net_R)``, ``moneyfinal_vat = sum(vat_R)``
  (``receipt_vat_by_rate`` implements it). **Penny-rounding baskets** are those where the per-line
  rounded ``sum(moneyitemtotal_vat)`` at some rate differs from ``vat_R`` by >= 0.01; every other
  basket is drawn so the two agree exactly.
- **Loyalty bonus cheque** (receipt level, never on a row; rows keep the pre-loyalty price): order
  ``additionaldata``: ``crm-bonuscheckid`` (``"BC…"``), ``crm-membernumber``,
  ``loyalty-moneydiscount`` (gross, positive) and per rate R present
  ``loyalty-moneydiscount-net-R`` / ``loyalty-moneydiscount-vat-R`` (positive; net + vat summed over
  rates = ``loyalty-moneydiscount``). Identity: ``sum(row vat at R) - loyalty vat R = vat_R``.
  Never combined with a penny-rounding basket.
- **Gift card sold**: row ``sku="GIFTCARD"``, ``productid=999999``, ``vatvalue=0``, row
  ``additionaldata["giftcard-cardnumber"]``, ``"product-group-type": "30"``. **Redeemed**: payment
  ``name="Gift Card"`` with ``giftcard-cardnumber`` / ``giftcard-cardnumber-display``.
- **Cash round-off**: an all-cash sale is rounded to the nearest **0.05**:
  ``moneytotal_gross_roundoff`` = rounded - (net + vat), never zero for the generated cash sales
  (a cash refund is rounded too, and may be 0.00). Split tenders (Card + Cash) are not rounded.
- **Returns**: own order, ``creditorderid`` = sale, ``additionaldata["pos-originalsales-orderid"]``,
  rows with negative ``quantity`` / totals (unit prices positive) and
  ``additionaldata["pos-originalsales-orderitemid"]``; payments negative with
  ``pos-originalsales-payment-index``. Refunds are at row value (loyalty is not clawed back).
- **Exchanges**: a refund order (like a return, plus ``pos-refundsales-orderid``) and a sale
  (``pos-refund-orderid`` / ``pos-refund-receiptid``); the value moved between them is a payment
  ``name="Exchange"`` with ``additionaldata["virtual-payment"]="true"`` (negative on the refund,
  positive on the sale); any balance is paid / refunded by Card.
- **Unmapped tender**: payment ``name="Foreign Currency"`` (``catalogue.UNMAPPED_TENDER``).
- Invariant for every order: ``sum(payments.moneyamount) == moneytotal_gross_all ==
  moneyfinal_net + moneyfinal_vat + moneytotal_gross_roundoff``.

Kinds and states: sale/return/exchange ``(10, 20, 10)``; open ``(0, 10, 10)``; parked
``(0, 0, 110)``; booking ``(0, 15, 100)``; cancelled ``(20, 30, 10)``; abandoned ``(-1, 0, 10)``
as ``(orderstateid, paymentstateid, ordertypeid)``.

Stock: every store warehouse starts with ``initial_on_hand(store, sku)`` of every product at
``start`` - 1 day; transactions: Sales (30) / Refund (40) per finalised receipt (``orderdeliveryid
= orderid * 10 + 1``, ``datecreated = dateadded``), plus per store-day a Move In (10) at 07:00,
sometimes a Move Out (20) at 18:00 and a StockTaking (50) at 20:30 local. Transactions, stock
levels and Z-reports are materialised on first use (O(orders); fine up to ~100k orders).
"""

from __future__ import annotations

import bisect
import copy
import random
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from include.sandbox.catalogue import (
    DEFAULT_TIMEZONE,
    GIFT_CARD_SKU,
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

# Order kinds (index column ``kind``).
SALE, RETURN, EXCH_REFUND, EXCH_SALE, OPEN, PARKED, BOOKING, CANCELLED, ABANDONED = range(9)
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
)
KIND_BY_NAME = {n: i for i, n in enumerate(KIND_NAMES)}
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
}
# Primary draw (EXCH_SALE is added for each EXCH_REFUND).
KIND_WEIGHTS = {
    SALE: 0.87,
    RETURN: 0.04,
    EXCH_REFUND: 0.01,
    OPEN: 0.01,
    PARKED: 0.02,
    BOOKING: 0.01,
    CANCELLED: 0.02,
    ABANDONED: 0.02,
}

# Basket flags (sales only).
F_UNKNOWN_SKU, F_PENNY, F_LOYALTY, F_CAMPAIGN, F_GIFTCARD_SOLD = 1, 2, 4, 8, 16
FLAG_RATES = {F_UNKNOWN_SKU: 0.005, F_PENNY: 0.05, F_LOYALTY: 0.05, F_CAMPAIGN: 0.15, F_GIFTCARD_SOLD: 0.02}
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
RATE = {20: Decimal("0.20"), 5: Decimal("0.05"), 0: Decimal("0")}
VATID_BY_RATE = {20: 2, 5: 3, 0: 4}
GIFT_CARD_VATID = 5


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


def receipt_vat_by_rate(order: dict) -> dict[int | float, tuple[Decimal, Decimal]]:
    """The receipt's (net, vat) per VAT rate under the module's receipt VAT rule."""
    nets: dict[Any, Decimal] = {}
    for row in order.get("orderitems") or []:
        v = row["vatvalue"]
        nets[v] = nets.get(v, ZERO) + Decimal(row["moneyitemtotal_net"])
    ad = order.get("additionaldata") or {}
    out = {}
    for v, n in nets.items():
        n -= Decimal(ad.get(f"loyalty-moneydiscount-net-{v}", "0"))
        out[v] = (n, r2(n * rate_of(v)))
    return out


def row_vat_by_rate(order: dict) -> dict[Any, Decimal]:
    out: dict[Any, Decimal] = {}
    for row in order.get("orderitems") or []:
        out[row["vatvalue"]] = out.get(row["vatvalue"], ZERO) + Decimal(row["moneyitemtotal_vat"])
    return out


def is_finalised(order: dict) -> bool:
    return order["orderstateid"] == 10 and order["paymentstateid"] == 20 and order["ordertypeid"] == 10


@dataclass
class _Line:
    product: Product
    qty: int
    unit: Decimal
    regular: Decimal
    voucher: tuple[str, str] | None = None
    gc_number: str | None = None
    orig_itemid: int | None = None

    @property
    def net(self) -> Decimal:
        return r2(self.unit * self.qty)

    @property
    def vat(self) -> Decimal:
        return r2(self.net * RATE[self.product.vat_rate])


def _mismatch(lines: list[_Line]) -> bool:
    by: dict[int, list[_Line]] = {}
    for ln in lines:
        by.setdefault(ln.product.vat_rate, []).append(ln)
    return any(
        sum((ln.vat for ln in g), ZERO) != r2(sum((ln.net for ln in g), ZERO) * RATE[r])
        for r, g in by.items()
    )


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
        known = [p for p in self.catalogue.sellable if p.in_erp and not p.erp_inactive]
        self._pool = known
        self._pool20 = [p for p in known if p.vat_rate == 20]
        self._unknown = [p for p in self.catalogue.sellable if not p.in_erp] or known[:1]
        self._zero_odd = [p for p in known if p.vat_rate == 0 and (p.net_price * 100) % 5 != 0] or known[:1]
        self._tz = ZoneInfo(self.timezone)
        self._costs = {p.sku: p.cost for p in self.catalogue.products}
        self._cache_version = -1
        self._ledger_cache: tuple | None = None
        self._z_cache: dict | None = None

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
                    "orderid": int(orderid),
                    "orderlogtypeid": 0,
                    "strvalue": "",
                    "fvalue": 0,
                }
            ]
        return o

    def _rng(self, orderid: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + int(orderid))

    def _build(self, p: int) -> dict:
        kind = int(self.idx["kind"][p])
        if kind in (RETURN, EXCH_REFUND):
            return self._build_refund(p)
        if kind == EXCH_SALE:
            return self._build_exchange_pair(int(self.pos(int(self.idx["partner"][p]))))[1]
        return self._build_sale(p)

    def _sale_lines(self, p: int, rng: random.Random) -> list[_Line]:
        flags = int(self.idx["flags"][p])
        orderid = int(self.idx["orderid"][p])
        lines: list[_Line] = []
        for _attempt in range(60):
            n = rng.choices((1, 2, 3, 4, 5, 6), weights=(30, 25, 18, 12, 8, 7))[0]
            pool = self._pool
            if flags & F_PENNY:
                n, pool = max(n, 2), self._pool20
            prods = rng.sample(pool, min(n, len(pool)))
            if flags & F_UNKNOWN_SKU:
                prods[rng.randrange(len(prods))] = rng.choice(self._unknown)
            lines = []
            for prod in prods:
                qty = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
                unit, voucher = prod.net_price, None
                if flags & F_CAMPAIGN and (not lines or rng.random() < 0.5):
                    pct = rng.choice((10, 20, 30))
                    unit = r2(prod.net_price * (100 - pct) / 100)
                    voucher = (f"CAMP{pct}", f"Campaign {pct}% off")
                lines.append(_Line(prod, qty, unit, prod.net_price, voucher))
            if bool(flags & F_PENNY) == _mismatch(lines):
                break
        else:
            if flags & F_PENNY:  # pragma: no cover - 60 draws of >=2 lines at 20 % always mismatch
                raise RuntimeError(f"could not draw a penny-rounding basket for order {orderid}")
            while _mismatch(lines) and len(lines) > 1:
                lines.pop()
        return lines

    def _meta(self, p: int, rng: random.Random) -> dict[str, Any]:
        store = self.stores_by_id[int(self.idx["store"][p])]
        orderid = int(self.idx["orderid"][p])
        st = (
            int(self.idx["orderstateid"][p]),
            int(self.idx["paymentstateid"][p]),
            int(self.idx["ordertypeid"][p]),
        )
        staff = rng.randint(1, 6)
        return {
            "orderid": orderid,
            "eshopid": store.eshopid,
            "externalid": None,
            "creditorderid": None,
            "registerid": store.registerid,
            "warehouseid": store.warehouseid,
            "userid_staff": f"{store.externalid}-STAFF{staff}",
            "orderdate": int(self.idx["orderdate"][p]),
            "datereserved": None,
            "currencycode": CURRENCY,
            "orderstateid": st[0],
            "paymentstateid": st[1],
            "ordertypeid": st[2],
            "deliverytypename": "POS",
            "email": None,
            "namefirst": None,
            "namelast": None,
            "company": None,
            "additionaldata": {
                "pos-receiptid": self.receipt_id(store.storeid, int(self.idx["receiptno"][p])),
                "pos-timezone": store.timezone,
                "pos-staff-externalid": f"STAFF{staff}",
                "store-externalid": store.externalid,
                "store-name": store.name,
            },
        }

    def _rows(self, lines: list[_Line]) -> list[dict]:
        rows = []
        for i, ln in enumerate(lines):
            prod = ln.product
            ad = {"product-group-name": "Gift cards" if prod.group_type == 30 else f"VAT {prod.vat_rate}%"}
            if prod.group_type == 30:
                ad["product-group-type"] = "30"
            if ln.gc_number:
                ad["giftcard-cardnumber"] = ln.gc_number
            if ln.orig_itemid is not None:
                ad["pos-originalsales-orderitemid"] = str(ln.orig_itemid)
                ad["reasoncode-return"] = "RC-RETURN"
            rows.append(
                {
                    "orderitemid": i,
                    "orderitemtype": 10,
                    "productid": prod.productid,
                    "productname": prod.title,
                    "sku": prod.sku,
                    "productattributes": "",
                    "unitlabel": "pcs",
                    "quantity": ln.qty,
                    "decimalunitquantity": None,
                    "decimalquantitytotal": dec3(ln.qty),
                    "moneynetpriceperunit": money(ln.unit),
                    "moneynetpriceperquantity": money(ln.unit),
                    "moneypriceorg": money(ln.regular),
                    "moneyoriginalprice": money(ln.regular),
                    "moneydiscountedprice": money(ln.unit),
                    "moneydiscount": money(ln.regular - ln.unit),
                    "moneyitemtotal_net": money(ln.net),
                    "moneyitemtotal_vat": money(ln.vat),
                    "vatvalue": prod.vat_rate,
                    "vouchercode": ln.voucher[0] if ln.voucher else None,
                    "vouchername": ln.voucher[1] if ln.voucher else None,
                    "salestaxes": [],
                    "additionaldata": ad,
                }
            )
        return rows

    @staticmethod
    def _totals(o: dict, lines: list[_Line], loyalty: dict[int, tuple[Decimal, Decimal]] | None) -> Decimal:
        """Set the money totals on ``o``; returns net + vat (before round-off)."""
        nets: dict[int, Decimal] = {}
        for ln in lines:
            nets[ln.product.vat_rate] = nets.get(ln.product.vat_rate, ZERO) + ln.net
        tot_net = tot_vat = ZERO
        for r, n in nets.items():
            if loyalty and r in loyalty:
                n -= loyalty[r][0]
            tot_net += n
            tot_vat += r2(n * RATE[r])
        for k, v in (
            ("moneytotal_net", tot_net),
            ("moneytotal_vat", tot_vat),
            ("moneyfinal_net", tot_net),
            ("moneyfinal_vat", tot_vat),
        ):
            o[k] = money(v)
        for k in (
            "moneycheckout_net",
            "moneycheckout_vat",
            "moneytotal_gross_checkout",
            "moneydelivery_net",
            "moneydelivery_vat",
            "moneytotal_gross_delivery",
            "moneyfinal_salestax",
        ):
            o[k] = "0.00"
        return tot_net + tot_vat

    @staticmethod
    def _loyalty(
        rng: random.Random, lines: list[_Line]
    ) -> tuple[dict[int, tuple[Decimal, Decimal]], Decimal]:
        """Allocate a bonus cheque over the product rows' rates: {rate: (net, vat)}, gross total."""
        gross_by: dict[int, Decimal] = {}
        nets: dict[int, Decimal] = {}
        for ln in lines:
            if ln.product.group_type == 30:
                continue
            r = ln.product.vat_rate
            nets[r] = nets.get(r, ZERO) + ln.net
            gross_by[r] = gross_by.get(r, ZERO) + ln.net + ln.vat
        total_gross = sum(gross_by.values(), ZERO)
        cheque = min(Decimal(rng.choice((5, 10))), r2(total_gross / 2))
        out: dict[int, tuple[Decimal, Decimal]] = {}
        left = cheque
        rates = sorted(gross_by)
        for i, r in enumerate(rates):
            g = left if i == len(rates) - 1 else r2(cheque * gross_by[r] / total_gross)
            left -= g
            ln_net = r2(g / (1 + RATE[r]))
            rowvat = r2(nets[r] * RATE[r])  # == sum of row vat (no penny mismatch with loyalty)
            ln_vat = rowvat - r2((nets[r] - ln_net) * RATE[r])
            out[r] = (ln_net, ln_vat)
        return out, sum((n + v for n, v in out.values()), ZERO)

    def _card(self, rng: random.Random, amount: Decimal, extra: dict | None = None) -> dict:
        issuer = rng.choice(("Visa", "Mastercard", "Amex"))
        ref = f"{rng.getrandbits(40):010x}"
        return {
            "name": "Card",
            "moneyamount": money(amount),
            "externalid": None,
            "reftype": "verifonelpp",
            "refid": ref,
            "cardissuer": issuer,
            "additionaldata": {
                "payment-method": "card",
                "verifone-lpp-reference-number": ref,
                **(extra or {}),
            },
        }

    @staticmethod
    def _simple(name: str, method: str, amount: Decimal, extra: dict | None = None) -> dict:
        return {
            "name": name,
            "moneyamount": money(amount),
            "externalid": None,
            "reftype": None,
            "refid": None,
            "cardissuer": None,
            "additionaldata": {"payment-method": method, **(extra or {})},
        }

    def _build_sale(self, p: int, exchange_credit: Decimal | None = None) -> dict:
        orderid = int(self.idx["orderid"][p])
        rng = self._rng(orderid)
        o = self._meta(p, rng)
        flags = int(self.idx["flags"][p])
        tender = int(self.idx["tender"][p]) if exchange_credit is None else T_CARD
        lines = self._sale_lines(p, rng)
        if flags & F_GIFTCARD_SOLD:
            gc = self.catalogue.gift_card
            value = Decimal(rng.choice((10, 25, 50)))
            lines.append(_Line(gc, 1, value, value, gc_number=f"GC{self.seed % 1000:03d}{orderid:010d}"))
        loyalty, lgross = self._loyalty(rng, lines) if flags & F_LOYALTY else (None, ZERO)
        gross = self._totals(o, lines, loyalty)
        roundoff = ZERO
        if tender == T_CASH:
            roundoff = (gross / Q5).quantize(Decimal(1), ROUND_HALF_UP) * Q5 - gross
            if roundoff == 0:  # make every generated cash sale carry a round-off
                lines.append(_Line(p0 := rng.choice(self._zero_odd), 1, p0.net_price, p0.net_price))
                gross = self._totals(o, lines, loyalty)
                roundoff = (gross / Q5).quantize(Decimal(1), ROUND_HALF_UP) * Q5 - gross
        total = gross + roundoff
        o["moneytotal_gross_roundoff"] = money(roundoff)
        o["moneytotal_gross_all"] = money(total)
        o["orderitems"] = self._rows(lines)
        if loyalty:
            ad = o["additionaldata"]
            ad["crm-bonuscheckid"] = f"BC{orderid:09d}"
            ad["crm-membernumber"] = f"M{rng.randint(1, 999_999):07d}"
            ad["loyalty-moneydiscount"] = money(lgross)
            for r, (n, v) in sorted(loyalty.items()):
                ad[f"loyalty-moneydiscount-net-{r}"] = money(n)
                ad[f"loyalty-moneydiscount-vat-{r}"] = money(v)
        pays: list[dict] = []
        if exchange_credit is not None:
            v = min(exchange_credit, total)
            pays.append(self._simple("Exchange", "virtual", v, {"virtual-payment": "true"}))
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
            g = min(total, Decimal(rng.choice((10, 25, 50))))
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
            pays.append(self._simple(UNMAPPED_TENDER, "foreigncurrency", total, {"currency-code": "EUR"}))
        else:
            pays.append(self._card(rng, total))
        o["payments"] = pays
        o["reservedpayments"] = []
        o["checkouttypename"] = f"Sitoo POS - {pays[0]['name']}"
        return o

    def _build_refund(self, p: int, exchange_debit: Decimal | None = None) -> dict:
        kind = int(self.idx["kind"][p])
        if kind == EXCH_REFUND and exchange_debit is None:
            return self._build_exchange_pair(p)[0]
        orderid = int(self.idx["orderid"][p])
        rng = self._rng(orderid)
        o = self._meta(p, rng)
        orig_id = int(self.idx["link"][p])
        orig = self.order(orig_id)
        by_sku = self.catalogue.product_by_sku()
        cands = [r for r in orig["orderitems"] if r["sku"] != GIFT_CARD_SKU and r["quantity"] > 0]
        k = 1 if kind == EXCH_REFUND else rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        chosen = sorted(rng.sample(cands, min(k, len(cands))), key=lambda r: r["orderitemid"])
        lines = [
            _Line(
                by_sku[r["sku"]],
                -rng.randint(1, r["quantity"]),
                Decimal(r["moneynetpriceperunit"]),
                Decimal(r["moneypriceorg"]),
                (r["vouchercode"], r["vouchername"]) if r["vouchercode"] else None,
                orig_itemid=r["orderitemid"],
            )
            for r in chosen
        ]
        while _mismatch(lines) and len(lines) > 1:
            lines.pop()
        gross = self._totals(o, lines, None)
        orig_tender = orig["payments"][0]["name"] if orig["payments"] else "Card"
        roundoff = ZERO
        if exchange_debit is None and orig_tender == "Cash":
            roundoff = (gross / Q5).quantize(Decimal(1), ROUND_HALF_UP) * Q5 - gross
        total = gross + roundoff
        o["creditorderid"] = orig_id
        o["moneytotal_gross_roundoff"] = money(roundoff)
        o["moneytotal_gross_all"] = money(total)
        o["orderitems"] = self._rows(lines)
        ad = o["additionaldata"]
        ad["pos-originalsales-orderid"] = str(orig_id)
        ad["refundreasoncode-reasoncode"] = rng.choice(("RC-DAMAGED", "RC-CHANGEDMIND", "RC-WRONGSIZE"))
        link = {"pos-originalsales-payment-index": "0"}
        if exchange_debit is not None:
            v = min(exchange_debit, -total)
            pays = [self._simple("Exchange", "virtual", -v, {"virtual-payment": "true"})]
            if -total > v:
                pays.append(self._card(rng, total + v, link))
        elif orig_tender in ("Cash", "Klarna"):
            pays = [self._simple(orig_tender, orig_tender.lower(), total, link)]
        else:
            pays = [self._card(rng, total, link)]
        o["payments"] = pays
        o["reservedpayments"] = []
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

    # ------------------------------------------------------------------ filtering helpers
    def visible_count(self, now: int) -> int:
        return int((self.idx["dateadded"] <= now).sum())

    # ------------------------------------------------------------------ summary
    @property
    def expected(self) -> dict[str, int]:
        """Scenario counts from the index (``sales_*`` counts are over finalised generated sales)."""
        kind, flags, tender = self.idx["kind"], self.idx["flags"], self.idx["tender"]
        sales = kind == SALE
        fin = (
            (self.idx["orderstateid"] == 10)
            & (self.idx["paymentstateid"] == 20)
            & (self.idx["ordertypeid"] == 10)
        )
        out = {f"kind_{n}": int((kind == i).sum()) for i, n in enumerate(KIND_NAMES)}
        out.update(
            total=len(self),
            finalised=int(fin.sum()),
            not_finalised=int((~fin).sum()),
            offline=int((self.idx["dateadded"] - self.idx["orderdate"] > 3600).sum()),
            exchanges=int((kind == EXCH_REFUND).sum()),
            sales_unknown_sku=int((sales & ((flags & F_UNKNOWN_SKU) > 0)).sum()),
            sales_penny_rounding=int((sales & ((flags & F_PENNY) > 0)).sum()),
            sales_loyalty=int((sales & ((flags & F_LOYALTY) > 0)).sum()),
            sales_campaign=int((sales & ((flags & F_CAMPAIGN) > 0)).sum()),
            sales_giftcard_sold=int((sales & ((flags & F_GIFTCARD_SOLD) > 0)).sum()),
            sales_cash_roundoff=int((sales & (tender == T_CASH)).sum()),
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
                "currencycode": CURRENCY,
                "name": f"{s.name} stock",
                "address": None,
                "address2": None,
                "zip": None,
                "city": None,
                "state": None,
                "countryid": "GB",
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
                "externalgroupid": "UK",
                "countryid": "GB",
                "city": "London",
                "address": f"{s.storeid} High Street",
                "zip": f"EC{s.storeid} 1AA",
                "tags": [],
            }
            for s in self.catalogue.stores
        ]

    def products(self) -> list[dict]:
        out = []
        modified = self.local_ts(self.start - timedelta(days=30), 12)
        for prod in [*self.catalogue.products, self.catalogue.gift_card]:
            gross = r2(prod.net_price * (1 + RATE[prod.vat_rate]))
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
        ttype = 40 if Decimal(o["moneytotal_gross_all"]) < 0 or any(q > 0 for _, q in items) else 30
        return ttype, items

    def _ledger(self) -> tuple[list[dict], list[int], dict[tuple[int, str], int]]:
        """All warehouse transactions (ascending id and datecreated) with running levels."""
        if self._ledger_cache is not None:
            return self._ledger_cache
        events: list[tuple[int, int, int, Any]] = []  # (datecreated, seq, warehouseid, spec)
        fin = np.flatnonzero(
            (self.idx["orderstateid"] == 10)
            & (self.idx["paymentstateid"] == 20)
            & (self.idx["ordertypeid"] == 10)
        )
        for p in fin.tolist():
            oid = ORDERID_BASE + p
            wid = self.stores_by_id[int(self.idx["store"][p])].warehouseid
            ts = self._finalised_at.get(oid, int(self.idx["dateadded"][p]))
            events.append((ts, oid, wid, ("order", oid)))
        for s in self.catalogue.stores:
            for d in range(self.days):
                day = self.start + timedelta(days=d)
                rng = random.Random(f"stock:{self.seed}:{s.storeid}:{d}")
                skus = [p.sku for p in rng.sample(self._pool, rng.randint(3, 6))]
                events.append(
                    (
                        self.local_ts(day, 7),
                        0,
                        s.warehouseid,
                        ("move", 10, [(k, rng.randint(6, 24)) for k in skus]),
                    )
                )
                if rng.random() < 0.4:
                    skus = [p.sku for p in rng.sample(self._pool, rng.randint(1, 3))]
                    events.append(
                        (
                            self.local_ts(day, 18),
                            0,
                            s.warehouseid,
                            ("move", 20, [(k, -rng.randint(1, 4)) for k in skus]),
                        )
                    )
                if rng.random() < 0.3:
                    skus = [p.sku for p in rng.sample(self._pool, rng.randint(2, 4))]
                    events.append(
                        (
                            self.local_ts(day, 20, 30),
                            0,
                            s.warehouseid,
                            ("count", 50, [(k, rng.randint(-3, 1)) for k in skus]),
                        )
                    )
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        self._ledger_cache = ([], [], {})
        for ts, _seq, wid, spec in events:
            if spec[0] == "order":
                self._append_order_tx(self.order(spec[1]), ts)
            else:
                self._append_tx(wid, ts, spec[1], spec[2], counted=spec[0] == "count")
        return self._ledger_cache

    def _level(self, wid: int, sku: str) -> int:
        levels = self._ledger_cache[2]
        key = (wid, sku)
        if key not in levels:
            levels[key] = self.initial_on_hand(self.store_by_warehouse[wid], sku)
        return levels[key]

    def _append_order_tx(self, o: dict, ts: int) -> None:
        ttype, items = self._order_tx_items(o)
        if items:
            self._append_tx(
                o["warehouseid"],
                ts,
                ttype,
                items,
                orderdeliveryid=o["orderid"] * 10 + 1,
                description=f"Order {o['orderid']}",
            )

    def _append_tx(
        self,
        wid: int,
        ts: int,
        ttype: int,
        items: list[tuple[str, int]],
        counted: bool = False,
        orderdeliveryid: int | None = None,
        description: str | None = None,
    ) -> None:
        txs, times, levels = self._ledger_cache
        txid = len(txs) + 1
        costs = self._costs
        logs = []
        for i, (sku, q) in enumerate(items):
            before = self._level(wid, sku)
            delta = q if not counted else max(0, before + q) - before  # q = count error
            levels[(wid, sku)] = after = before + delta
            cost = costs.get(sku, ZERO)
            logs.append(
                {
                    "warehouseitemlogid": txid * 100 + i,
                    "warehouseitemid": wid * 1_000_000 + int(sku[4:]),
                    "warehousetransactionid": txid,
                    "sku": sku,
                    "decimalquantity": dec3(delta),
                    "decimaltotal": dec3(after),
                    "moneypricein": money(cost) if ttype == 10 else None,
                    "moneytotal": money(cost * after),
                    "moneyvalue": money(cost * delta),
                }
            )
        names = {
            10: "Move In",
            20: "Move Out",
            30: "Sales",
            40: "Refund",
            50: "Stocktaking has been completed!",
        }
        txs.append(
            {
                "warehousetransactionid": txid,
                "warehouseid": wid,
                "datecreated": int(ts),
                "transactiontype": ttype,
                "description": description or names[ttype],
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
        """Stock per SKU at ``now``: initial on-hand plus every transaction up to ``now``."""
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
                    "warehouseid": warehouseid,
                    "sku": prod.sku,
                    "decimaltotal": dec3(lvl),
                    "decimalreserved": "0.000",
                    "decimalavailable": dec3(lvl),
                    "moneytotal": money(prod.cost * lvl),
                    "decimalthreshold": "5.000",
                    "binlocation": None,
                    "datelastmodified": modified.get(prod.sku, base_ts),
                    "datelaststocktaking": counted.get(prod.sku),
                }
            )
        return out

    # ------------------------------------------------------------------ Z-reports
    def z_reports(self) -> list[dict]:
        """One Z-report per register per business day (ascending dateadded; cached per version)."""
        if self._z_cache is not None and self._z_cache[0] == self.version:
            return self._z_cache[1]
        fin = np.flatnonzero(
            (self.idx["orderstateid"] == 10)
            & (self.idx["paymentstateid"] == 20)
            & (self.idx["ordertypeid"] == 10)
        )
        by_day: dict[tuple[int, int], list[int]] = {}
        day0 = self.day_bounds(self.start)[0]
        bounds = [self.day_bounds(self.start + timedelta(days=d)) for d in range(self.days)]
        starts = [b[0] for b in bounds]
        for p in fin.tolist():
            od = int(self.idx["orderdate"][p])
            if od < day0:
                continue
            d = bisect.bisect_right(starts, od) - 1
            if d >= self.days or od >= bounds[d][1]:
                continue
            by_day.setdefault((int(self.idx["store"][p]), d), []).append(ORDERID_BASE + p)
        reports = []
        counters: dict[int, int] = {}
        for d in range(self.days):
            day = self.start + timedelta(days=d)
            for s in self.catalogue.stores:
                orders = [self.order(oid) for oid in by_day.get((s.storeid, d), [])]
                counters[s.storeid] = counters.get(s.storeid, 0) + 1
                reports.append(self._z_report(s, day, counters[s.storeid], orders))
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
            for v, (n, vat) in receipt_vat_by_rate(o).items():
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
                if r["vouchercode"]:
                    net = sign * Decimal(r["moneydiscount"]) * abs(r["quantity"])
                    vat = r2(net * rate_of(r["vatvalue"]))
                    dd = a["disc"].setdefault(r["vouchercode"], [ZERO, ZERO])
                    dd[0] += net
                    dd[1] += vat

        def vatgroups(a: dict) -> list[dict]:
            return [
                {
                    "vatvalue": v,
                    "moneytotal": money(n + t),
                    "moneytotalnet": money(n),
                    "moneytotalvat": money(t),
                }
                for v, (n, t) in sorted(a["vat"].items(), reverse=True)
            ]

        def payments(a: dict) -> list[dict]:
            return [
                {
                    "name": k,
                    "moneytotal": money(v),
                    "moneycaptured": money(v),
                    "moneyinadvance": "0.00",
                    "moneyreserved": "0.00",
                    "subpayments": [],
                }
                for k, v in sorted(a["pay"].items())
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
        opened, closed = self.local_ts(day, 8, 30), self.local_ts(day, 21, 30)
        cash = sales["pay"].get("Cash", ZERO) - refunds["pay"].get("Cash", ZERO)
        return {
            "zreportid": number,
            "registerid": s.registerid,
            "manufacturerid": "SBX",
            "registerkey": s.registerkey,
            "registernumber": 1,
            "datecreated": closed,
            "dateopened": opened,
            "dateadded": closed + 60,
            "eshopid": s.eshopid,
            "store_id": s.externalid,
            "store_name": s.name,
            "company": "Sandbox Retail Ltd",
            "companyid": "GB000000000",
            "address": None,
            "address2": None,
            "address3": None,
            "currencycode": CURRENCY,
            "staff": "Manager",
            "staffuserid": f"{s.externalid}-STAFF1",
            "comment": None,
            "businessday": day.isoformat(),
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
            "moneysummarysales": money(sales["gross"]),
            "moneysummaryrefund": money(refunds["gross"]),
            "moneysummarysubtotal": money(subtotal),
            "moneysummarysalestax": "0.00",
            "moneysummaryroundoff": money(roundoff),
            "moneysummarytotal": money(subtotal + roundoff),
            "moneyroundoff": money(roundoff),
            "moneysalestaxinadvance": "0.00",
            "salestaxessales": [],
            "salestaxesrefund": [],
            "paymentssales": payments(sales),
            "paymentsrefund": payments(refunds),
            "discountssales": discounts(sales),
            "discountssalesnotdelivered": [],
            "discountsrefund": discounts(refunds),
            "moneydiscount": money(sum((n + t for n, t in sales["disc"].values()), ZERO)),
            "moneycash_in": "200.00",
            "moneycash_salesrefunds": money(cash),
            "moneycash_petty": "0.00",
            "moneycash_bank": "0.00",
            "moneycash_expected": money(Decimal(200) + cash),
            "moneycash_counted": money(Decimal(200) + cash),
            "moneycash_diff": "0.00",
            "moneycash_bankfinal": money(cash),
            "moneycash_out": "200.00",
            "numsalestypeproduct": sales["items"],
            "numsalestypeservice": 0,
            "numsalestypegiftcard": giftcards,
            "numreceipts": len(orders),
            "numopendrawer": 0,
            "numpractice": 0,
            "moneypractice": "0.00",
            "moneysalesnotdeliveredtotal": "0.00",
            "moneysalesnotdeliveredtotalnet": "0.00",
            "numsalesnotdelivered": 0,
            "numsalesnotdelivereditems": 0,
            "vatgroupssalesnotdelivered": [],
            "productgroupssalesnotdelivered": [],
        }


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
) -> SitooDataset:
    """Build the compact index (vectorised; ~1 s per million orders) for a deterministic dataset."""
    cat = catalogue or build_catalogue(seed=seed, stores=stores, skus=skus, timezone=timezone)
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
    kinds = np.array(list(KIND_WEIGHTS), dtype=np.int8)
    w = np.array(list(KIND_WEIGHTS.values()))
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
    dateadded = orderdate + delay
    M = len(kind)
    fl = np.zeros(M, dtype=np.int8)
    for bit, share in FLAG_RATES.items():
        fl |= np.where(rs.random(M) < share, bit, 0).astype(np.int8)
    fl = np.where((fl & F_PENNY) > 0, fl & ~F_LOYALTY, fl).astype(np.int8)
    tk = np.array(list(TENDER_WEIGHTS), dtype=np.int8)
    tw = np.array(list(TENDER_WEIGHTS.values()))
    tender = tk[rs.choice(len(tk), M, p=tw / tw.sum())]
    link_u = rs.random(M)
    # Receipt numbers: per store, in orderdate order.
    by_store = np.lexsort((np.arange(M), orderdate, store))
    receiptno = np.zeros(M, dtype=np.int32)
    counts = np.bincount(store, minlength=S)
    firsts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    receiptno[by_store] = (np.arange(M) - np.repeat(firsts, counts) + 1).astype(np.int32)
    # Arrival order -> orderids.
    order = np.lexsort((np.arange(M), dateadded))
    inv = np.empty(M, dtype=np.int64)
    inv[order] = np.arange(M)
    orderid = ORDERID_BASE + np.arange(M, dtype=np.int64)
    store, orderdate, dateadded, kind, fl, tender, receiptno, link_u = (
        a[order] for a in (store, orderdate, dateadded, kind, fl, tender, receiptno, link_u)
    )
    partner_pre = partner_pre[order]
    partner = np.where(partner_pre >= 0, ORDERID_BASE + inv[np.maximum(partner_pre, 0)], 0)
    # Returns / exchange refunds link to an earlier finalised sale of the same store that had already
    # reached the backend when the return was made.
    link = np.zeros(M, dtype=np.int64)
    for s in range(S):
        sp = np.flatnonzero((kind == SALE) & (store == s))
        rp = np.flatnonzero(((kind == RETURN) | (kind == EXCH_REFUND)) & (store == s))
        k = np.searchsorted(dateadded[sp], orderdate[rp], side="left")
        ok = k > 0
        pick = np.minimum((link_u[rp] * k).astype(np.int64), np.maximum(k - 1, 0))
        link[rp[ok]] = orderid[sp[pick[ok]]]
        bad = rp[~ok]
        for b in bad.tolist():  # no earlier sale: becomes (or its exchange pair becomes) a plain sale
            if kind[b] == EXCH_REFUND:
                kind[partner[b] - ORDERID_BASE] = SALE
                partner[partner[b] - ORDERID_BASE] = 0
                partner[b] = 0
            kind[b] = SALE
    sales = kind == SALE
    fl = np.where(sales, fl, 0).astype(np.int8)
    tender = np.where(sales, tender, T_CARD).astype(np.int8)
    st = np.array([STATES[k] for k in range(len(KIND_NAMES))], dtype=np.int16)
    idx = {
        "orderid": orderid,
        "store": (store + 1).astype(np.int16),
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
