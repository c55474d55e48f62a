"""A week of two stores in ``daily_summary`` mode (and one in receipt mode beside them) through
`sitoo_sales_hourly`, with late receipts, a quarantined-then-fixed receipt and a closed period.

Proved against the sandboxes themselves: the ERP's tax per store-day and tax code equals Sitoo's
VAT; each store-day is one summary plus numbered supplements; re-runs and a backfill create
nothing; every finalised receipt is in exactly one posted summary document (whose ERP total is
those receipts' Sitoo totals) or quarantined with its reason; the receipt-mode store is untouched.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from include.sandbox.catalogue import UNMAPPED_TENDER
from include.sandbox.generator import is_finalised
from include.sitoo_erp.posting.summary import set_posting_mode
from include.sitoo_erp.staging.db import connect_url
from include.sitoo_erp.staging.orders import state_counts
from tests.e2e.conftest import make_stack, run_hour, task_states
from tests.e2e.helpers import money, visible_orders

START = date(2026, 11, 16)  # Monday; Europe/London is on GMT in November: local time = UTC
SUMMARY_KEY = re.compile(r"^SITOO-(D|DR)-(?P<store>.+)-(?P<day>\d{8})(-S(?P<sup>\d+))?(-P(?P<part>\d+))?$")


def ts(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def d(n: int) -> date:
    return START + timedelta(days=n)


def _template(stack, store: str, predicate) -> tuple[dict, int]:
    ds = stack.dataset
    for oid in range(10_001, ds.max_orderid + 1):
        order = ds.order(oid)
        if (
            is_finalised(order)
            and ds.store_of(order).externalid == store
            and not order.get("creditorderid")
            and len(order["payments"]) == 1
            and order["payments"][0]["name"] != UNMAPPED_TENDER
            and predicate(order)
        ):
            return copy.deepcopy(order), ds.row(oid)["store"]
    raise AssertionError(f"no template sale in {store}")


def plant(
    stack, store: str, receipt: str, rung_up: datetime, arrives: datetime, predicate=lambda o: True
) -> int:
    """A copy of a clean sale of ``store`` rung up at ``rung_up`` that reaches Sitoo at ``arrives``
    (an offline till)."""
    products = stack.dataset.catalogue.product_by_sku()
    payload, store_index = _template(
        stack,
        store,
        lambda o: (
            all(products.get(r["sku"]) is None or products[r["sku"]].in_erp for r in o["orderitems"])
            and predicate(o)
        ),
    )
    payload["additionaldata"]["pos-receiptid"] = receipt
    payload["orderdate"] = int(rung_up.timestamp())  # a full payload is served as given
    return stack.sitoo.add_order(
        store=store_index, payload=payload, orderdate=rung_up.timestamp(), dateadded=arrives.timestamp()
    )


def plant_unknown_sku(stack, store: str, rung_up: datetime) -> tuple[int, str]:
    products = stack.dataset.catalogue.product_by_sku()
    payload, store_index = _template(
        stack,
        store,
        lambda o: (
            len(o["orderitems"]) == 1
            and products.get(o["orderitems"][0]["sku"]) is not None
            and products[o["orderitems"][0]["sku"]].in_erp
        ),
    )
    row = payload["orderitems"][0]
    missing = [p for p in stack.dataset.catalogue.products if not p.in_erp]
    unknown = next((p for p in missing if p.vat_rate == int(row["vatvalue"])), missing[0])
    row["sku"], row["productid"] = unknown.sku, unknown.productid
    payload["additionaldata"]["pos-receiptid"] = "UNKNOWN-SKU-WEEK"
    payload["orderdate"] = int(rung_up.timestamp())
    oid = stack.sitoo.add_order(
        store=store_index,
        payload=payload,
        orderdate=rung_up.timestamp(),
        dateadded=(rung_up + timedelta(minutes=1)).timestamp(),
    )
    return oid, unknown.sku


@pytest.fixture(scope="module")
def week(postgres, dagbag, tmp_path_factory):
    stack = make_stack(
        postgres,
        tmp_path_factory.mktemp("summary-week"),
        seed=23,
        stores=3,
        days=7,
        receipts_per_store_day=14,
    )
    stores = [s.externalid for s in stack.dataset.catalogue.stores]
    summary_stores, receipt_store = stores[:2], stores[2]
    s1, s2 = summary_stores
    with connect_url(stack.database_url) as conn:
        set_posting_mode(conn, "receipt", date(2026, 1, 1))  # the deployment default
        for store in summary_stores:
            set_posting_mode(conn, "daily_summary", date(2026, 11, 1), store, changed_by="e2e")
    dag = dagbag.get_dag("sitoo_sales_hourly")
    planted: dict[str, int] = {}
    runs = []
    docs_after: dict[str, dict] = {}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", "")

        # Sitoo's orderids rise with upload time, and the pipeline's late sweep follows them: a
        # receipt added below is uploaded at that point of the week, so the Sitoo clock shows the
        # generated week at once and each planted receipt is added just before the run that sees it.
        end_of_week = ts(d(8), 6)
        stack.sitoo.set_clock(int(end_of_week.timestamp()))
        # Tuesday: a sale of an item the ERP lacks (quarantined by the gate), on time.
        planted["unknown_sku"], unknown_sku = plant_unknown_sku(stack, s1, ts(d(1), 14))
        # Monday's first trading hour: its late sweep stages everything uploaded since; Monday has
        # not closed by the run's own clock (business time), so it summarises nothing.
        runs.append(run_hour(dag, ts(d(0), 9)))
        docs_after["mon"] = stack.netsuite.count_documents_by_external_id()
        # Wednesday 07:00: Monday and Tuesday have closed (midnight + 6 h grace).
        runs.append(run_hour(dag, ts(d(2), 6)))
        docs_after["wed"] = stack.netsuite.count_documents_by_external_id()

        # The fix, as ops make it (a mapping row, no deployment): the receipt goes in a supplement.
        with connect_url(stack.database_url) as conn:
            item_id = conn.execute(
                "select item_id from sitoo_erp.erp_item where not is_inactive order by sku limit 1"
            ).fetchone()[0]
            conn.execute(
                "insert into sitoo_erp.map_sku_item (sku, item_id) values (%s, %s)", (unknown_sku, item_id)
            )
        # Monday's offline till uploads after Monday's summary posted.
        planted["late_mon_s1"] = plant(stack, s1, "LATE-MON-1", ts(d(0), 15), end_of_week)
        # Friday 07:00: Wednesday and Thursday close; Monday's late receipt and the fixed one follow.
        runs.append(run_hour(dag, ts(d(4), 6)))

        # Another offline till of Tuesday (its second supplement); finance closes Monday, and then
        # a Monday receipt of the second store turns up.
        planted["late_tue_s1"] = plant(stack, s1, "LATE-TUE-1", ts(d(1), 16), end_of_week)
        planted["closed_mon_s2"] = plant(stack, s2, "LATE-MON-CLOSED", ts(d(0), 11), end_of_week)
        mp.setenv("AIRFLOW_VAR_SITOO_ERP_CLOSED_THROUGH", d(0).isoformat())
        # The next Tuesday 07:00: the whole week has closed.
        runs.append(run_hour(dag, ts(d(8), 6)))
        docs_after["end"] = stack.netsuite.count_documents_by_external_id()
        with connect_url(stack.database_url) as conn:
            ledger_after_end = state_counts(conn)
        # A re-run, then a backfill of an hour already done days ago: nothing new may appear.
        runs.append(run_hour(dag, ts(d(8), 7)))
        runs.append(run_hour(dag, ts(d(4), 5)))
        yield {
            "stack": stack,
            "runs": runs,
            "planted": planted,
            "summary_stores": summary_stores,
            "receipt_store": receipt_store,
            "docs_after": docs_after,
            "ledger_after_end": ledger_after_end,
            "fixed_sku": unknown_sku,
        }
    stack.stop()
    postgres.drop_database(stack.config.database)


def erp_docs(stack) -> dict[str, dict]:
    return {doc["externalId"]: doc for doc in stack.netsuite.documents()}


def summary_docs(stack) -> dict[str, dict]:
    return {k: v for k, v in erp_docs(stack).items() if SUMMARY_KEY.match(k)}


def store_of(stack, order: dict) -> str:
    return stack.dataset.store_of(order).externalid


def business_day(order: dict) -> date:
    return datetime.fromtimestamp(order["orderdate"], UTC).date()


def expected_reason(stack, order: dict, fixed_sku: str, planted: dict) -> str | None:
    """Why a finalised receipt of a summary store must stay out of the ERP, from Sitoo's data alone."""
    if order["orderid"] == planted["closed_mon_s2"]:
        return "closed_period"
    products = stack.dataset.catalogue.product_by_sku()
    for row in order.get("orderitems") or []:
        product = products.get(row.get("sku"))
        if product is not None and not product.in_erp and row.get("sku") != fixed_sku:
            return "unknown_sku"
    if any(p.get("name") == UNMAPPED_TENDER for p in order.get("payments") or []):
        return "tender_mismatch"
    return None


