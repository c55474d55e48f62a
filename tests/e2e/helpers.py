"""Assertions every end-to-end test makes: the design's invariants, read from the real systems."""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal

from include.sandbox.catalogue import UNMAPPED_TENDER
from include.sandbox.generator import is_finalised
from include.sitoo_erp.staging.db import connect_url
from include.sitoo_erp.staging.orders import state_counts
from tests.e2e.conftest import at


def ledger(stack) -> dict[str, int]:
    with connect_url(stack.database_url) as conn:
        return state_counts(conn)


def assert_invariants(stack, settled: bool = True) -> dict[str, int]:
    """Invariant 1 (nothing lost) and 2 (exactly once), checked against the ERP itself.

    ``settled=False`` after a run that failed mid-posting: the ERP may then hold documents whose
    success never reached us (timeout after commit); they are still *held* here and the next run
    re-PUTs the same externalId. So: every logged document is in the ERP, none twice.
    """
    counts = ledger(stack)
    assert counts["seen"] == counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"], (
        counts
    )
    per_key = stack.netsuite.count_documents_by_external_id()
    duplicates = {k: n for k, n in per_key.items() if n != 1}
    assert not duplicates, f"duplicate ERP documents: {duplicates}"
    with connect_url(stack.database_url) as conn:
        logged = dict(conn.execute("select external_id, erp_id from sitoo_erp.posting_log").fetchall())
        posted = conn.execute("select count(*) from sitoo_erp.order_state where state = 'posted'").fetchone()[
            0
        ]
        journals = {
            r[0]
            for r in conn.execute(
                "select tender_journal_external_id from sitoo_erp.posting_log "
                "where tender_journal_external_id is not null"
            )
        }
    sales_docs = {k for k in per_key if k.startswith(("SITOO-S-", "SITOO-R-"))}
    tender_journals = {k for k in per_key if k.startswith("SITOO-TJ-")}
    if settled:
        assert sales_docs == set(logged), sales_docs ^ set(logged)
        assert tender_journals == journals, tender_journals ^ journals  # invariant 11, exactly once
    else:
        assert set(logged) <= sales_docs, set(logged) - sales_docs
        assert journals <= tender_journals, journals - tender_journals
    assert posted == len(logged)
    return counts


def visible_orders(stack) -> list[dict]:
    ds, now = stack.dataset, stack.sitoo.now
    return [ds.order(oid) for oid in range(10_001, ds.max_orderid + 1) if ds.row(oid)["dateadded"] <= now]


def expected_quarantine(stack, order: dict) -> str | None:
    """Why the gate must stop this finalised receipt, from the payload alone (None = it posts)."""
    products = stack.dataset.catalogue.product_by_sku()
    for row in order.get("orderitems") or []:
        product = products.get(row.get("sku"))
        if product is not None and not product.in_erp:
            return "unknown_sku"
    if any(p.get("name") == UNMAPPED_TENDER for p in order.get("payments") or []):
        return "tender_mismatch"
    link = order.get("creditorderid")
    try:
        original = stack.dataset.order(int(link)) if link else None
    except KeyError:  # a planted orphan links to an order Sitoo never had: the gate's own case
        original = None
    if original is not None and expected_quarantine(stack, original) is not None:
        return "orphaned_return"  # its sale is quarantined: an exception of its own (issue 11, point 3)
    return None


def states_by_order(stack) -> dict[int, tuple[str, str]]:
    with connect_url(stack.database_url) as conn:
        return {
            o: (s, r) for o, s, r in conn.execute("select orderid, state, reason from sitoo_erp.order_state")
        }


def open_exceptions(stack) -> list[tuple]:
    with connect_url(stack.database_url) as conn:
        return conn.execute(
            "select kind, orderid, sku, message, occurrences from sitoo_erp.exception where status = 'open' "
            "order by exception_id"
        ).fetchall()


def finalised(orders: list[dict]) -> list[dict]:
    return [o for o in orders if is_finalised(o)]


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def kinds(items) -> Counter:
    return Counter(items)


# -- planting receipts the gate must stop ------------------------------------------------------


def plant_orphaned_return(stack) -> int:
    """A return whose original sale Sitoo never sent us."""
    ds = stack.dataset
    template = next(
        ds.order(oid)
        for oid in range(10_001, ds.max_orderid + 1)
        if ds.order(oid).get("creditorderid")
        and "pos-refundsales-orderid" not in ds.order(oid)["additionaldata"]
    )
    payload = copy.deepcopy(template)
    payload["creditorderid"] = 999_999
    payload["additionaldata"]["pos-originalsales-orderid"] = "999999"
    payload["additionaldata"]["pos-receiptid"] = "ORPHAN-RETURN-1"
    return stack.sitoo.add_order(
        payload=payload, orderdate=at(9, 30).timestamp(), dateadded=at(9, 31).timestamp()
    )


def clean_sale(stack) -> dict:
    ds = stack.dataset
    return copy.deepcopy(
        next(
            ds.order(oid)
            for oid in range(10_001, ds.max_orderid + 1)
            if is_finalised(ds.order(oid))
            and not expected_quarantine(stack, ds.order(oid))
            and not ds.order(oid).get("creditorderid")
            and len(ds.order(oid)["payments"]) == 1
        )
    )


def plant(stack, payload: dict, receipt: str, minute: int) -> int:
    payload["additionaldata"]["pos-receiptid"] = receipt
    return stack.sitoo.add_order(
        payload=payload, orderdate=at(9, minute).timestamp(), dateadded=at(9, minute + 1).timestamp()
    )


def plant_unknown_sku(stack) -> int:
    """A sale of a SKU the ERP item master does not have."""
    payload = clean_sale(stack)
    row = payload["orderitems"][0]
    missing = [p for p in stack.dataset.catalogue.products if not p.in_erp]
    # Any SKU the ERP lacks will do; one of the row's VAT rate if the catalogue has it.
    unknown = next((p for p in missing if p.vat_rate == int(row["vatvalue"])), missing[0])
    row["sku"], row["productid"] = unknown.sku, unknown.productid
    return plant(stack, payload, "UNKNOWN-SKU-1", 40)


def plant_tender_mismatch(stack) -> int:
    """A sale paid with a tender the ERP has no payment method for."""
    payload = clean_sale(stack)
    payload["payments"][0]["name"] = "Foreign Currency"
    return plant(stack, payload, "FOREIGN-TENDER-1", 45)


def render_ops_page(conn) -> str:
    """The operations page as its route renders it (same template, same data), without a web server."""
    from include.sitoo_erp.operations import queries
    from plugins.sitoo_erp_ops import app as ops

    filters = queries.ExceptionFilters()
    return ops.env.get_template("page.html").render(
        prefix=ops.URL_PREFIX,
        user="ops",
        can_edit=False,
        filters=filters,
        filter_query="",
        with_filter=lambda name, value: "",
        min_ages=list(queries.MIN_AGES),
        mapping_forms=ops.MAPPING_FORMS,
        required_fields=ops.REQUIRED_FIELDS,
        history_status=None,
        history_statuses=queries.HISTORY_STATUSES,
        msg=None,
        err=None,
        **ops._page_data(conn, filters, None),
    )
