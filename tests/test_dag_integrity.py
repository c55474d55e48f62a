"""Every DAG file imports cleanly and carries what operators of the platform depend on."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert not dagbag.import_errors, dagbag.import_errors
    assert "sitoo_sales_hourly" in dagbag.dags


def test_every_dag_has_owner_retries_tags_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id}: doc_md missing or too thin"
        assert dag.default_args.get("owner") not in (None, "", "airflow"), f"{dag_id}: no real owner"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id}: no retries"
        assert dag.max_active_runs <= 1 or dag_id.endswith("_replay"), (
            f"{dag_id}: concurrent runs of a posting DAG"
        )
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), f"{dag_id}.{task.task_id}: no owner"


def test_scheduled_dags_back_off_between_retries(dagbag):
    """Airflow 3.3 reads retry_exponential_backoff as a multiplier (True is 1.0: no backoff); the
    scheduled DAGs' tries wait longer each time so a restarting database has room to come back."""
    for dag_id in ("sitoo_sales_hourly", "sitoo_stock_daily", "sitoo_reconciliation_monthly"):
        for task in dagbag.dags[dag_id].tasks:
            assert task.retry_delay.total_seconds() >= 60, f"{dag_id}.{task.task_id}"
            assert task.retry_exponential_backoff >= 2, f"{dag_id}.{task.task_id}: no backoff"


def test_time_windowed_dags_have_real_data_intervals(dagbag):
    """A cron string alone gives a zero-width interval on Airflow 3: windows must be explicit."""
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable

    for dag_id, dag in dagbag.dags.items():
        timetable = coerce_to_core_timetable(dag.timetable)
        if not timetable.can_be_scheduled:
            continue
        info = timetable.infer_manual_data_interval(
            run_after=pendulum.datetime(2026, 11, 20, 10, 30, tz="UTC")
        )
        assert info.end > info.start, f"{dag_id}: zero-width data interval"


def test_dag_files_do_no_io_at_parse_time():
    """No Variable/Connection/hook calls at module top level (each parse would hit the API server)."""
    forbidden = {"Variable", "get_connection", "BaseHook", "PostgresHook", "SitooHook", "NetSuiteHook"}
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef):
                continue
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            }
            calls = {
                (c.func.id if isinstance(c.func, ast.Name) else getattr(c.func, "attr", ""))
                for c in ast.walk(node)
                if isinstance(c, ast.Call)
            }
            assert not (forbidden & calls), f"{path.name}: top-level I/O call {forbidden & calls}"
            assert "Variable" not in names or "get" not in calls, f"{path.name}: Variable.get at parse time"


def test_tasks_retry_transient_errors_only(dagbag):
    """An outage is retried; refused credentials or a broken payload fail at once, with the reason."""
    from include.sitoo_erp.http_retry import ApiError, AuthError, TransientApiError
    from include.sitoo_erp.sitoo.models import SitooPayloadError

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            policy = task.retry_policy
            assert policy is not None, f"{dag_id}.{task.task_id}: no retry policy"
            for exc, action in (
                (TransientApiError("503"), "retry"),
                (AuthError("401"), "fail"),
                (ApiError("404"), "fail"),
                (SitooPayloadError("order 1", "orderdate", "missing", "Field required"), "fail"),
            ):
                decision = policy.evaluate(exc, try_number=1, max_tries=3)
                assert decision.action.value == action, (dag_id, task.task_id, exc, decision)


def _form_requires(schema: dict) -> bool:
    """Airflow 3.3's trigger form (the UI's FlexibleForm, ``airflow/ui/dist``): a field is marked
    required, and the Trigger button stays disabled while it is empty, unless its type allows null."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def test_reconciliation_trigger_form_requires_no_field(dagbag):
    """Every field of finance's form is optional: empty dates = the closed month, empty stores = all."""
    from airflow.sdk.definitions.param import Param

    params = dagbag.dags["sitoo_reconciliation_monthly"].params
    required = [name for name in params if _form_requires(params.get_param(name).schema)]
    assert required == [], required
    # What the form sends for an emptied field is null: accepted, and it means "all stores".
    for name in params:
        param = params.get_param(name)
        Param(param.value, **param.schema).resolve(value=None)
    from include.sitoo_erp.reconciliation.period import resolve_period

    assert resolve_period({"date_from": "2026-11-02", "stores": None}, None).stores == ()