def test_every_run_succeeds(week):
    for run in week["runs"]:
        assert str(run.state) == "success", task_states(run)


def test_one_summary_and_numbered_supplements_per_store_day(week):
    stack = week["stack"]
    per_day: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for key in summary_docs(stack):
        m = SUMMARY_KEY.match(key)
        assert m["store"] in week["summary_stores"], key
        assert not m["part"], key  # a small week stays under the 200-line limit
        per_day[(m[1], m["store"], m["day"])].append(int(m["sup"] or 0))
    for key, sups in per_day.items():
        assert sorted(sups) == list(range(len(sups))), (key, sups)  # the summary, then S1, S2, ...
    s1 = week["summary_stores"][0]
    # Every trading day of both summary stores has its sales summary.
    for store in week["summary_stores"]:
        for n in range(7):
            assert ("D", store, f"{d(n):%Y%m%d}") in per_day, (store, d(n))
    assert sorted(per_day[("D", s1, f"{d(0):%Y%m%d}")]) == [0, 1]  # Monday + its late receipt
    assert sorted(per_day[("D", s1, f"{d(1):%Y%m%d}")]) == [0, 1, 2]  # Tuesday + fixed + late


def test_reruns_and_a_backfill_create_nothing(week):
    stack = week["stack"]
    now = stack.netsuite.count_documents_by_external_id()
    assert now == week["docs_after"]["end"]
    assert all(n == 1 for n in now.values()), {k: n for k, n in now.items() if n != 1}
    with connect_url(stack.database_url) as conn:
        assert state_counts(conn) == week["ledger_after_end"]


