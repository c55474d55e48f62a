"""End-to-end fixtures: the real DAG under ``dag.test()`` against the whole local stack.

Real parts only: embedded PostgreSQL, the Sitoo and NetSuite sandboxes on 127.0.0.1, an SMTP
sink, Airflow on a migrated metadata DB. Each test gets its own staging database.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from include.sandbox.airflow_env import ROOT
from include.sandbox.stack import LocalStack, StackConfig

DAY = date(2026, 11, 16)  # a Monday; Europe/London is on GMT, so local time = UTC


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    for dag in bag.dags.values():
        for task in dag.tasks:  # keep Airflow's task retries, without minutes of waiting in tests
            task.retry_delay = timedelta(seconds=0)
            task.retry_exponential_backoff = False
    _PRISTINE.append((bag, _params_of(bag)))
    return bag


# dag.test(run_conf=...) writes the conf into the shared DAG object's params (an in-process artefact:
# a scheduler gives every run its own conf). Module fixtures run DAGs too, so each module starts from
# the DAGs' own defaults and gives them back; ``_fresh_dag_params`` does the same per test.
_PRISTINE: list = []


def _params_of(bag) -> dict:
    return {
        dag_id: (copy.deepcopy(dag.params), {t.task_id: copy.deepcopy(t.params) for t in dag.tasks})
        for dag_id, dag in bag.dags.items()
    }


def _restore_params(bag, saved: dict) -> None:
    for dag_id, (params, task_params) in saved.items():
        dag = bag.dags[dag_id]
        dag.params = copy.deepcopy(params)
        for task in dag.tasks:
            task.params = copy.deepcopy(task_params[task.task_id])


@pytest.fixture(autouse=True, scope="module")
def _pristine_dag_params_per_module():
    for bag, saved in _PRISTINE:  # autouse: before this module's own module-scoped fixtures run DAGs
        _restore_params(bag, saved)
    yield
    for bag, saved in _PRISTINE:
        _restore_params(bag, saved)


@pytest.fixture(autouse=True)
def _fresh_dag_params(request):
    """``dag.test(run_conf=...)`` leaves its values on the shared DAG's params; give every test
    the DAGs' own defaults back, so one test's trigger form never leaks into the next."""
    if "dagbag" not in request.fixturenames:
        yield
        return
    bag = request.getfixturevalue("dagbag")
    saved = _params_of(bag)
    yield
    _restore_params(bag, saved)


@pytest.fixture(scope="session")
def sales_dag(dagbag):
    return dagbag.get_dag("sitoo_sales_hourly")


def run_hour(dag, start: datetime):
    """Run the DAG for the hour [start, start + 1 h) and return the DagRun."""
    run = dag.test(logical_date=start + timedelta(hours=1))
    assert run.data_interval_start == start, (run.data_interval_start, start)
    return run


def run_hour_answers_lost(dag, start: datetime, netsuite):
    """Run the hour while the NetSuite sandbox stores every document and drops the answer (a timeout
    after commit), with ``post_daily_summaries`` given one try: its documents stay pending."""
    task = dag.get_task("post_daily_summaries")
    saved = (task.retries, task.retry_attempts, task.retry_max_wait)
    task.retries, task.retry_attempts, task.retry_max_wait = 0, 1, 0.01
    try:
        netsuite.timeout_next_upserts(100)
        return run_hour(dag, start)
    finally:
        task.retries, task.retry_attempts, task.retry_max_wait = saved
        netsuite.timeout_next_upserts(0)


def task_states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def make_stack(postgres, workdir, **config) -> LocalStack:
    cfg = StackConfig(database=f"e2e_{uuid.uuid4().hex[:10]}", start=DAY, **config)
    return LocalStack(cfg, workdir).start(postgres=postgres)


@pytest.fixture
def stack(postgres, airflow_db, monkeypatch, tmp_path):
    """A small seeded day (2 stores x 60 receipts) with the connections exported for this test."""
    s = make_stack(postgres, tmp_path, seed=11, stores=2, days=1, receipts_per_store_day=60)
    for key, value in s.env.items():
        monkeypatch.setenv(key, value)
    yield s
    s.stop()
    postgres.drop_database(s.config.database)
