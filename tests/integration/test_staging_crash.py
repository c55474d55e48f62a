"""The staging database dies mid-posting (SIGKILL of every PostgreSQL process, as a power cut would).

Real parts: an embedded PostgreSQL of its own (so the crash hurts no other test), the Sitoo and
NetSuite sandboxes on 127.0.0.1, the real hooks and ``post_ready`` with 4 workers. Proves:

- the workers stop sending as soon as the database is gone: after the kill the ERP receives at most
  the calls already in flight, not the rest of the batch;
- nothing acknowledged is lost: every posting-log commit the posting code saw succeed is still there
  after the restart (the database commits synchronously);
- nothing is duplicated: after the restart a re-run leaves exactly one ERP document per posted
  receipt, a posting-log row for each, and no posting intent open.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from include.sandbox.netsuite import NetSuiteFaults
from include.sandbox.postgres import EmbeddedPostgres
from include.sandbox.server import free_port
from include.sandbox.stack import LocalStack, StackConfig
from include.sitoo_erp.staging.db import connect_url

DAY = datetime(2026, 11, 16, tzinfo=UTC)
WORKERS = 4
KILL_AFTER = 60  # ERP documents received before the database is killed


class _Acknowledged(logging.Handler):
    """The externalIds whose posting-log commit returned successfully to the posting code."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.keys: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("recorded "):
            self.keys.append(record.getMessage().split()[1])


def _upserts(stack: LocalStack) -> int:
    c = stack.netsuite.counters()
    return c["created"] + c["updated"]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, airflow_db):
    """Stage a day, post it, SIGKILL PostgreSQL mid-posting; return the stack and what was seen."""
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.posting.classify import classify
    from include.sitoo_erp.posting.extract import extract_orders
    from include.sitoo_erp.posting.mapping import refresh_item_cache
    from include.sitoo_erp.posting.post import PostingOptions, post_ready
    from include.sitoo_erp.quality.gate import run_gate
    from include.sitoo_erp.sitoo.hook import SitooHook

    work = tmp_path_factory.mktemp("crash")
    pg = EmbeddedPostgres(work / "pgdata", port=free_port()).start()
    cfg = StackConfig(
        database=f"crash_{uuid.uuid4().hex[:8]}",
        seed=5,
        stores=2,
        days=1,
        receipts_per_store_day=200,
        start=DAY.date(),
        netsuite_faults=NetSuiteFaults(concurrency_limit=WORKERS + 1, latency_ms=20),
    )
    stack = LocalStack(cfg, work).start(postgres=pg)
    mp = pytest.MonkeyPatch()
    for key, value in stack.env.items():
        mp.setenv(key, value)
    try:
        end = DAY + timedelta(days=1)
        stack.sitoo.set_clock(int(end.timestamp()))
        with connect_url(stack.database_url) as conn:
            extract_orders(SitooHook(), conn, DAY, end)
            classify(conn, business_now=end)
            refresh_item_cache(conn, NetSuiteHook())
            run_gate(stack.database_url, conn, run_label="crash")  # posting takes only what a gate passed
            ready = conn.execute("select count(*) from sitoo_erp.ready_receipt").fetchone()[0]
        assert ready > 3 * KILL_AFTER, ready

        acknowledged = _Acknowledged()
        post_log = logging.getLogger("include.sitoo_erp.posting.post")
        post_log.addHandler(acknowledged)
        saved_level = post_log.level
        post_log.setLevel(logging.DEBUG)
        outcome: dict = {}

        def posting() -> None:
            try:
                with connect_url(stack.database_url) as conn:
                    outcome["summary"] = post_ready(conn, NetSuiteHook(), PostingOptions(max_workers=WORKERS))
            except Exception as exc:  # the database went away under it
                outcome["error"] = exc

        worker = threading.Thread(target=posting, name="posting-task")
        worker.start()
        deadline = time.monotonic() + 300
        while _upserts(stack) < KILL_AFTER:
            assert worker.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.01)
        pg.crash()
        at_kill = _upserts(stack)
        worker.join(timeout=300)
        post_log.removeHandler(acknowledged)
        post_log.setLevel(saved_level)
        time.sleep(1.0)  # anything still on its way would have arrived by now
        facts = {
            "ready": ready,
            "at_kill": at_kill,
            "after_kill": _upserts(stack),
            "acknowledged": list(acknowledged.keys),
            "outcome": outcome,
            "worker_alive": worker.is_alive(),
        }
        yield stack, pg, facts
    finally:
        mp.undo()
        stack.stop()
        pg.stop(mode="immediate")


def test_workers_stop_sending_when_the_staging_database_dies(crashed):
    _, _, facts = crashed
    assert not facts["worker_alive"]
    assert "error" in facts["outcome"], facts["outcome"]  # the task fails: it cannot record anything
    sent_after = facts["after_kill"] - facts["at_kill"]
    assert sent_after <= WORKERS, (
        f"{sent_after} documents reached the ERP after the database died (in flight: at most {WORKERS}); "
        f"{facts['ready']} were ready"
    )


def test_nothing_acknowledged_is_lost_and_nothing_duplicated_after_restart(crashed):
    from include.sitoo_erp.erp.netsuite import NetSuiteHook
    from include.sitoo_erp.posting.post import PostingOptions, post_ready
    from include.sitoo_erp.staging.orders import state_counts

    stack, pg, facts = crashed
    assert facts["acknowledged"], "nothing was recorded before the kill"
    pg.start()  # crash recovery from the WAL
    with connect_url(stack.database_url) as conn:
        logged = {k for (k,) in conn.execute("select external_id from sitoo_erp.posting_log")}
        lost = set(facts["acknowledged"]) - logged
        assert not lost, f"{len(lost)} acknowledged posting-log commits lost in the crash: {sorted(lost)[:5]}"

        # The re-run: settles what was in flight (intents) and posts the rest, nothing twice.
        summary = post_ready(conn, NetSuiteHook(), PostingOptions(max_workers=WORKERS))
        assert summary.transient_failures == 0, summary
        logged = dict(conn.execute("select external_id, erp_id from sitoo_erp.posting_log").fetchall())
        posted = conn.execute("select count(*) from sitoo_erp.order_state where state = 'posted'").fetchone()[
            0
        ]
        open_intents = conn.execute("select count(*) from sitoo_erp.posting_intent").fetchone()[0]
        counts = state_counts(conn)
        ready_left = conn.execute("select count(*) from sitoo_erp.ready_receipt").fetchone()[0]
    per_key = stack.netsuite.count_documents_by_external_id()
    sales = {k: n for k, n in per_key.items() if k.startswith(("SITOO-S-", "SITOO-R-"))}
    assert all(n == 1 for n in sales.values()), {k: n for k, n in sales.items() if n != 1}
    in_erp = {str(d["externalId"]): str(d["id"]) for d in stack.netsuite.documents()}
    assert set(sales) == set(logged), set(sales) ^ set(logged)  # posting log complete, nothing extra
    assert all(in_erp[k] == v for k, v in logged.items())
    assert posted == len(logged) and open_intents == 0 and ready_left == 0
    assert counts["seen"] == counts["posted"] + counts["held"] + counts["quarantined"] + counts["excluded"]
