"""Check a mapping against the ERP's master data before it is saved.

A mapping that points at an item, location, payment method or tax code the ERP does not have (or
has switched off) is not a fix: every receipt it touches would be rejected by the ERP and land in
the queue again as ``erp_rejected``. So the page and the replay DAGs ask the ERP first (through the
``ErpAdapter``, one lookup per kind of record for a whole batch of mappings) and refuse with the
mapping key, the field and the rule broken.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from include.sitoo_erp.erp.adapter import MasterKind, MasterRecord

# map_document_item purposes that name something other than an item.
DOCUMENT_PURPOSE_KIND: dict[str, MasterKind] = {
    "pos_settlement_method": MasterKind.PAYMENT_METHOD,
    "pos_settlement_account": MasterKind.ACCOUNT,
    "stock_adjustment_account": MasterKind.ACCOUNT,
}
# Item types a SKU cannot be sold as (NetSuite ``itemtype``).
NOT_SELLABLE = {"Discount", "Subtotal", "Description", "Payment", "Markup"}


@dataclass(frozen=True)
class MappingChange:
    """One mapping row a person wants: ``table`` (e.g. ``map_sku_item``), its key and values."""

    table: str
    key: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    table: str
    key: str
    field: str
    value: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.table} {self.key}: {self.field} {self.value} refused ({self.rule}): {self.message}"


def references(change: MappingChange) -> list[tuple[str, MasterKind]]:
    """Which value fields of this mapping point at ERP master records, and of which kind."""
    if change.table == "map_sku_item":
        return [("item_id", MasterKind.ITEM)]
    if change.table == "map_store_location":
        return [
            ("location_id", MasterKind.LOCATION),
            ("customer_id", MasterKind.CUSTOMER),
            ("subsidiary_id", MasterKind.SUBSIDIARY),
        ]
    if change.table == "map_tender_payment":
        return [("payment_method_id", MasterKind.PAYMENT_METHOD), ("account_id", MasterKind.ACCOUNT)]
    if change.table == "map_vat_tax_code":
        return [("tax_code_id", MasterKind.TAX_CODE), ("tax_type_id", MasterKind.TAX_TYPE)]
    if change.table == "map_document_item":
        return [("item_id", DOCUMENT_PURPOSE_KIND.get(change.key, MasterKind.ITEM))]
    return []


def _value(change: MappingChange, name: str) -> str | None:
    raw = change.values.get(name)
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    return text or None


def judge(
    changes: Iterable[MappingChange], records: Mapping[MasterKind, Mapping[str, MasterRecord]]
) -> list[Refusal]:
    """The refusals for these mappings given the ERP's records (pure: no I/O)."""
    out: list[Refusal] = []
    for change in changes:

        def refuse(name: str, value: str, rule: str, message: str) -> None:
            out.append(Refusal(change.table, change.key, name, value, rule, message))  # noqa: B023

        found: dict[str, MasterRecord] = {}
        for name, kind in references(change):
            value = _value(change, name)
            if value is None:
                continue
            label = kind.value.replace("_", " ")
            record = records.get(kind, {}).get(value)
            if record is None:
                refuse(
                    name,
                    value,
                    f"erp.{kind.value}_exists",
                    f"the ERP has no {label} with internal id {value}",
                )
                continue
            if record.is_inactive:
                refuse(
                    name,
                    value,
                    f"erp.{kind.value}_active",
                    f"{label} {value} ({record.name}) is inactive in the ERP",
                )
                continue
            found[name] = record
        item = found.get("item_id")
        if change.table == "map_sku_item" and item is not None and item.item_type in NOT_SELLABLE:
            refuse(
                "item_id",
                item.id,
                "erp.item_sellable",
                f"item {item.id} ({item.name}) is a {item.item_type} item, not one a SKU can be sold as",
            )
        subsidiary = _value(change, "subsidiary_id")
        for name in ("location_id", "customer_id"):
            record = found.get(name)
            if (
                record is not None
                and subsidiary
                and record.subsidiary_id
                and record.subsidiary_id != subsidiary
            ):
                label = name.removesuffix("_id")
                refuse(
                    name,
                    record.id,
                    f"erp.{label}_subsidiary",
                    f"{label} {record.id} ({record.name}) belongs to subsidiary {record.subsidiary_id}, "
                    f"not {subsidiary}",
                )
        code = found.get("tax_code_id")
        if code is not None:
            try:
                rate = Decimal(str(change.key))
            except InvalidOperation:
                rate = None
            if rate is not None and code.rate is not None and code.rate != rate:
                refuse(
                    "tax_code_id",
                    code.id,
                    "erp.tax_code_rate",
                    f"tax code {code.id} ({code.name}) is {code.rate.normalize():f} %, "
                    f"this mapping is for VAT rate {rate.normalize():f} %",
                )
            tax_type = _value(change, "tax_type_id")
            if tax_type and code.tax_type_id and code.tax_type_id != tax_type:
                refuse(
                    "tax_type_id",
                    tax_type,
                    "erp.tax_code_type",
                    f"tax code {code.id} ({code.name}) is of tax type {code.tax_type_id}, not {tax_type}",
                )
    return out


def check_mappings(erp: Any, changes: Iterable[MappingChange]) -> list[Refusal]:
    """Ask the ERP (one lookup per kind of record) and return what it refuses; empty = all good."""
    changes = list(changes)
    wanted: dict[MasterKind, set[str]] = defaultdict(set)
    for change in changes:
        for name, kind in references(change):
            value = _value(change, name)
            if value is not None:
                wanted[kind].add(value)
    records = {kind: erp.lookup_master(kind, ids) for kind, ids in wanted.items()}
    return judge(changes, records)
