"""The quality gate on a real PostgreSQL: GX suites over the ready batch, quarantine, exceptions, systemic."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from include.sandbox.catalogue import UNMAPPED_TENDER
from include.sandbox.generator import generate_dataset, receipt_vat_by_rate, row_vat_by_rate
from include.sitoo_erp import loyalty
from include.sitoo_erp.posting.classify import classify
from include.sitoo_erp.quality.gate import GateOptions, run_gate
from include.sitoo_erp.quality.rules import RESULT_COLUMNS
from include.sitoo_erp.quality.suites import ALL_SUITES
from include.sitoo_erp.staging.mappings import load_mapping_csvs
from include.sitoo_erp.staging.orders import stage_orders, state_counts

D = Decimal
UNKNOWN_SKU = "ZZ-NOT-IN-ERP-1"


@pytest.fixture(scope="module")
def dataset():
    # A seed whose day holds every receipt kind the clean-batch test checks for (seed 42 of the
    # current generator draws no exchange in 300 receipts).
    return generate_dataset(seed=7, stores=5, days=1, receipts_per_store_day=60)


@pytest.fixture(scope="module")
def clean_payloads(dataset):
    """Generated orders with the generator's own faults neutralised (unmapped tender -> Card)."""
    out = []
    for o in dataset.iter_orders():
        for p in o["payments"]:
            if p["name"] == UNMAPPED_TENDER:
                p["name"] = "Card"
        out.append(o)
    return out


def _seed(conn, dataset, unknown_in_erp: bool = True) -> str:
    """Mappings from the CSV seeds, erp_item from the catalogue; returns an inactive SKU."""
    load_mapping_csvs(conn)
    cat = dataset.catalogue
    rows = [
        (p.sku, p.erp_item_id, p.erp_inactive)
        for p in [*cat.products, cat.gift_card]
        if p.in_erp or unknown_in_erp
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into sitoo_erp.erp_item (sku, item_id, is_inactive) values (%s, %s, %s)", rows
        )
    return next(p.sku for p in cat.products if p.erp_inactive)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _plain_sales(payloads: list[dict], n: int) -> list[dict]:
    """Finalised card sales nobody refers to (no return/exchange links, no loyalty, no round-off)."""
    referenced = set()
    for o in payloads:
        ad = o.get("additionaldata") or {}
        referenced.update({o.get("creditorderid"), *(ad.get(k) for k in ad if k.startswith("pos-ref"))})
        referenced.add(ad.get("pos-originalsales-orderid"))
    referenced = {int(x) for x in referenced if x and str(x).isdigit()}
    out = [
        o
        for o in payloads
        if (o["orderstateid"], o["paymentstateid"], o["ordertypeid"]) == (10, 20, 10)
        and not o.get("creditorderid")
        and not any(
            k.startswith(("pos-originalsales", "pos-refund", "crm-", "customcrm-"))
            for k in o.get("additionaldata") or {}
        )
        and not any(loyalty.bonus_cheque(r.get("additionaldata") or {}) for r in o["orderitems"])
        and o["orderid"] not in referenced
        and D(o["moneytotal_gross_roundoff"]) == 0
        and len(o["payments"]) == 1
        and o["payments"][0]["name"] in ("Card", "Klarna")
        and all(r.get("sku") != "GIFTCARD" for r in o["orderitems"])
    ]
    assert len(out) >= n
    return out[:n]


def _state(conn, orderid: int) -> tuple[str, str]:
    return conn.execute(
        "select state, reason from sitoo_erp.order_state where orderid = %s", (orderid,)
    ).fetchone()


def _ready(conn) -> int:
    return conn.execute("select count(*) from sitoo_erp.ready_receipt").fetchone()[0]


def _exceptions(conn, orderid: int) -> list[tuple]:
    return conn.execute(
        """select kind, subject_key, rule, message, status, occurrences, field, sku
             from sitoo_erp.exception where orderid = %s and starts_with(rule, 'gx:') order by exception_id""",
        (orderid,),
    ).fetchall()


def test_every_rule_returns_the_contract_columns_and_binds_like_gx():
    for suite in ALL_SUITES:
        assert suite.version
        suite.check()
        for rule in suite.rules:
            sql = rule.for_batch(GateOptions().tokens())
            assert "{" not in sql and "__PER_" not in sql and "__HEADER_" not in sql
            head = sql.lower().split("from", 1)[0]
            for col in RESULT_COLUMNS:
                assert col in sql
            assert "orderid" in head


