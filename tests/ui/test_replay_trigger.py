"""The replay DAGs triggered through Airflow's REST API (what the trigger form posts): each asks only
for its own fields, Airflow refuses a malformed form with 400, and the conf Airflow accepts runs
through the same validated task (a mapping the ERP lacks is refused there, nothing saved)."""

from __future__ import annotations

import httpx
import pytest

from include.sitoo_erp.staging.db import connect_url
from tests.e2e.conftest import task_states

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _trigger(api_server, dag_id: str, conf: dict) -> httpx.Response:
    return httpx.post(
        f"{api_server.url}/api/v2/dags/{dag_id}/dagRuns",
        headers={"Authorization": f"Bearer {api_server.token('ops')}"},
        json={"logical_date": None, "conf": conf},
        timeout=30,
    )


def _accepted_conf(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["conf"]


def test_replay_only_is_triggered_with_nothing_filled_in(api_server, dagbag):
    assert dict(dagbag.get_dag("sitoo_exceptions_replay").params) == {}
    response = _trigger(api_server, "sitoo_exceptions_replay", {})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "queued"


@pytest.mark.parametrize(
    ("dag_id", "conf", "complaint"),
    [
        ("sitoo_exceptions_fix_mappings", {"sku_items": [{"sku": "SKU-X"}]}, "item_id"),
        ("sitoo_exceptions_fix_mappings", {"sku_items": [{"sku": "SKU-X", "item_id": "one"}]}, "item_id"),
        (
            "sitoo_exceptions_fix_mappings",
            {"store_locations": [{"store": "ST9", "location_id": "1001"}]},
            "customer_id",
        ),
        (
            "sitoo_exceptions_fix_mappings",
            {"sku_items": [{"sku": "S", "item_id": "1", "colour": "red"}]},
            "colour",
        ),
        ("sitoo_exceptions_decide", {"decision": "ignore", "reason": "training till"}, "exception_ids"),
        ("sitoo_exceptions_decide", {"decision": "ignore", "exception_ids": [1], "reason": "no"}, "reason"),
        (
            "sitoo_exceptions_decide",
            {"decision": "drop", "exception_ids": [1], "reason": "whatever"},
            "decision",
        ),
    ],
)
def test_a_malformed_form_is_refused_by_airflow_before_any_run(api_server, ui_stack, dag_id, conf, complaint):
    response = _trigger(api_server, dag_id, conf)
    assert response.status_code == 400, response.text
    assert complaint in response.text


def test_a_mapping_the_erp_lacks_is_accepted_by_the_form_but_refused_by_the_run(api_server, ui_stack, dagbag):
    sku = next(p.sku for p in ui_stack.dataset.catalogue.products if not p.in_erp)
    missing_item = ui_stack.dataset.catalogue.product_by_sku()[sku].erp_item_id
    conf = _accepted_conf(
        _trigger(
            api_server,
            "sitoo_exceptions_fix_mappings",
            {"sku_items": [{"sku": sku, "item_id": missing_item}], "reason": "from the REST API"},
        )
    )
    with connect_url(ui_stack.database_url) as conn:
        before = conn.execute("select count(*) from sitoo_erp.audit_log").fetchone()[0]
        mapped = conn.execute("select * from sitoo_erp.map_sku_item where sku = %s", (sku,)).fetchall()
    run = dagbag.get_dag("sitoo_exceptions_fix_mappings").test(run_conf=conf)
    states = task_states(run)
    assert states["save_mappings"] == "failed" and states["post_to_erp"] == "upstream_failed"
    with connect_url(ui_stack.database_url) as conn:
        assert conn.execute("select count(*) from sitoo_erp.audit_log").fetchone()[0] == before
        assert (
            conn.execute("select * from sitoo_erp.map_sku_item where sku = %s", (sku,)).fetchall() == mapped
        )


def test_a_decision_through_the_rest_api_closes_the_exceptions_and_is_audited(api_server, ui_stack, dagbag):
    with connect_url(ui_stack.database_url) as conn:
        ids = [
            conn.execute(
                "insert into sitoo_erp.exception (kind, subject_key, rule, message) "
                "values ('erp_rejected', %s, 'test', 'synthetic') returning exception_id",
                (f"rest-decide:{n}",),
            ).fetchone()[0]
            for n in range(2)
        ]
    conf = _accepted_conf(
        _trigger(
            api_server,
            "sitoo_exceptions_decide",
            {"decision": "resolve", "exception_ids": ids, "reason": "re-keyed in NetSuite by hand"},
        )
    )
    run = dagbag.get_dag("sitoo_exceptions_decide").test(run_conf=conf)
    assert str(run.state) == "success", task_states(run)
    with connect_url(ui_stack.database_url) as conn:
        rows = conn.execute(
            "select status, resolution_note from sitoo_erp.exception where exception_id = any(%s)", (ids,)
        ).fetchall()
        audit = conn.execute(
            "select action, source from sitoo_erp.audit_log where entity = 'exception' and entity_key = any(%s)",
            ([str(i) for i in ids],),
        ).fetchall()
    assert rows == [("resolved", "re-keyed in NetSuite by hand")] * 2
    assert audit == [("resolve", "replay_dag")] * 2
