"""The seeded retail world both sandboxes share: stores, SKUs, tenders, VAT rates.

One deterministic catalogue feeds the Sitoo emulator (stores, warehouses, products) and the
NetSuite emulator (locations, walk-in customers, items, tax codes, payment methods), so the
two sides agree exactly where they should and differ only where a fault is planted on
purpose (about 0.5 % of SKUs sold in Sitoo have no ERP item; a few ERP items are inactive).

Id conventions (stable, so mapping seeds and tests can rely on them):

- Sitoo store ``n`` (1-based): ``storeid=n``, ``externalid="ST{n:03d}"``, ``warehouseid=100+n``,
  one register ``{5170XXXX-...}`` per store.
- ERP location for store ``n``: ``id=str(1000+n)``; walk-in customer ``id=str(5000+n)``;
  subsidiary ``"1"``.
- Product ``p`` (1-based): ``productid=p``, ``sku="SKU-{p:06d}"``; ERP item ``id=str(100000+p)``.
- VAT rates 20 / 5 / 0 % -> ERP tax codes ``"41"`` / ``"42"`` / ``"43"`` of tax type ``"7"``;
  the Swedish rates of a Nordic store 25 / 12 / 6 % -> ``"44"`` / ``"45"`` / ``"46"``.

Pricing (per store, ``Store.pricing``): how the store's till prices and derives VAT. Shelf prices are
VAT-inclusive by default, as in UK and Nordic shops; each store follows one convention:

- ``gross_receipt``: shelf prices include VAT; rows carry net/VAT derived per unit from the gross
  unit price; the receipt's VAT per rate is derived from the receipt's gross at that rate
  (3 x 0.99 at 20 %: gross 2.97, VAT 0.50, net 2.47, while the rows carry 0.82 + 0.17 per unit).
- ``gross_line``: shelf prices include VAT; VAT is derived per row from the row's gross; the receipt
  is the sum of its rows.
- ``net_line``: net prices; VAT per row from the row's net; the receipt is the sum of its rows.
- ``net_receipt``: net prices; VAT per rate from the receipt's net at that rate.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

DEFAULT_TIMEZONE = "Europe/London"
VAT_RATES: tuple[int, ...] = (20, 5, 0)
TAX_TYPE_ID = "7"
TAX_CODE_BY_RATE: dict[int, str] = {20: "41", 5: "42", 0: "43", 25: "44", 12: "45", 6: "46"}
# VAT rate per product class and country: UK standard / reduced / zero; Sweden 25 / 12 / 6 (books,
# culture) / 0 (a zero-rated product is 6 % in Sweden when its id is even).
RATES_BY_COUNTRY: dict[str, dict[str, int]] = {
    "GB": {"standard": 20, "reduced": 5, "zero": 0, "culture": 0},
    "SE": {"standard": 25, "reduced": 12, "zero": 0, "culture": 6},
}
CURRENCY_BY_COUNTRY = {"GB": "GBP", "SE": "SEK"}
PRICING_CONVENTIONS: tuple[str, ...] = ("gross_receipt", "gross_line", "net_line", "net_receipt")
# Default per store n: PRICING_CYCLE[(n - 1) % 6]: VAT-inclusive stores, one net-priced store in five.
PRICING_CYCLE: tuple[str, ...] = (
    "gross_receipt",
    "gross_line",
    "net_line",
    "gross_receipt",
    "gross_line",
    "net_receipt",
)
SUBSIDIARY_ID = "1"
# Document-level items in the ERP (see design invariant 5 and the posting rules).
LOYALTY_DISCOUNT_ITEM_ID = "900"
ROUNDING_ITEM_ID = "901"
GIFT_CARD_ITEM_ID = "902"
GIFT_CARD_SKU = "GIFTCARD"
GIFT_CARD_PRODUCT_ID = 999_999
INVENTORY_ADJUSTMENT_ACCOUNT_ID = "510"

# Sitoo POS payment type names -> ERP payment method ids. "Gift Card" redeems a liability;
# "Exchange" is the POS's virtual payment moving value between an exchange's refund and sale,
# posted to a clearing method that nets to zero across the pair.
TENDERS: dict[str, str] = {"Cash": "1", "Card": "2", "Gift Card": "3", "Klarna": "4", "Exchange": "5"}
# Invariant 11: the ledger account each tender lands on. Bank tenders are also their payment
# method's "Deposit To" account; gift card (a liability) and exchange clearing are reached only by
# the tender journal, via the POS settlement method (a bank-type clearing account).
TENDER_ACCOUNTS: dict[str, str] = {
    "Cash": "1220",
    "Card": "1210",
    "Gift Card": "2400",
    "Klarna": "1230",
    "Exchange": "1260",
}
JOURNAL_TENDERS = frozenset({"Gift Card", "Exchange"})
SETTLEMENT_METHOD_ID = "6"
SETTLEMENT_ACCOUNT_ID = "1250"
GIFT_CARD_LIABILITY_ACCOUNT_ID = TENDER_ACCOUNTS["Gift Card"]
LEDGER_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("1210", "Card clearing", "Bank"),
    ("1220", "Cash in tills", "Bank"),
    ("1230", "Klarna receivable", "Bank"),
    ("1250", "POS settlement clearing", "Bank"),
    ("1260", "Exchange clearing", "OthCurrAsset"),
    ("2400", "Gift card liability", "OthCurrLiab"),
)
# A tender the POS can take but the ERP has no mapping for (drives the tender-mismatch path).
UNMAPPED_TENDER = "Foreign Currency"


@dataclass(frozen=True)
class Store:
    storeid: int
    externalid: str
    name: str
    timezone: str
    warehouseid: int
    registerid: str
    registerkey: str
    eshopid: int = 1
    pricing: str = "gross_receipt"  # one of PRICING_CONVENTIONS
    country: str = "GB"

    @property
    def currency(self) -> str:
        return CURRENCY_BY_COUNTRY[self.country]

    @property
    def prices_include_vat(self) -> bool:
        return self.pricing.startswith("gross")

    @property
    def erp_location_id(self) -> str:
        return str(1000 + self.storeid)

    @property
    def erp_customer_id(self) -> str:
        return str(5000 + self.storeid)


@dataclass(frozen=True)
class Product:
    productid: int
    sku: str
    title: str
    vat_rate: int
    net_price: Decimal  # regular net unit price, 2 dp
    cost: Decimal  # net unit cost, 2 dp
    group_type: int = 10  # 10 product, 20 service, 30 gift card
    in_erp: bool = True  # False: the ~0.5 % "unknown SKU" fault
    erp_inactive: bool = False
    shelf_price: Decimal = Decimal("0.00")  # VAT-inclusive UK shelf price (x.99 / x.49 / x.00), 2 dp

    @property
    def vat_class(self) -> str:
        if self.vat_rate == 20:
            return "standard"
        if self.vat_rate == 5:
            return "reduced"
        return "culture" if self.productid % 2 == 0 and self.group_type == 10 else "zero"

    def rate_in(self, country: str) -> int:
        """The product's VAT rate in ``country`` (gift cards are always 0 %)."""
        return 0 if self.group_type == 30 else RATES_BY_COUNTRY[country][self.vat_class]

    def price_in(self, store: Store) -> Decimal:
        """Unit price on the store's shelf: VAT-inclusive or net per the store's pricing."""
        if self.group_type == 30:
            return self.net_price
        if store.country == "SE":  # whole kronor or x.90, VAT-inclusive
            sek = (self.shelf_price * 13).quantize(Decimal("1"))
            gross = sek - Decimal("0.10") if self.productid % 3 == 0 else sek
            rate = Decimal(self.rate_in("SE"))
            return (
                gross if store.prices_include_vat else (gross * 100 / (100 + rate)).quantize(Decimal("0.01"))
            )
        return self.shelf_price if store.prices_include_vat else self.net_price

    @property
    def erp_item_id(self) -> str:
        return str(100000 + self.productid)