def test_clean_generated_batch_passes_every_suite(staging_conn, staging_url, dataset, clean_payloads):
    _seed(staging_conn, dataset)
    stage_orders(staging_conn, clean_payloads)
    classify(staging_conn)
    ready = _ready(staging_conn)
    assert ready > 250

    result = run_gate(staging_url, staging_conn, run_label="clean")

    why = staging_conn.execute(
        "select orderid, rule, message from sitoo_erp.exception where starts_with(rule, 'gx:') order by orderid"
    ).fetchall()
    assert result.success and not result.systemic and result.gx_errors == [], why
    assert result.suite_success == {
        "orphaned_transactions": True,
        "sku_mismatches": True,
        "tax_rounding": True,
    }
    assert (result.batch_size, result.failed_receipts, result.quarantined) == (ready, 0, 0)
    assert _ready(staging_conn) == ready
    # The batch really contains penny-rounding, loyalty, cash round-off, gift-card, return and exchange receipts.
    finalised = [o for o in clean_payloads if (o["orderstateid"], o["paymentstateid"]) == (10, 20)]
    penny = [
        o
        for o in finalised
        if any(v != row_vat_by_rate(o)[r] for r, (_, v) in receipt_vat_by_rate(o).items())
    ]
    bonus = [o for o in finalised if any(loyalty.bonus_cheque(r["additionaldata"]) for r in o["orderitems"])]
    exchange = [o for o in finalised if any(p["name"] == "Exchange" for p in o["payments"])]
    returns = [o for o in finalised if o.get("creditorderid")]
    assert penny and bonus and exchange and returns
    for o in penny + bonus + exchange + returns:
        assert _state(staging_conn, o["orderid"]) == ("held", "ready to post"), o["orderid"]
    run = staging_conn.execute(
        "select suite, batch_size, failed_receipts, success, systemic, result->>'batch_size' from sitoo_erp.gate_run"
    ).fetchall()
    assert run == [
        (
            "orphaned_transactions@1.1.0,sku_mismatches@1.1.0,tax_rounding@2.1.0",
            ready,
            0,
            True,
            False,
            str(ready),
        )
    ]


def _plant(payloads: list[dict], inactive_sku: str) -> tuple[list[dict], dict[str, int]]:
    payloads = copy.deepcopy(payloads)
    by_id = {o["orderid"]: o for o in payloads}
    victims = _plain_sales(payloads, 6)
    planted: dict[str, int] = {}

    o = victims[0]
    o["orderitems"][0]["sku"] = UNKNOWN_SKU
    planted["unknown_sku"] = o["orderid"]

    o = victims[1]
    o["orderitems"][0]["sku"] = inactive_sku
    planted["inactive_item"] = o["orderid"]

    o = victims[2]
    o["payments"][0]["name"] = UNMAPPED_TENDER
    planted["unmapped_tender"] = o["orderid"]

    o = victims[3]
    o["payments"][0]["moneyamount"] = _money(D(o["payments"][0]["moneyamount"]) + D("1.00"))
    planted["payments_total"] = o["orderid"]

    o = victims[4]
    row = max(o["orderitems"], key=lambda r: D(r["moneyitemtotal_net"]))
    row["moneyitemtotal_vat"] = _money(D(row["moneyitemtotal_vat"]) + D("0.50"))
    planted["tax"] = o["orderid"]

    o = victims[5]
    o["moneytotal_gross_roundoff"] = "0.10"
    planted["gross"] = o["orderid"]

    ret = next(
        o
        for o in payloads
        if o.get("creditorderid") and not o["additionaldata"].get("pos-refundsales-orderid")
    )
    ret["creditorderid"] = 987654321
    ret["additionaldata"]["pos-originalsales-orderid"] = "987654321"
    planted["orphaned_return"] = ret["orderid"]
    assert all(by_id[i] for i in planted.values())
    return payloads, planted


