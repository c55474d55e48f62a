"""Typed Sitoo REST v2 payloads (pydantic v2).

Money arrives as 2-decimal strings and becomes ``Decimal`` (never float); stock quantities are
3-decimal strings; timestamps are Unix seconds and become aware UTC datetimes. Unknown extra
fields are ignored (the raw payload is kept in staging), but a missing required field, money
that is not a number, or an enum value we do not know is a ``SitooPayloadError`` that names
the record, the field and the rule — so it can become an exception row, not a crash.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

# The order codes are the ledger's vocabulary (``domain``); the payload model validates against them.
from include.sitoo_erp.domain import OrderState, OrderType, PaymentState

# ASCII digits only, whole string (``$`` would accept a trailing newline, ``\d`` Arabic-Indic digits).
_MONEY_RE = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,2})?")
_DECIMAL_RE = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,3})?")


def _strict_decimal(value: Any, pattern: re.Pattern[str], what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{what} must be a decimal string such as '12.50', got {type(value).__name__}")
    text = str(value)
    if not pattern.fullmatch(text):
        raise ValueError(f"{what} must be a decimal string such as '12.50', got {text[:40]!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
        raise ValueError(f"{what} is not a number: {text[:40]!r}") from exc


def _money(value: Any) -> Decimal:
    return _strict_decimal(value, _MONEY_RE, "money")


def _quantity(value: Any) -> Decimal:
    return _strict_decimal(value, _DECIMAL_RE, "quantity")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"timestamp must be Unix seconds (int), got {type(value).__name__}")
    if not 0 < value < 32_503_680_000:  # year 3000
        raise ValueError(f"timestamp out of range: {value}")
    return datetime.fromtimestamp(value, tz=UTC)


Money = Annotated[Decimal, BeforeValidator(_money)]
Quantity = Annotated[Decimal, BeforeValidator(_quantity)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
# Integers bounded by the staging columns they land in: a value the ledger cannot store is a named
# payload error (quarantined), never an overflow that fails the whole batch.
Int32 = Annotated[int, Field(ge=-(2**31), lt=2**31)]
Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]
OrderId = Annotated[int, Field(gt=0, lt=2**63)]


class WarehouseTransactionType(IntEnum):
    MOVE_IN = 10
    MOVE_OUT = 20
    SALES = 30
    REFUND = 40
    STOCKTAKING = 50


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderItem(_Model):
    orderitemid: Annotated[int, Field(ge=0, le=2**31 - 1)]  # the row's 0-based position in the order
    orderitemtype: Int32 = 10
    productid: Int64 | None = None
    sku: str | None = None
    productname: str | None = None
    quantity: Annotated[int, Field(gt=-(10**11), lt=10**11)]  # numeric(14, 3)
    vatvalue: Decimal = Field(ge=0, le=100, decimal_places=3)
    moneynetpriceperunit: Money | None = None
    moneyoriginalprice: Money | None = None
    moneydiscountedprice: Money | None = None
    moneydiscount: Money | None = None
    moneyitemtotal_net: Money
    moneyitemtotal_vat: Money
    vouchercode: str | None = None
    additionaldata: dict[str, str] = Field(default_factory=dict)


class Payment(_Model):
    name: str
    moneyamount: Money
    externalid: str | None = None
    reftype: str | None = None
    refid: str | None = None
    cardissuer: str | None = None
    additionaldata: dict[str, str] = Field(default_factory=dict)


class SitooOrder(_Model):
    orderid: OrderId
    eshopid: Int32 | None = None
    externalid: str | None = None
    creditorderid: Int64 | None = None
    registerid: str | None = None
    warehouseid: Int32 | None = None
    orderdate: Timestamp
    orderstateid: OrderState
    paymentstateid: PaymentState
    ordertypeid: OrderType
    currencycode: str | None = None
    moneyfinal_net: Money
    moneyfinal_vat: Money
    moneytotal_gross_roundoff: Money = Decimal("0.00")
    moneytotal_gross_all: Money
    additionaldata: dict[str, str] = Field(default_factory=dict)
    orderitems: list[OrderItem] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)

    @field_validator("orderitems")
    @classmethod
    def _unique_orderitemids(cls, items: list[OrderItem]) -> list[OrderItem]:
        seen: set[int] = set()
        for item in items:
            if item.orderitemid in seen:
                raise PydanticCustomError(
                    "orderitemid_unique",
                    "orderitemid {orderitemid} appears twice",
                    {"orderitemid": item.orderitemid},
                )
            seen.add(item.orderitemid)
        return items

    @property
    def receipt_id(self) -> str | None:
        return self.additionaldata.get("pos-receiptid")

    @property
    def store_externalid(self) -> str | None:
        return self.additionaldata.get("store-externalid")

    @property
    def pos_timezone(self) -> str | None:
        return self.additionaldata.get("pos-timezone")


class Store(_Model):
    storeid: int
    eshopid: int | None = None
    name: str
    externalid: str | None = None


class Warehouse(_Model):
    warehouseid: int
    warehousetype: int | None = None
    storeid: int | None = None
    name: str | None = None
    externalid: str | None = None
    currencycode: str | None = None


class Product(_Model):
    productid: int
    sku: str
    title: str | None = None
    vatvalue: Decimal | None = None
    moneyprice: Money | None = None
    activepos: bool | None = None


class WarehouseItem(_Model):
    warehouseitemid: int | None = None
    warehouseid: int
    sku: str
    decimaltotal: Quantity
    decimalreserved: Quantity = Decimal("0")
    decimalavailable: Quantity | None = None
    moneytotal: Money | None = None
    datelastmodified: Timestamp | None = None


class WarehouseItemLog(_Model):
    sku: str
    decimalquantity: Quantity
    decimaltotal: Quantity | None = None
    moneypricein: Money | None = None
    moneyvalue: Money | None = None


class WarehouseTransaction(_Model):
    warehousetransactionid: int
    warehouseid: int
    datecreated: Timestamp
    transactiontype: int
    description: str | None = None
    orderdeliveryid: int | None = None
    externalid: str | None = None
    reasoncode: str | None = None
    items: list[WarehouseItemLog] = Field(default_factory=list)


class VatGroup(_Model):
    vatvalue: Decimal
    moneytotal: Money
    moneytotalnet: Money
    moneytotalvat: Money


class ZReportPayment(_Model):
    name: str
    moneytotal: Money


class ZReport(_Model):
    zreportid: int
    registerid: str
    store_id: str | None = None
    eshopid: int | None = None
    datecreated: Timestamp
    dateopened: Timestamp | None = None
    dateadded: Timestamp | None = None
    moneysalestotal: Money
    moneysalestotalnet: Money
    numsales: int = 0
    moneyrefundtotal: Money = Decimal("0.00")
    moneyrefundtotalnet: Money = Decimal("0.00")
    numrefund: int = 0
    moneyroundoff: Money = Decimal("0.00")
    vatgroupssales: list[VatGroup] = Field(default_factory=list)
    vatgroupsrefund: list[VatGroup] = Field(default_factory=list)
    paymentssales: list[ZReportPayment] = Field(default_factory=list)
    paymentsrefund: list[ZReportPayment] = Field(default_factory=list)


class SitooPayloadError(ValueError):
    """A Sitoo record that does not match the contract: names the record, the field and the rule."""

    def __init__(self, record: str, field: str, rule: str, message: str) -> None:
        self.record, self.field, self.rule, self.detail = record, field, rule, message
        super().__init__(f"{record}: field '{field}' {message} (rule: {rule})")


M = TypeVar("M", bound=BaseModel)


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(record)"


def parse(model: type[M], payload: Any, record: str) -> M:
    """Validate ``payload`` as ``model``; the first problem becomes a ``SitooPayloadError``."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise SitooPayloadError(
            record=record,
            field=_field_path(tuple(err["loc"])),
            rule=err["type"],
            message=err["msg"].removeprefix("Value error, "),
        ) from None


def parse_order(payload: Any) -> SitooOrder:
    """Parse one order; the error names ``order <orderid>`` (or ``order ?`` if even that is missing)."""
    orderid = payload.get("orderid") if isinstance(payload, dict) else None
    return parse(SitooOrder, payload, record=f"order {orderid if orderid is not None else '?'}")