@dataclass
class Catalogue:
    seed: int
    stores: list[Store]
    products: list[Product]
    gift_card: Product
    tenders: dict[str, str] = field(default_factory=lambda: dict(TENDERS))

    @property
    def sellable(self) -> list[Product]:
        return [p for p in self.products if p.group_type == 10]

    def product_by_sku(self) -> dict[str, Product]:
        return {p.sku: p for p in [*self.products, self.gift_card]}

    def erp_master_data(self) -> dict[str, list[dict]]:
        """ERP master records for the NetSuite emulator (column names as SuiteQL sees them)."""
        items = [
            {
                "id": p.erp_item_id,
                "itemid": p.sku,
                "displayname": p.title,
                "itemtype": "InvtPart",
                "isinactive": "T" if p.erp_inactive else "F",
            }
            for p in self.products
            if p.in_erp
        ]
        items += [
            {
                "id": GIFT_CARD_ITEM_ID,
                "itemid": GIFT_CARD_SKU,
                "displayname": "Gift card (liability)",
                "itemtype": "GiftCert",
                "isinactive": "F",
                "incomeaccount": GIFT_CARD_LIABILITY_ACCOUNT_ID,  # a GiftCert item's liability account
            },
            {
                "id": LOYALTY_DISCOUNT_ITEM_ID,
                "itemid": "LOYALTY-DISCOUNT",
                "displayname": "Loyalty discount",
                "itemtype": "Discount",
                "isinactive": "F",
            },
            {
                "id": ROUNDING_ITEM_ID,
                "itemid": "CASH-ROUNDING",
                "displayname": "Cash rounding",
                "itemtype": "OthCharge",
                "isinactive": "F",
            },
        ]
        return {
            "subsidiaries": [{"id": SUBSIDIARY_ID, "name": "Sandbox Retail Ltd"}],
            "locations": [
                {"id": s.erp_location_id, "name": s.name, "externalid": s.externalid, "isinactive": "F"}
                for s in self.stores
            ],
            "customers": [
                {
                    "id": s.erp_customer_id,
                    "entityid": f"Walk-in {s.externalid}",
                    "externalid": f"WALKIN-{s.externalid}",
                }
                for s in self.stores
            ],
            "items": items,
            "tax_types": [{"id": TAX_TYPE_ID, "name": "VAT"}],
            "tax_codes": [
                {
                    "id": code,
                    "itemid": f"{'GB' if rate in VAT_RATES else 'SE'}-VAT-{rate}",
                    "rate": float(rate),
                    "taxtype": TAX_TYPE_ID,
                }
                for rate, code in TAX_CODE_BY_RATE.items()
            ],
            "payment_methods": [
                {
                    "id": pid,
                    "name": name,
                    **(
                        {"account": TENDER_ACCOUNTS[name]}
                        if name in TENDER_ACCOUNTS and name not in JOURNAL_TENDERS
                        else {}
                    ),
                }
                for name, pid in self.tenders.items()
            ]
            + [{"id": SETTLEMENT_METHOD_ID, "name": "POS settlement", "account": SETTLEMENT_ACCOUNT_ID}],
            "accounts": [
                {"id": INVENTORY_ADJUSTMENT_ACCOUNT_ID, "name": "Inventory adjustments"},
                *({"id": a, "name": n, "accttype": t} for a, n, t in LEDGER_ACCOUNTS),
            ],
        }