EXPECTED = {
    "unknown_sku": ("unknown_sku", "sku_mismatches.sku_has_erp_item", UNKNOWN_SKU),
    "inactive_item": ("inactive_item", "sku_mismatches.erp_item_active", None),
    "unmapped_tender": ("tender_mismatch", "sku_mismatches.tender_mapped", UNMAPPED_TENDER),
    "payments_total": ("tender_mismatch", "orphaned_transactions.payments_equal_total", "money_gross"),
    "tax": ("tax_beyond_tolerance", "tax_rounding.vat_per_rate_within_tolerance", "exceeds tolerance"),
    "gross": ("tax_beyond_tolerance", "tax_rounding.net_tax_roundoff_equals_gross", "money_roundoff 0.10"),
    "orphaned_return": ("orphaned_return", "orphaned_transactions.return_original_known", "987654321"),
}


@pytest.fixture
def planted_db(staging_conn, staging_url, dataset, clean_payloads):
    inactive = _seed(staging_conn, dataset)
    payloads, planted = _plant(clean_payloads, inactive)
    stage_orders(staging_conn, payloads)
    classify(staging_conn)
    return staging_conn, staging_url, planted, inactive


def test_each_planted_fault_is_quarantined_with_kind_key_and_rule(planted_db):
    conn, url, planted, inactive = planted_db
    ready = _ready(conn)
    result = run_gate(url, conn, run_label="faults")

    assert not result.success and not result.systemic
    assert result.failed_receipts == len(planted) == result.quarantined
    assert _ready(conn) == ready - len(planted)  # every clean receipt stays ready to post
    for name, orderid in planted.items():
        kind, rule_id, key = EXPECTED[name]
        key = key or inactive
        state, reason = _state(conn, orderid)
        assert state == "quarantined", name
        assert reason.startswith(f"quality gate {rule_id} [{kind}]"), reason
        assert key in reason, (name, reason)
        excs = _exceptions(conn, orderid)
        assert len(excs) == 1, (name, excs)
        e_kind, subject, rule, message, status, occurrences, _, _ = excs[0]
        assert (e_kind, status, occurrences) == (kind, "open", 1)
        assert subject.startswith(f"order:{orderid}:{kind}:")
        assert (
            rule.startswith("gx:") and rule.endswith(rule_id.split(".")[1]) and rule_id.split(".")[0] in rule
        )
        assert key in message and f"order {orderid}" in message
        assert orderid in result.samples[rule_id]
    assert result.rule_counts == {EXPECTED[n][1]: 1 for n in planted}
    assert result.suite_success == {
        "orphaned_transactions": False,
        "sku_mismatches": False,
        "tax_rounding": False,
    }
    assert sum(result.stores_affected.values()) == len(planted)
    summary = result.summary()
    assert summary["failed_receipts"] == len(planted) and summary["kind_counts"]["tender_mismatch"] == 2
    sku_exc = _exceptions(conn, planted["unknown_sku"])[0]
    assert sku_exc[6:] == ("sku", UNKNOWN_SKU)
    counts = state_counts(conn)
    assert counts["seen"] == counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"]


def test_rerun_is_safe_and_same_failure_twice_is_one_exception(planted_db):
    conn, url, planted, _ = planted_db
    first = run_gate(url, conn)
    again = run_gate(url, conn)  # quarantined receipts left the batch: nothing new
    assert again.failed_receipts == 0 and again.batch_size == first.batch_size - len(planted)
    classify(conn)  # quarantined receipts go back to "ready to post"; the gate sees them again
    second = run_gate(url, conn)
    assert second.failed_receipts == len(planted)
    for orderid in planted.values():
        excs = _exceptions(conn, orderid)
        assert [(e[4], e[5]) for e in excs] == [("open", 2)]
        assert _state(conn, orderid)[0] == "quarantined"
    assert conn.execute("select count(*) from sitoo_erp.gate_run").fetchone() == (3,)


def test_added_mapping_lets_the_receipt_pass_and_resolves_its_exception(planted_db):
    conn, url, planted, _ = planted_db
    run_gate(url, conn)
    orderid = planted["unknown_sku"]
    assert _state(conn, orderid)[0] == "quarantined"
    conn.execute(
        "insert into sitoo_erp.map_sku_item (sku, item_id, updated_by) values (%s, '777', 'ops')",
        (UNKNOWN_SKU,),
    )
    classify(conn)
    result = run_gate(url, conn)
    assert _state(conn, orderid) == ("held", "ready to post")
    excs = _exceptions(conn, orderid)
    assert [(e[0], e[4]) for e in excs] == [("unknown_sku", "resolved")]
    assert result.resolved == 1 and result.failed_receipts == len(planted) - 1
    note = conn.execute(
        "select resolution_note from sitoo_erp.exception where orderid = %s", (orderid,)
    ).fetchone()
    assert "cause gone" in note[0]


