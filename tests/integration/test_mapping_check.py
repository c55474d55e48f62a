"""Mappings are checked against the ERP's master data (the NetSuite sandbox, through the real hook)
before they are saved, all or none; what a saved mapping fixes is closed at once."""

from __future__ import annotations

import re

import pytest

from include.sandbox.catalogue import build_catalogue
from include.sandbox.netsuite import NetSuiteSandbox
from include.sandbox.stack import NETSUITE_CERTIFICATE_ID, NETSUITE_CLIENT_ID
from include.sitoo_erp.erp import get_erp_adapter
from include.sitoo_erp.erp.adapter import MasterKind
from include.sitoo_erp.operations.actions import MappingRefused, save_mappings
from include.sitoo_erp.operations.mapping_check import MappingChange, check_mappings
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception
from tests.integration.connections import netsuite_conn


@pytest.fixture(scope="module")
def netsuite():
    # Seed 42: SKU-000164 is not in the ERP, so item 100164 (the DAG doc's example) does not exist.
    catalogue = build_catalogue(seed=42, stores=2)
    master = catalogue.erp_master_data()
    master["locations"].append(
        {"id": "1999", "name": "Closed store", "externalid": "ST999", "isinactive": "T"}
    )
    master["subsidiaries"].append({"id": "2", "name": "Other Ltd"})
    with NetSuiteSandbox(
        master=master, client_id=NETSUITE_CLIENT_ID, certificate_id=NETSUITE_CERTIFICATE_ID
    ) as sandbox:
        yield sandbox, catalogue


@pytest.fixture
def erp(netsuite, monkeypatch):
    sandbox, _ = netsuite
    netsuite_conn(monkeypatch, sandbox, timeout=5)
    hook = get_erp_adapter("netsuite_default")
    yield hook
    hook.close()


def _counts(conn) -> tuple:
    return (
        conn.execute("select count(*) from sitoo_erp.map_sku_item").fetchone()[0],
        conn.execute("select count(*) from sitoo_erp.map_vat_tax_code").fetchone()[0],
        conn.execute("select count(*) from sitoo_erp.audit_log").fetchone()[0],
    )


def test_the_hook_reads_master_records_by_id(erp, netsuite):
    _, catalogue = netsuite
    active = next(p for p in catalogue.products if p.in_erp and not p.erp_inactive)
    inactive = next(p for p in catalogue.products if p.erp_inactive)
    items = erp.lookup_master(MasterKind.ITEM, [active.erp_item_id, inactive.erp_item_id, "100164", "abc"])
    assert set(items) == {active.erp_item_id, inactive.erp_item_id}
    assert items[active.erp_item_id].name == active.sku and not items[active.erp_item_id].is_inactive
    assert items[inactive.erp_item_id].is_inactive
    codes = erp.lookup_master(MasterKind.TAX_CODE, ["45"])
    assert codes["45"].rate == 12 and codes["45"].tax_type_id == "7"
    assert erp.lookup_master(MasterKind.LOCATION, ["1999"])["1999"].is_inactive


def test_the_doc_example_item_100164_is_refused_naming_key_field_and_rule(staging_conn, erp):
    with pytest.raises(MappingRefused) as refused:
        save_mappings(
            staging_conn,
            erp,
            [MappingChange("map_sku_item", "SKU-000164", {"item_id": "100164"})],
            "alice",
            "replay_dag",
        )
    message = str(refused.value)
    assert "SKU-000164" in message and "item_id 100164" in message and "erp.item_exists" in message
    assert "nothing saved" in message
    assert _counts(staging_conn) == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (MappingChange("map_sku_item", "SKU-X", {"item_id": "INACTIVE"}), "item_id", "erp.item_active"),
        (MappingChange("map_sku_item", "SKU-X", {"item_id": "LOYALTY"}), "item_id", "erp.item_sellable"),
        (
            MappingChange(
                "map_store_location",
                "ST999",
                {"location_id": "1999", "customer_id": "5001", "subsidiary_id": "1"},
            ),
            "location_id",
            "erp.location_active",
        ),
        (
            MappingChange(
                "map_store_location",
                "ST001",
                {"location_id": "1001", "customer_id": "5001", "subsidiary_id": "2"},
            ),
            "location_id",
            "erp.location_subsidiary",
        ),
        (
            MappingChange("map_tender_payment", "Foreign Currency", {"payment_method_id": "99"}),
            "payment_method_id",
            "erp.payment_method_exists",
        ),
        (
            MappingChange("map_vat_tax_code", "12.5", {"tax_code_id": "45", "tax_type_id": "7"}),
            "tax_code_id",
            "erp.tax_code_rate",
        ),
        (
            MappingChange("map_vat_tax_code", "12", {"tax_code_id": "45", "tax_type_id": "8"}),
            "tax_type_id",
            "erp.tax_type_exists",
        ),
    ],
)
def test_each_kind_of_master_record_is_checked(erp, netsuite, change, field, rule):
    _, catalogue = netsuite
    substitutes = {
        "INACTIVE": next(p.erp_item_id for p in catalogue.products if p.erp_inactive),
        "LOYALTY": next(i["id"] for i in catalogue.erp_master_data()["items"] if i["itemtype"] == "Discount"),
    }
    values = {k: substitutes.get(v, v) for k, v in change.values.items()}
    refusals = check_mappings(erp, [MappingChange(change.table, change.key, values)])
    assert (change.key, field, rule) in [(r.key, r.field, r.rule) for r in refusals]
    assert all(r.key == change.key and r.rule in str(r) for r in refusals)


