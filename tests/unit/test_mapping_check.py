"""The rules a mapping must meet against the ERP's master records (pure: records given as data)."""

from __future__ import annotations

from decimal import Decimal

from include.sitoo_erp.erp.adapter import MasterKind, MasterRecord
from include.sitoo_erp.operations.mapping_check import MappingChange, judge

RECORDS = {
    MasterKind.ITEM: {
        "100001": MasterRecord(MasterKind.ITEM, "100001", "SKU-000001", item_type="InvtPart"),
        "100002": MasterRecord(MasterKind.ITEM, "100002", "SKU-000002", is_inactive=True),
    },
    MasterKind.LOCATION: {"1001": MasterRecord(MasterKind.LOCATION, "1001", "Store 001", subsidiary_id="1")},
    MasterKind.CUSTOMER: {"5001": MasterRecord(MasterKind.CUSTOMER, "5001", "Walk-in", subsidiary_id="1")},
    MasterKind.SUBSIDIARY: {
        "1": MasterRecord(MasterKind.SUBSIDIARY, "1", "UK"),
        "2": MasterRecord(MasterKind.SUBSIDIARY, "2", "SE"),
    },
    MasterKind.TAX_CODE: {
        "45": MasterRecord(MasterKind.TAX_CODE, "45", "SE-VAT-12", rate=Decimal("12.0"), tax_type_id="7")
    },
    MasterKind.TAX_TYPE: {"7": MasterRecord(MasterKind.TAX_TYPE, "7", "VAT")},
}


def test_a_good_mapping_passes():
    assert judge([MappingChange("map_sku_item", "SKU-9", {"item_id": "100001"})], RECORDS) == []
    assert (
        judge(
            [MappingChange("map_vat_tax_code", "12.000", {"tax_code_id": "45", "tax_type_id": "7"})], RECORDS
        )
        == []
    )


def test_refusals_name_key_field_and_rule():
    refusals = judge(
        [
            MappingChange("map_sku_item", "SKU-000164", {"item_id": "100164"}),
            MappingChange("map_sku_item", "SKU-2", {"item_id": "100002"}),
            MappingChange("map_vat_tax_code", "12.5", {"tax_code_id": "45", "tax_type_id": "7"}),
            MappingChange(
                "map_store_location",
                "ST001",
                {"location_id": "1001", "customer_id": "5001", "subsidiary_id": "2"},
            ),
        ],
        RECORDS,
    )
    assert [(r.key, r.field, r.rule) for r in refusals] == [
        ("SKU-000164", "item_id", "erp.item_exists"),
        ("SKU-2", "item_id", "erp.item_active"),
        ("12.5", "tax_code_id", "erp.tax_code_rate"),
        ("ST001", "location_id", "erp.location_subsidiary"),
        ("ST001", "customer_id", "erp.customer_subsidiary"),
    ]
    assert str(refusals[0]) == (
        "map_sku_item SKU-000164: item_id 100164 refused (erp.item_exists): the ERP has no item with internal id 100164"
    )
    assert "is 12 %, this mapping is for VAT rate 12.5 %" in str(refusals[2])
