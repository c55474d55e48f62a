"""Invariant 9: concurrent runs leave exactly what the same runs leave one at a time.

Four hourly windows of a seeded day, with receipts the gate must stop planted in different hours
(an unknown SKU, a foreign tender owned by finance, a return of an unknown sale), run through the
hourly DAG's own operators — extract, classify, ERP items, quality gate, post — each run in its own
worker **process** (as under the LocalExecutor), all four released at once by a barrier, like a backfill
with its default concurrency. The outcome is compared with the same four windows run one after the
other on a fresh database and fresh sandboxes:

* the ERP documents (read from the NetSuite sandbox): the same external ids, one document each;
* the state of every order (posted / held / quarantined / excluded, with the reason's kind);
* the exception rows: one per cause, each with the kind and owner of the sequential run;
* the alert e-mails (read from the SMTP sink): every new cause announced in exactly one e-mail, and
  every e-mail's headline counts what it lists.

Races are probabilistic, so the concurrent case runs several rounds. No timing is asserted.
The operators get a minimal stand-in for the task context (the gate reads ``ti.dag_id``,
``ti.run_id``, ``ti.task_id`` for its links); everything they talk to is real.
"""

from __future__ import annotations

import html
import multiprocessing
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from include.sandbox.stack import ALERT_RECIPIENTS
from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import at, make_stack
from tests.e2e.helpers import plant_orphaned_return, plant_tender_mismatch, plant_unknown_sku

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

WINDOWS = [at(hour) for hour in range(8, 12)]  # the planted receipts are rung up at 09:30-09:45
ROUNDS = 3
_BARRIER = None


def _init_worker(barrier) -> None:
    global _BARRIER
    _BARRIER = barrier


def run_window(env: dict[str, str], start_iso: str, run_id: str, together: bool) -> str:
    """In a worker process: one hourly run of ``sitoo_sales_hourly`` through its operators."""
    os.environ.update(env)
    from airflow.sdk.exceptions import AirflowFailException

    from include.sitoo_erp.operators.posting import (
        ClassifyOrdersOperator,
        ErpPostingOperator,
        RefreshErpItemsOperator,
        ResolvePostingIntentsOperator,
    )
    from include.sitoo_erp.operators.quality import QualityGateOperator
    from include.sitoo_erp.operators.staging import SitooOrdersToStagingOperator

    start = datetime.fromisoformat(start_iso)
    tasks = [
        SitooOrdersToStagingOperator(
            task_id="extract_to_staging", window_start=start, window_end=start + timedelta(hours=1)
        ),
        ResolvePostingIntentsOperator(task_id="resolve_posting_intents"),
        # What the DAG's templates render to (no Airflow run here): the data interval end, no closed period.
        ClassifyOrdersOperator(
            task_id="classify", business_now=start + timedelta(hours=1), closed_through=""
        ),
        RefreshErpItemsOperator(task_id="refresh_erp_items"),
        QualityGateOperator(
            task_id="quality_gate", alert_to=ALERT_RECIPIENTS, ui_base_url="http://localhost:8080"
        ),
        ErpPostingOperator(task_id="post_to_erp", max_workers=2),
    ]
    if together:
        _BARRIER.wait(timeout=600)  # all runs of the round start at once
    for task in tasks:
        ti = SimpleNamespace(dag_id="sitoo_sales_hourly", run_id=run_id, task_id=task.task_id)
        try:
            task.execute({"ti": ti})
        except AirflowFailException:
            return "failed"
    return "success"


def _plant(stack) -> dict[str, int]:
    return {
        "orphaned_return": plant_orphaned_return(stack),  # 09:30
        "unknown_sku": plant_unknown_sku(stack),  # 09:40
        "tender_mismatch": plant_tender_mismatch(stack),  # 09:45
    }


def _outcome(stack) -> dict:
    """What the runs left, in terms that do not depend on timing (no ids, times or counters)."""
    with connect_url(stack.database_url) as conn:
        states = {
            o: (s, _reason(s, r))
            for o, s, r in conn.execute("select orderid, state, reason from sitoo_erp.order_state")
        }
        exceptions = conn.execute(
            "select kind, subject_key, owner, status, rule from sitoo_erp.exception"
        ).fetchall()
    documents = {}
    for doc in stack.netsuite.documents():
        documents.setdefault(doc["externalId"], []).append(doc)
    mails = []
    for message in stack.smtp.messages:
        body = message.get_body(("html",)).get_content()
        mails.append(
            {
                "subject": message["Subject"],
                "new": [html.unescape(c) for c in re.findall(r'<li class="new-cause">(.*?)</li>', body)],
                "rows": [
                    (html.unescape(rule), int(count))
                    for rule, count in re.findall(
                        r"<tr><td>([a-z_]+\.[a-z_]+)<br>.*?</td>\s*<td align=\"right\">(\d+)</td>", body, re.S
                    )
                ],
            }
        )
    return {"states": states, "exceptions": exceptions, "documents": documents, "mails": mails}