def mapping_seed_rows(catalogue: Catalogue) -> dict[str, list[dict]]:
    """The mapping tables that make this catalogue post cleanly (the sandbox's ``include/mappings``).

    SKU→item is not seeded: items are looked up in the ERP item master; ``sku_item`` is for
    overrides only. The unmapped tender is deliberately absent.
    """
    return {
        "store_location": [
            {
                "store_externalid": s.externalid,
                "location_id": s.erp_location_id,
                "customer_id": s.erp_customer_id,
                "subsidiary_id": SUBSIDIARY_ID,
                "timezone": s.timezone,
            }
            for s in catalogue.stores
        ],
        "tender_payment": [
            {
                "tender": name,
                "payment_method_id": pid,
                "is_gift_card": str(name == "Gift Card").lower(),
                "account_id": TENDER_ACCOUNTS.get(name, ""),
                "via_journal": str(name in JOURNAL_TENDERS).lower(),
            }
            for name, pid in catalogue.tenders.items()
        ],
        "vat_tax_code": [
            {"vat_rate": f"{rate}.000", "tax_code_id": code, "tax_type_id": TAX_TYPE_ID}
            for rate, code in TAX_CODE_BY_RATE.items()
        ],
        "document_item": [
            {"purpose": "loyalty_discount", "item_id": LOYALTY_DISCOUNT_ITEM_ID},
            {"purpose": "cash_rounding", "item_id": ROUNDING_ITEM_ID},
            {"purpose": "gift_card", "item_id": GIFT_CARD_ITEM_ID},
            {"purpose": "stock_adjustment_account", "item_id": INVENTORY_ADJUSTMENT_ACCOUNT_ID},
            {"purpose": "pos_settlement_method", "item_id": SETTLEMENT_METHOD_ID},
            {"purpose": "pos_settlement_account", "item_id": SETTLEMENT_ACCOUNT_ID},
        ],
        "sku_item": [],
    }


