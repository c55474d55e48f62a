"""Mapping tables (store→location, tender→payment method, VAT rate→tax code, SKU overrides,
document items) and their CSV seeds.

Seeds only fill gaps: a row ops have edited is never overwritten by a re-seed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg

from include.sitoo_erp.staging.db import one_row

SEED_DIR = Path(__file__).resolve().parents[2] / "mappings"

# file stem -> (table, columns, key column)
TABLES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "store_location": (
        "map_store_location",
        ("store_externalid", "location_id", "customer_id", "subsidiary_id", "timezone"),
        "store_externalid",
    ),
    "tender_payment": (
        "map_tender_payment",
        ("tender", "payment_method_id", "is_gift_card", "account_id", "via_journal"),
        "tender",
    ),
    "vat_tax_code": ("map_vat_tax_code", ("vat_rate", "tax_code_id", "tax_type_id"), "vat_rate"),
    "document_item": ("map_document_item", ("purpose", "item_id"), "purpose"),
    "sku_item": ("map_sku_item", ("sku", "item_id"), "sku"),
}


def write_mapping_csvs(rows: dict[str, list[dict]], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for stem, records in rows.items():
        _, columns, _ = TABLES[stem]
        with (directory / f"{stem}.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)


def load_mapping_csvs(
    conn: psycopg.Connection, directory: Path = SEED_DIR, actor: str = "seed"
) -> dict[str, int]:
    """Insert the CSV rows that are not mapped yet; returns rows inserted per file."""
    inserted: dict[str, int] = {}
    for stem, (table, columns, key) in TABLES.items():
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
