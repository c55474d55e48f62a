"""Mapping tables (store→location, tender→payment method, VAT rate→tax code, SKU overrides,
document items) and their CSV seeds.

Seeds only fill gaps: a row ops have edited is never overwritten by a re-seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import psycopg

from include.sitoo_erp.staging.db import one_row

SEED_DIR = Path(__file__).resolve().parents[2] / "mappings"


@dataclass(frozen=True)
class MappingTable:
    """One mapping table as everything that seeds, edits, offers or checks it needs to know it: the
    CSV seed, the operations page and the mapping DAG's form, exception resolution."""

    table: str  # sitoo_erp.<table>
    key: str  # its key column
    required: tuple[str, ...]  # value columns every row must have (ERP internal ids)
    optional: tuple[str, ...]  # value columns a row may leave to their default
    stem: str  # the CSV seed file: include/mappings/<stem>.csv
    param: str  # the mapping DAG's trigger-form list
    form_key: str  # the key's name in that form
    cause: str  # how exception subject keys name this table's keys (``…:sku=SKU-1``)
    touches: str  # SQL over exception ``e``: the receipts a key of this table touches (``%(key)s``)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.key, *self.required, *self.optional)

    @property
    def editable(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


# In the order the mapping DAG's form offers them (and saves them).
MAPPING_TABLES: tuple[MappingTable, ...] = (
    MappingTable(
        "map_sku_item",
        "sku",
        ("item_id",),
        (),
        stem="sku_item",
        param="sku_items",
        form_key="sku",
        cause="sku",
        touches="exists (select 1 from sitoo_erp.sitoo_order_row r where r.orderid = e.orderid and r.sku = %(key)s)",
    ),
    MappingTable(
        "map_store_location",
        "store_externalid",
        ("location_id", "customer_id", "subsidiary_id"),
        ("timezone",),
        stem="store_location",
        param="store_locations",
        form_key="store",
        cause="store",
        touches="e.store_externalid = %(key)s",
    ),
    MappingTable(
        "map_tender_payment",
        "tender",
        ("payment_method_id",),
        ("is_gift_card", "account_id", "via_journal"),
        stem="tender_payment",
        param="tender_payments",
        form_key="tender",
        cause="tender",
        touches="exists (select 1 from sitoo_erp.sitoo_payment p where p.orderid = e.orderid and p.name = %(key)s)",
    ),
    MappingTable(
        "map_vat_tax_code",
        "vat_rate",
        ("tax_code_id", "tax_type_id"),
        (),
        stem="vat_tax_code",
        param="vat_tax_codes",
        form_key="vat_rate",
        cause="vat_rate",
        touches=(
            "exists (select 1 from sitoo_erp.sitoo_order_row r where r.orderid = e.orderid "
            "and r.vat_rate = %(key)s::numeric)"
        ),
    ),
    MappingTable(
        "map_document_item",
        "purpose",
        ("item_id",),
        (),
        stem="document_item",
        param="document_items",
        form_key="purpose",
        cause="document_item",
        touches="true",
    ),
)
BY_TABLE: dict[str, MappingTable] = {m.table: m for m in MAPPING_TABLES}
BY_STEM: dict[str, MappingTable] = {m.stem: m for m in MAPPING_TABLES}
BY_PARAM: dict[str, MappingTable] = {m.param: m for m in MAPPING_TABLES}


def write_mapping_csvs(rows: dict[str, list[dict]], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stem, records in rows.items():
        columns = BY_STEM[stem].columns
        with (directory / f"{stem}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)


def load_mapping_csvs(
    conn: psycopg.Connection, directory: Path = SEED_DIR, actor: str = "seed"
) -> dict[str, int]:
    """Insert the CSV rows that are not mapped yet; returns rows inserted per file."""
    inserted: dict[str, int] = {}
    for m in MAPPING_TABLES:
        stem, table, columns, key = m.stem, m.table, m.columns, m.key
        path = directory / f"{stem}.csv"
        if not path.exists():
            continue
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            # A seed written before a column existed (e.g. tender account_id) leaves it to its default.
            present = [c for c in columns if c in (reader.fieldnames or ())]
            records = [(*(row[c] for c in present), actor) for row in reader]
        if not records:
            inserted[stem] = 0
            continue
        cols = ", ".join((*present, "updated_by"))
        marks = ", ".join(["%s"] * (len(present) + 1))
        with conn.transaction(), conn.cursor() as cur:
            before = one_row(cur.execute(f"select count(*) from sitoo_erp.{table}"))[0]
            cur.executemany(
                f"insert into sitoo_erp.{table} ({cols}) values ({marks}) on conflict ({key}) do nothing",
                records,
            )
            after = one_row(cur.execute(f"select count(*) from sitoo_erp.{table}"))[0]
        inserted[stem] = after - before
    return inserted