def _shelf_price(productid: int, net: Decimal, rate: int) -> Decimal:
    """A VAT-inclusive shelf price near net x (1 + rate): mostly x.99, some x.49 / x.00; every 50th
    product costs 0.99 (the 3 x 0.99 penny case)."""
    if productid % 50 == 7:
        return Decimal("0.99")
    pounds = (net * (100 + rate) / 100).to_integral_value(ROUND_FLOOR)
    if productid % 7 == 0:
        return max(pounds, Decimal(1)).quantize(Decimal("0.01"))
    return pounds + (Decimal("0.49") if productid % 4 == 0 else Decimal("0.99"))


def build_catalogue(
    seed: int = 42,
    stores: int = 5,
    skus: int = 400,
    timezone: str = DEFAULT_TIMEZONE,
    unknown_sku_share: float = 0.005,
    inactive_sku_share: float = 0.002,
    pricing: str | Sequence[str] | None = None,
    nordic_stores: int = 0,
) -> Catalogue:
    """Deterministic catalogue: same arguments, same stores and products, byte for byte.

    ``pricing``: one convention for every store, or one per store (cycled); default
    ``PRICING_CYCLE``. ``nordic_stores``: the last N stores are Swedish (SEK, 25/12/6/0 %,
    Europe/Stockholm)."""
    rng = random.Random(f"catalogue:{seed}")
    cycle = PRICING_CYCLE if pricing is None else (pricing,) if isinstance(pricing, str) else tuple(pricing)
    for conv in cycle:
        if conv not in PRICING_CONVENTIONS:
            raise ValueError(f"pricing {conv!r}: expected one of {PRICING_CONVENTIONS}")
    store_list = [
        Store(
            storeid=n,
            externalid=f"ST{n:03d}",
            name=f"Store {n:03d}",
            timezone="Europe/Stockholm" if n > stores - nordic_stores else timezone,
            warehouseid=100 + n,
            registerid=f"{{5170{n:04X}-0000-4000-8000-{n:012X}}}",
            registerkey=f"SBX{n:05d}",
            pricing=cycle[(n - 1) % len(cycle)],
            country="SE" if n > stores - nordic_stores else "GB",
        )
        for n in range(1, stores + 1)
    ]
    n_unknown = max(1, round(skus * unknown_sku_share)) if unknown_sku_share > 0 else 0
    n_inactive = max(1, round(skus * inactive_sku_share)) if inactive_sku_share > 0 else 0
    unknown = set(rng.sample(range(1, skus + 1), n_unknown)) if n_unknown else set()
    remaining = [p for p in range(1, skus + 1) if p not in unknown]
    inactive = set(rng.sample(remaining, min(n_inactive, len(remaining)))) if n_inactive else set()
    products = []
    for p in range(1, skus + 1):
        rate = rng.choices(VAT_RATES, weights=(70, 15, 15))[0]
        # Prices like 3.33 or 12.49 net make per-line VAT rounding differ from the receipt's.
        net = Decimal(rng.randint(99, 9999)) / 100
        cost = (net * Decimal(rng.uniform(0.35, 0.6))).quantize(Decimal("0.01"))
        products.append(
            Product(
                productid=p,
                sku=f"SKU-{p:06d}",
                title=f"Product {p}",
                vat_rate=rate,
                net_price=net,
                cost=cost,
                in_erp=p not in unknown,
                erp_inactive=p in inactive,
                shelf_price=_shelf_price(p, net, rate),
            )
        )
    gift_card = Product(
        productid=GIFT_CARD_PRODUCT_ID,
        sku=GIFT_CARD_SKU,
        title="Gift card",
        vat_rate=0,
        net_price=Decimal("25.00"),
        cost=Decimal("0.00"),
        group_type=30,
    )
    return Catalogue(seed=seed, stores=store_list, products=products, gift_card=gift_card)