def test_systemic_failure_quarantines_nothing_new(staging_conn, staging_url, dataset, clean_payloads):
    _seed(staging_conn, dataset)
    staging_conn.execute(
        "delete from sitoo_erp.map_store_location where store_externalid in ('ST001', 'ST002')"
    )
    stage_orders(staging_conn, clean_payloads)
    classify(staging_conn)
    ready = _ready(staging_conn)
    result = run_gate(staging_url, staging_conn, systemic_share=0.2)
    assert result.systemic and not result.success
    assert (
        result.failed_share > 0.2
        and result.rule_counts["sku_mismatches.store_mapped"] == result.failed_receipts
    )
    assert set(result.stores_affected) == {"ST001", "ST002"}
    assert result.quarantined == 0 and _ready(staging_conn) == ready
    assert staging_conn.execute(
        "select count(*) from sitoo_erp.exception where starts_with(rule, 'gx:')"
    ).fetchone() == (0,)
    assert staging_conn.execute("select systemic, success from sitoo_erp.gate_run").fetchall() == [
        (True, False)
    ]
    # The same share in a tiny batch is not systemic: it is quarantined receipt by receipt.
    small = run_gate(
        staging_url, staging_conn, systemic_share=0.2, options=GateOptions(min_systemic_batch=10**6)
    )
    assert not small.systemic and small.quarantined == result.failed_receipts


def test_unknown_skus_of_the_generator_fail_and_empty_batch_passes(staging_conn, staging_url, dataset):
    result = run_gate(staging_url, staging_conn)  # nothing staged: empty batch
    assert result.success and result.batch_size == 0
    _seed(staging_conn, dataset, unknown_in_erp=False)
    stage_orders(staging_conn, list(dataset.iter_orders()))
    classify(staging_conn)
    result = run_gate(staging_url, staging_conn)
    unknown = {p.sku for p in dataset.catalogue.products if not p.in_erp}
    skus = {
        r[0]
        for r in staging_conn.execute(
            "select sku from sitoo_erp.exception where kind = 'unknown_sku' and status = 'open'"
        ).fetchall()
    }
    assert skus and skus <= unknown
    assert result.rule_counts.get("sku_mismatches.tender_mapped", 0) > 0  # Foreign Currency


def test_alert_names_pos_receipt_numbers_and_each_cause_once(staging_conn, staging_url, dataset):
    """Store staff look receipts up by the POS receipt number (``pos-receiptid``), not Sitoo's order id;
    one SKU or tender failing many receipts is one example line naming them, not the same text again."""
    from include.sitoo_erp.notify.gate_alert import render_gate_alert

    _seed(staging_conn, dataset, unknown_in_erp=False)
    stage_orders(staging_conn, list(dataset.iter_orders()))
    classify(staging_conn)
    result = run_gate(staging_url, staging_conn, options=GateOptions(min_systemic_batch=10**6))
    receipt_of = dict(
        staging_conn.execute("select orderid, receipt_id from sitoo_erp.sitoo_order").fetchall()
    )
    rule = "sku_mismatches.sku_has_erp_item"
    assert result.rule_counts[rule] > len(result.rule_keys[rule]), "a SKU failing several receipts"
    for rule_id, orderids in result.samples.items():
        assert result.sample_receipts[rule_id] == [
            f"receipt {receipt_of[oid]} (order {oid})" for oid in orderids
        ]
    for lines in result.sample_details.values():
        assert len(lines) == len(set(lines)), lines  # no line twice
        assert all("receipt " in line for line in lines), lines
    shared = next(line for line in result.sample_details[rule] if " receipts: " in line)
    assert shared.count("(order ") >= 2, shared
    _, html = render_gate_alert(result, "http://localhost:8080/run")
    first = result.samples[rule][0]
    assert f"receipt {receipt_of[first]} (order {first})" in html


