"""Alerts that lead somewhere: the daily digest by owner, and exception-rate jumps."""

from __future__ import annotations

from include.sitoo_erp.staging.db import connect_url
from include.sitoo_erp.staging.exceptions import ExceptionKind, record_exception
from tests.e2e.conftest import at, run_hour, task_states


def _plant_exceptions(stack, n: int, store: str, kind: ExceptionKind, hours_ago: float = 0) -> None:
    with connect_url(stack.database_url) as conn:
        for i in range(n):
            record_exception(
                conn,
                kind,
                f"test:{store}:{kind}:{hours_ago}:{i}",
                rule="test",
                message=f"#{i}",
                store_externalid=store,
                sku=f"SKU-T{i}",
            )
        if hours_ago:
            conn.execute(
                "update sitoo_erp.exception set first_seen_at = now() - %s * interval '1 hour' "
                "where subject_key like %s",
                (hours_ago, f"test:{store}:{kind}:{hours_ago}:%"),
            )


def test_digest_mails_each_owner_its_open_exceptions_and_nothing_when_clean(stack, dagbag):
    dag = dagbag.get_dag("sitoo_exceptions_digest")
    run = dag.test()
    assert str(run.state) == "success", task_states(run)
    assert stack.smtp.messages == []  # nothing open: no mail

    _plant_exceptions(stack, 3, "ST001", ExceptionKind.UNKNOWN_SKU, hours_ago=30)
    _plant_exceptions(stack, 2, "ST002", ExceptionKind.TENDER_MISMATCH)
    run = dag.test()
    assert str(run.state) == "success", task_states(run)
    mails = {m["Subject"]: m for m in stack.smtp.messages}
    assert len(mails) == 2
    retail = next(m for s, m in mails.items() if "for retail_ops" in s)
    finance = next(m for s, m in mails.items() if "for finance" in s)
    assert "3 open exceptions for retail_ops (oldest 30 h)" in retail["Subject"]
    body = retail.get_body(("html",)).get_content()
    assert "unknown_sku" in body and "/sitoo-erp-ops/?owner=retail_ops&amp;kind=unknown_sku" in body
    assert "2 open exceptions for finance" in finance["Subject"]


def test_a_jump_in_new_exceptions_for_a_store_is_alerted_once(stack, sales_dag):
    _plant_exceptions(stack, 2, "ST001", ExceptionKind.UNKNOWN_SKU, hours_ago=50)  # the usual trickle
    _plant_exceptions(stack, 12, "ST002", ExceptionKind.MISSING_MAPPING)  # a bulk change just now
    run = run_hour(sales_dag, at(9))
    assert task_states(run)["watch_exception_rates"] == "success"
    jumps = [m for m in stack.smtp.messages if "Exception rate jump" in m["Subject"]]
    assert len(jumps) == 1
    assert "store ST002 12 new in the last hour" in jumps[0]["Subject"]
    body = jumps[0].get_body(("html",)).get_content()
    assert "kind missing_mapping" in body and "/dags/sitoo_sales_hourly/runs/" in body
    run_hour(sales_dag, at(10))  # the same jump an hour later is not news
    assert len([m for m in stack.smtp.messages if "Exception rate jump" in m["Subject"]]) == 1