def _reason(state: str, reason: str) -> str:
    """The reason without what depends on timing: the ERP's internal id, the quarantine's detail."""
    if state == "quarantined":
        return reason.split(":")[0]
    return re.sub(r" \(ERP id [^)]*\)", "", reason)


def _check_alone(out: dict, planted: dict[str, int]) -> None:
    """What holds for any schedule: one row per cause, one document per key, one mail per new cause."""
    causes = Counter((kind, key) for kind, key, *_ in out["exceptions"])
    assert all(n == 1 for n in causes.values()), [c for c, n in causes.items() if n > 1]
    assert all(len(docs) == 1 for docs in out["documents"].values())
    for kind, orderid in planted.items():
        assert out["states"][orderid][0] == "quarantined", (kind, out["states"][orderid])
        assert any(k == kind and key.startswith(f"order:{orderid}:") for k, key, *_ in out["exceptions"]), (
            kind
        )
    announced = Counter(c for mail in out["mails"] for c in mail["new"])
    gate_causes = {
        f"{kind} {key}" for kind, key, _, status, rule in out["exceptions"] if rule.startswith("gx:")
    }
    assert set(announced) == gate_causes, set(announced) ^ gate_causes
    assert all(n == 1 for n in announced.values()), [c for c, n in announced.items() if n > 1]
    for mail in out["mails"]:
        failed, _ = re.search(r"failed: (\d+) of (\d+) receipts", mail["subject"]).groups()
        assert int(failed) >= max((n for _, n in mail["rows"]), default=0) > 0, mail
        assert int(failed) >= len({c.split(":")[1] for c in mail["new"]}), mail


def _stack(postgres, tmp_path, name: str):
    stack = make_stack(postgres, tmp_path / name, seed=11, stores=2, days=1, receipts_per_store_day=60)
    return stack, _plant(stack)


def _drop(postgres, stack) -> None:
    stack.stop()
    postgres.drop_database(stack.config.database)


def test_concurrent_hourly_runs_leave_what_sequential_runs_leave(postgres, airflow_db, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(WINDOWS))
        with ProcessPoolExecutor(
            len(WINDOWS), mp_context=ctx, initializer=_init_worker, initargs=(barrier,)
        ) as pool:
            # One at a time, in window order: the reference.
            stack, planted = _stack(postgres, tmp_path, "sequential")
            try:
                states = [
                    pool.submit(run_window, stack.env, w.isoformat(), f"seq__{w:%H}", False).result()
                    for w in WINDOWS
                ]
                assert states == ["success"] * len(WINDOWS), states
                reference = _outcome(stack)
            finally:
                _drop(postgres, stack)
            _check_alone(reference, planted)
            assert len(reference["documents"]) > 50
            assert len(reference["mails"]) == 1  # the first run's sweep stages the whole day

            for round_no in range(ROUNDS):
                stack, planted_now = _stack(postgres, tmp_path, f"concurrent{round_no}")
                try:
                    assert planted_now == planted
                    futures = [
                        pool.submit(run_window, stack.env, w.isoformat(), f"backfill{round_no}__{w:%H}", True)
                        for w in WINDOWS
                    ]
                    states = [f.result(timeout=1200) for f in futures]
                    assert states == ["success"] * len(WINDOWS), states
                    out = _outcome(stack)
                finally:
                    _drop(postgres, stack)
                # The same ERP documents (same keys, same kinds and totals), the same ledger, the same
                # exceptions with their original kind and owner.
                assert _documents(out) == _documents(reference), round_no
                differ = _diff(out["states"], reference["states"])
                print(f"round {round_no}: orders in another state than one run at a time: {differ}")
                assert not differ, differ
                assert sorted(e[:4] for e in out["exceptions"]) == sorted(
                    e[:4] for e in reference["exceptions"]
                )
                assert {c for m in out["mails"] for c in m["new"]} == {
                    c for m in reference["mails"] for c in m["new"]
                }
                _check_alone(out, planted)


def _documents(out: dict) -> dict[str, tuple]:
    return {
        key: (
            docs[0].get("recordType") or docs[0].get("type"),
            str(docs[0].get("total")),
            bool(docs[0].get("createdFrom") or docs[0].get("createdfrom")),  # a return linked to its sale
            len(docs),
        )
        for key, docs in out["documents"].items()
    }


def _diff(a: dict, b: dict) -> dict:
    return {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