def test_erp_tax_per_store_day_and_tax_code_equals_sitoo(week):
    stack = week["stack"]
    planted, fixed = week["planted"], week["fixed_sku"]
    sitoo_tax: Counter = Counter()
    sitoo_gross: Counter = Counter()
    for order in visible_orders(stack):
        store = store_of(stack, order) if order.get("registerid") else None
        if store not in week["summary_stores"] or not is_finalised(order):
            continue
        if expected_reason(stack, order, fixed, planted) is not None:
            continue
        key = (store, business_day(order))
        for rate, (_net, vat) in stack.dataset.vat_by_rate(order).items():
            sitoo_tax[(*key, Decimal(str(rate)).normalize())] += money(vat)
        sitoo_gross[key] += money(order["moneytotal_gross_all"])
    erp_tax: Counter = Counter()
    erp_gross: Counter = Counter()
    for key, doc in summary_docs(stack).items():
        sign = -1 if doc.get("type", "") == "cashRefund" or SUMMARY_KEY.match(key)[1] == "DR" else 1
        store = SUMMARY_KEY.match(key)["store"]
        day = date.fromisoformat(doc["tranDate"])
        for t in doc["taxDetails"]["items"]:
            erp_tax[(store, day, Decimal(str(t["taxRate"])).normalize())] += sign * money(t["taxAmount"])
        erp_gross[(store, day)] += sign * money(doc["total"])
    drop_zero = lambda c: {k: v for k, v in c.items() if v != 0}  # noqa: E731
    assert drop_zero(erp_tax) == drop_zero(sitoo_tax)
    assert drop_zero(erp_gross) == drop_zero(sitoo_gross)
    assert len(sitoo_gross) == 14  # 2 stores x 7 days