def test_gx_gates_and_migrations_keep_library_info_out_of_the_log(staging_conn, staging_url, caplog):
    """A task log carries the task's own summary: no GX INFO chatter from any GX gate (receipts, stock,
    reconciliation), no alembic context lines on an up-to-date schema."""
    import logging

    from include.sitoo_erp.quality.runner import validate
    from include.sitoo_erp.quality.suites import reconciliation, stock_drift
    from include.sitoo_erp.reconciliation.gate import ReconciliationGateOptions
    from include.sitoo_erp.staging.schema import migrate
    from include.sitoo_erp.stock.gate import StockGateOptions

    caplog.set_level(logging.DEBUG)
    run_gate(staging_url, staging_conn)  # empty batch
    from datetime import date

    validate(
        staging_url, (stock_drift.SUITE,), StockGateOptions(0, date(2026, 11, 16)), stock_drift.BATCH_TABLE
    )
    validate(staging_url, (reconciliation.SUITE,), ReconciliationGateOptions(0), reconciliation.BATCH_TABLE)
    migrate(staging_url)
    noisy = [
        (r.name, r.getMessage()[:80])
        for r in caplog.records
        if r.levelno < logging.WARNING and r.name.split(".")[0] in ("great_expectations", "alembic")
    ]
    assert noisy == [], noisy


def test_rule_gx_cannot_evaluate_is_reported_failed_and_rechecked_by_the_gate(
    staging_conn, staging_url, dataset, clean_payloads
):
    """A rule GX raises on is named in ``gx_errors``, fails its suite, and the gate's own run of the
    same SQL still quarantines the receipts it fails. Here the rule qualifies columns with the batch
    (``{batch}.store_externalid``) instead of aliasing it: PostgreSQL takes that for the view, GX
    binds ``{batch}`` to a sub-select and cannot run it."""
    from include.sitoo_erp.quality.rules import Rule, Suite
    from include.sitoo_erp.staging.exceptions import ExceptionKind

    _seed(staging_conn, dataset)
    stage_orders(staging_conn, clean_payloads)
    classify(staging_conn)
    staging_conn.execute("delete from sitoo_erp.map_store_location where store_externalid = 'ST001'")
    st001 = staging_conn.execute(
        "select count(*) from sitoo_erp.ready_receipt where store_externalid = 'ST001'"
    ).fetchone()[0]
    assert st001 > 0
    unaliased = Rule(
        "store_mapped",
        ExceptionKind.MISSING_MAPPING,
        """
select {batch}.orderid, {batch}.store_externalid, 'store=' || {batch}.store_externalid as cause_key,
       'store_externalid' as field, null::text as sku, 'store has no map_store_location row' as detail
from {batch}
left join sitoo_erp.map_store_location m on m.store_externalid = {batch}.store_externalid
where m.store_externalid is null
""",
        "the receipt's store is mapped",
    )
    suite = Suite("store_check", "1.0.0", (unaliased,))

    result = run_gate(
        staging_url, staging_conn, suites=[suite], options=GateOptions(min_systemic_batch=10**6)
    )

    assert result.gx_errors == ["store_check.store_mapped"]
    assert result.suite_success == {"store_check": False} and not result.success
    assert result.rule_counts == {"store_check.store_mapped": st001}
    assert result.quarantined == st001
    recorded = staging_conn.execute(
        "select success, result -> 'gx_errors' from sitoo_erp.gate_run where gate_run_id = %s",
        (result.gate_run_id,),
    ).fetchone()
    assert recorded == (False, ["store_check.store_mapped"])


def test_rule_neither_gx_nor_sql_can_run_is_listed_and_failed(staging_conn, staging_url):
    """A rule over a column the batch does not have: GX reports the error per metric (not flat);
    the runner still lists the rule and fails it, and the gate's own SQL run names the column."""
    import psycopg

    from include.sitoo_erp.quality import runner
    from include.sitoo_erp.quality.rules import Rule, Suite
    from include.sitoo_erp.quality.suites.sku_mismatches import STORE_MAPPED

    broken = Rule(
        "store_mapped_typo",
        STORE_MAPPED.kind,
        STORE_MAPPED.sql.replace("where m.store_externalid is null", "where m.store_external_id is null"),
        STORE_MAPPED.description,
    )
    suite = Suite("store_check", "1.0.0", (STORE_MAPPED, broken))

    validation = runner.validate(staging_url, (suite,), GateOptions())

    assert validation.errors == ["store_check.store_mapped_typo"]
    assert validation.outcome == {"store_check": {"store_mapped": True, "store_mapped_typo": False}}
    assert validation.suite_success((suite,)) == {"store_check": False}
    with pytest.raises(psycopg.errors.UndefinedColumn, match="store_external_id"):
        runner.failing_rows(staging_conn, suite, broken, GateOptions())
