"""Daily summary mode under a real Airflow 3.3 deployment, the way a data engineer turns it on.

Both stores post in ``daily_summary`` mode. A backfill over the first trading day and the next
morning (24 hourly windows) is created with ``airflow backfill create`` and its default concurrency
(ten runs at once) while the DAG is paused; unpausing starts its runs together with the scheduler's
own run for the latest hour. Every run whose window ends after the day's close (+ 6 h grace) tries to
summarise it while others may still be staging its receipts: runs race for the same store-day, with
the real scheduler, LocalExecutor and separate task processes (not ``dag.test()``). A REST-triggered
run the morning after the second day posts what is left. Proved against the NetSuite sandbox and
Sitoo's own data: one summary per store-day and direction with consecutively numbered supplements
(a receipt staged after its day posted), every externalId once, every finalised receipt in exactly
one posted summary or quarantined with its reason, each document's ERP total = its receipts' Sitoo
totals.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from include.sandbox.deployment import LocalDeployment
from include.sandbox.stack import StackConfig
from include.sitoo_erp.posting.summary import set_posting_mode
from include.sitoo_erp.staging.db import connect_url
from include.sitoo_erp.staging.schema import migrate
from tests.deployment.test_local_deployment import max_overlap, runs_of, wait_for_runs, wait_until_idle
from tests.e2e.helpers import expected_quarantine, finalised, ledger, money, visible_orders

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

FIRST_DAY = date(2026, 11, 15)
DAYS = (FIRST_DAY, FIRST_DAY + timedelta(days=1))
SALES = "sitoo_sales_hourly"
SUMMARY_KEY = re.compile(
    r"^SITOO-(?P<dir>D|DR)-(?P<store>.+)-(?P<day>\d{8})(-S(?P<sup>\d+))?(-P(?P<part>\d+))?$"
)
# 09:00 of the first day (its first trading hour) to 08:00 the next morning: 24 windows, the last four
# of which end after the first day's close + grace and race to summarise it.
FROM = datetime.combine(FIRST_DAY, datetime.min.time(), UTC) + timedelta(hours=9)
TO = FROM + timedelta(hours=23)
NEXT_MORNING = datetime.combine(DAYS[-1] + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=10)


@pytest.fixture(scope="module")
def summary_deployment(postgres, tmp_path_factory):
    suffix = uuid.uuid4().hex[:8]
    config = StackConfig(
        database=f"deploy_sum_{suffix}", start=FIRST_DAY, seed=23, stores=2, days=2, receipts_per_store_day=30
    )
    dep = LocalDeployment(
        tmp_path_factory.mktemp("airflow-summary"),
        stack_config=config,
        postgres=postgres,
        meta_database=f"airflow_meta_sum_{suffix}",
    )
    dep.start()
    migrate(dep.stack.database_url)
    with connect_url(dep.stack.database_url) as conn:
        set_posting_mode(conn, "daily_summary", date(2026, 1, 1), changed_by="test")
    began = time.monotonic()
    # Created while the DAG is paused (its runs wait), then unpaused: the backfill's ten-at-once runs and
    # the scheduler's run for the latest hour start together.
    dep.airflow(
        "backfill", "create", "--dag-id", SALES, "--from-date", FROM.isoformat(), "--to-date", TO.isoformat()
    )
    with dep.client() as client:
        assert client.patch(f"/api/v2/dags/{SALES}", json={"is_paused": False}).status_code == 200
    expected = int((TO - FROM) / timedelta(hours=1)) + 1
    dep.runs = wait_for_runs(dep, SALES, lambda r: r["run_type"] == "backfill", expected, timeout=2400)
    wait_until_idle(dep, SALES)
    dep.wall_s = round(time.monotonic() - began, 1)
    with dep.client() as client:  # the hourly run of the morning after the second day
        response = client.post(
            f"/api/v2/dags/{SALES}/dagRuns",
            json={
                "dag_run_id": "next_morning",
                "logical_date": NEXT_MORNING.isoformat().replace("+00:00", "Z"),
            },
        )
    assert response.status_code == 200, response.text
    wait_for_runs(dep, SALES, lambda r: r["dag_run_id"] == "next_morning", 1)
    wait_until_idle(dep, SALES)
    yield dep
    dep.stop()
    postgres.drop_database(config.database)
    postgres.drop_database(dep.meta_database)


def test_every_run_succeeds_and_runs_really_overlapped(summary_deployment):
    dep = summary_deployment
    assert len(dep.runs) == int((TO - FROM) / timedelta(hours=1)) + 1
    states = Counter(r["state"] for r in runs_of(dep, SALES))
    assert set(states) == {"success"}, states
    assert max_overlap(dep.runs) > 1  # the backfill ran runs at the same time
    print(
        f"\nsummary deployment: {len(dep.runs)} backfill runs in {dep.wall_s} s, max overlap {max_overlap(dep.runs)}"
    )


def test_one_summary_per_store_day_and_direction_and_every_key_once(summary_deployment):
    stack = summary_deployment.stack
    counts = stack.netsuite.count_documents_by_external_id()
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    # No receipt-mode documents: every store posts in summary mode.
    assert not [k for k in counts if k.startswith(("SITOO-S-", "SITOO-R-"))]
    summaries = [m for k in counts if (m := SUMMARY_KEY.match(k))]
    stores = {m["store"] for m in summaries}
    assert len(stores) == 2
    assert {(m["store"], m["day"]) for m in summaries if m["dir"] == "D" and not m["sup"]} == {
        (s, f"{d:%Y%m%d}") for s in stores for d in DAYS
    }
    # Supplements (receipts staged after their day posted, by a racing run) are numbered 1, 2, ...
    supplements: dict[tuple[str, str, str], set[int]] = {}
    for m in summaries:
        if m["sup"]:
            supplements.setdefault((m["dir"], m["store"], m["day"]), set()).add(int(m["sup"]))
    for key, numbers in supplements.items():
        assert numbers == set(range(1, len(numbers) + 1)), (key, sorted(numbers))
    print(f"\nsummary deployment: {len(summaries)} summary documents, supplements {supplements}")


def test_every_receipt_is_in_exactly_one_posted_summary_with_its_sitoo_total(summary_deployment):
    stack = summary_deployment.stack
    counts = ledger(stack)  # invariant 1: every receipt seen is in exactly one state
    assert counts["seen"] == counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"]
    docs = {d["externalId"]: d for d in stack.netsuite.documents() if SUMMARY_KEY.match(d["externalId"])}
    with connect_url(stack.database_url) as conn:
        members = conn.execute(
            "select r.orderid, r.external_id, d.status from sitoo_erp.summary_receipt r "
            "join sitoo_erp.summary_document d using (external_id)"
        ).fetchall()
        states = dict(conn.execute("select orderid, state from sitoo_erp.order_state").fetchall())
    per_receipt = Counter(oid for oid, _, _ in members)
    assert all(n == 1 for n in per_receipt.values()), {o: n for o, n in per_receipt.items() if n > 1}
    assigned = {oid: (eid, status) for oid, eid, status in members}
    gross: Counter = Counter()
    receipts = finalised(visible_orders(stack))
    assert len(receipts) > 100
    for order in receipts:
        oid = order["orderid"]
        if expected_quarantine(stack, order) is not None:
            assert states[oid] == "quarantined" and oid not in assigned, (oid, states.get(oid))
            continue
        external_id, status = assigned[oid]
        assert status == "posted" and states[oid] == "posted", (oid, status, states[oid])
        gross[external_id] += money(order["moneytotal_gross_all"])  # POS sign
    for external_id, doc in docs.items():
        sign = -1 if SUMMARY_KEY.match(external_id)["dir"] == "DR" else 1
        assert sign * money(doc["total"]) == gross[external_id], external_id
    assert set(gross) <= set(docs)