def test_every_receipt_is_in_exactly_one_posted_summary_or_quarantined_with_its_reason(week):
    stack = week["stack"]
    planted, fixed = week["planted"], week["fixed_sku"]
    docs = summary_docs(stack)
    by_order = {o["orderid"]: o for o in visible_orders(stack)}
    with connect_url(stack.database_url) as conn:
        states = {
            o: (s, r) for o, s, r in conn.execute("select orderid, state, reason from sitoo_erp.order_state")
        }
        assigned = {
            o: (e, status)
            for o, e, status in conn.execute(
                "select r.orderid, r.external_id, d.status from sitoo_erp.summary_receipt r "
                "join sitoo_erp.summary_document d using (external_id)"
            )
        }
        exceptions = {
            (k, o): owner
            for k, o, owner in conn.execute(
                "select kind, orderid, owner from sitoo_erp.exception where status = 'open'"
            )
        }
        counts = state_counts(conn)
    assert counts["seen"] == counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"]
    gross_by_doc: Counter = Counter()
    for orderid, order in by_order.items():
        if not order.get("registerid") or store_of(stack, order) not in week["summary_stores"]:
            continue
        if not is_finalised(order):
            assert orderid not in assigned
            continue
        state, reason = states[orderid]
        why = expected_reason(stack, order, fixed, planted)
        if why is None:
            assert state == "posted", (orderid, state, reason)
            external_id, status = assigned[orderid]
            assert status == "posted" and external_id in docs and external_id in reason
            gross_by_doc[external_id] += money(order["moneytotal_gross_all"])  # POS sign
        else:
            assert state == "quarantined" and why in reason, (orderid, state, reason, why)
            assert orderid not in assigned
            assert (why, orderid) in exceptions
    # Each ERP summary document is exactly its receipts, by Sitoo's own totals.
    for external_id, doc in docs.items():
        sign = -1 if SUMMARY_KEY.match(external_id)[1] == "DR" else 1
        assert sign * money(doc["total"]) == gross_by_doc[external_id], external_id
    assert exceptions[("closed_period", planted["closed_mon_s2"])] == "finance"


def test_late_fixed_and_closed_receipts_land_where_finance_expects(week):
    stack = week["stack"]
    s1 = week["summary_stores"][0]
    planted = week["planted"]
    with connect_url(stack.database_url) as conn:
        where = dict(conn.execute("select orderid, external_id from sitoo_erp.summary_receipt").fetchall())
        reason = conn.execute(
            "select reason from sitoo_erp.order_state where orderid = %s", (planted["closed_mon_s2"],)
        ).fetchone()[0]
    assert where[planted["late_mon_s1"]] == f"SITOO-D-{s1}-{d(0):%Y%m%d}-S1"
    # Tuesday: the fixed receipt went in the first supplement (Friday), the late one in the second.
    assert where[planted["unknown_sku"]] == f"SITOO-D-{s1}-{d(1):%Y%m%d}-S1"
    assert where[planted["late_tue_s1"]] == f"SITOO-D-{s1}-{d(1):%Y%m%d}-S2"
    assert planted["closed_mon_s2"] not in where and "closed" in reason
    assert not any(k.startswith("SITOO-D") for k in week["docs_after"]["mon"])  # Monday not closed yet
    # Wednesday's run posted Monday and Tuesday without the quarantined receipt, and nothing later.
    wed = week["docs_after"]["wed"]
    assert {k for k in wed if k.startswith("SITOO-D-")} == {
        f"SITOO-D-{s}-{d(n):%Y%m%d}" for s in week["summary_stores"] for n in (0, 1)
    }


def test_the_receipt_mode_store_is_untouched(week):
    stack = week["stack"]
    store = week["receipt_store"]
    keys = set(erp_docs(stack))
    assert not any(k.startswith((f"SITOO-D-{store}-", f"SITOO-DR-{store}-")) for k in keys)
    with connect_url(stack.database_url) as conn:
        per_receipt = conn.execute(
            "select count(*) from sitoo_erp.posting_log where store_externalid = %s", (store,)
        ).fetchone()[0]
        summarised_elsewhere = conn.execute(
            "select count(*) from sitoo_erp.posting_log where store_externalid = any(%s)",
            (week["summary_stores"],),
        ).fetchone()[0]
    assert per_receipt > 50
    assert summarised_elsewhere == 0
    assert (
        sum(1 for k in keys if k.startswith(f"SITOO-S-{store}-") or k.startswith(f"SITOO-R-{store}-"))
        == per_receipt
    )
