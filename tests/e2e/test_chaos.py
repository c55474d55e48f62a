"""The chaos month, CI-sized: 2 days x 2 stores, every hour through the real DAGs with faults on.

Same code as ``python -m bench.chaos_month`` (30 days x 5 stores): Sitoo 429 storms and 5 % 5xx,
NetSuite concurrency 429s (2 slots for 4 posting workers), 1 % timeout after commit, latency spikes,
a posting task that dies half-way and is cleared, PostgreSQL restarted between runs and SIGKILLed
mid-posting, posted receipts edited / swapped / cancelled in Sitoo, lost ERP answers followed by a
cancel and an edit in Sitoo; then the daily stock runs and the reconciliation of the period.
Proves: no duplicate ERP document, no wrong ERP document (each receipt's kind, total, date, tax per
rate and lines), invariant 1, every finalised receipt accounted for, stall ages in business time,
stock never negative, zero unexplained difference.
"""

from __future__ import annotations

import uuid

import pytest

from bench.chaos_month import ChaosPlan, print_report, prove, run_chaos, stack_config

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def test_chaos_two_days_nothing_lost_nothing_twice(postgres, dagbag, monkeypatch, tmp_path):
    from include.sandbox.stack import LocalStack

    plan = ChaosPlan(
        stores=2,
        days=2,
        receipts_per_store_day=60,
        restart_every_hours=8,
        kill_hour=37,
        change_hour=30,
        lost_answer_hour=34,
        crash_hour=40,
    )
    database = f"e2e_chaos_{uuid.uuid4().hex[:8]}"
    stack = LocalStack(stack_config(plan, database), tmp_path).start(postgres=postgres)
    try:
        for key, value in stack.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AIRFLOW_VAR_SITOO_ERP_REPORT_DIR", str(tmp_path / "reports"))
        facts = run_chaos(stack, dagbag, plan)
        result = prove(stack, facts)
        print_report(plan, result)
        figures = result["figures"]
        assert not result["problems"], result["problems"]
        assert all(result["checks"].values()), result["checks"]
        # The faults really fired, on both sides.
        assert figures["faults_sitoo"]["rate_limited"] > 0 and figures["faults_sitoo"]["injected_5xx"] > 0
        assert figures["faults_netsuite"]["throttled_429"] > 0
        assert figures["faults_netsuite"]["faults_injected"] > 0  # the kill's error burst
        assert figures["pg_restarts"] >= 5
        assert figures["pg_crashes"] == 1 and figures["pg_crash_mid_posting"]["erp_writes_at_crash"] >= 3
        assert len(figures["lost_answer_then_changed"]["lost_answers"]) >= 2
        assert figures["receipts_checked_per_document"] > 100
        assert figures["ledger"]["posted"] > 100
    finally:
        stack.stop()
        postgres.drop_database(database)