def test_several_mappings_all_or_none_and_what_they_fix_closes_at_once(staging_conn, erp, netsuite):
    _, catalogue = netsuite
    good_item = next(p for p in catalogue.products if p.in_erp and not p.erp_inactive)
    good = [
        MappingChange("map_sku_item", "SKU-000164", {"item_id": good_item.erp_item_id}),
        MappingChange("map_vat_tax_code", "12.5", {"tax_code_id": "45", "tax_type_id": "7"}),
    ]
    # One refusal among them: nothing is saved.
    with pytest.raises(
        MappingRefused, match=re.escape("map_vat_tax_code 12.500: tax_code_id 45 refused (erp.tax_code_rate)")
    ):
        save_mappings(staging_conn, erp, good, "alice", "ui")
    assert _counts(staging_conn) == (0, 0, 0)

    # Stale causes the SKU mapping removes: the gate's unknown SKU, a posting-time missing mapping, and
    # an ERP rejection that named the old (wrong) item; an unrelated exception stays open.
    from include.sitoo_erp.operations.actions import upsert_mapping

    upsert_mapping(staging_conn, "map_sku_item", "SKU-000164", {"item_id": "100164"}, "seed", "test")
    ids = {
        "gate": record_exception(
            staging_conn,
            ExceptionKind.UNKNOWN_SKU,
            "order:7:unknown_sku:sku=SKU-000164",
            "gate.sku",
            "x",
            orderid=7,
            sku="SKU-000164",
        ),
        "posting": record_exception(
            staging_conn,
            ExceptionKind.MISSING_MAPPING,
            "order:8:missing_mapping:sku=SKU-000164",
            "mapping.sku",
            "no sku mapping",
            orderid=8,
        ),
        "other": record_exception(
            staging_conn,
            ExceptionKind.UNKNOWN_SKU,
            "order:9:unknown_sku:sku=SKU-0001640",
            "gate.sku",
            "x",
            orderid=9,
            sku="SKU-0001640",
        ),
    }
    saved = save_mappings(
        staging_conn,
        erp,
        [
            MappingChange("map_sku_item", "SKU-000164", {"item_id": good_item.erp_item_id}),
            MappingChange("map_vat_tax_code", "12", {"tax_code_id": "45", "tax_type_id": "7"}),
        ],
        "alice",
        "replay_dag",
        note="new season",
    )
    assert [s["key"] for s in saved] == ["SKU-000164", "12.000"]
    assert sorted(saved[0]["closed"]) == sorted([ids["gate"], ids["posting"]])
    status = dict(
        staging_conn.execute(
            "select exception_id, status from sitoo_erp.exception where exception_id = any(%s)",
            (list(ids.values()),),
        ).fetchall()
    )
    assert status == {ids["gate"]: "resolved", ids["posting"]: "resolved", ids["other"]: "open"}
    assert staging_conn.execute(
        "select item_id from sitoo_erp.map_sku_item where sku = 'SKU-000164'"
    ).fetchone() == (good_item.erp_item_id,)
    audit = staging_conn.execute(
        "select entity, entity_key, action, actor, note from sitoo_erp.audit_log where source = 'replay_dag' "
        "order by audit_id"
    ).fetchall()
    assert audit == [
        ("map_sku_item", "SKU-000164", "update", "alice", "new season"),
        ("map_vat_tax_code", "12.000", "insert", "alice", "new season"),
    ]
