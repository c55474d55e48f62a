"""UI fixtures: one seeded stack, one hourly run with planted bad receipts, one real api-server.

Real parts only: embedded PostgreSQL, the Sitoo/NetSuite sandboxes, the real ``sitoo_sales_hourly``
DAG under ``dag.test()`` and ``airflow api-server`` as a subprocess on 127.0.0.1 with this
project's plugins folder, sharing the test session's metadata DB (so the page shows the runs).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import DAY, at, dagbag, make_stack, run_hour, sales_dag, task_states  # noqa: F401
from tests.e2e.helpers import plant_tender_mismatch, plant_unknown_sku
from tests.ui.apiserver import ApiServer

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="package")
def ui_stack(postgres, airflow_db, tmp_path_factory):
    """A seeded day (2 stores x 60 receipts) plus an unknown-SKU sale and a foreign-tender sale."""
    s = make_stack(
        postgres, tmp_path_factory.mktemp("ui-stack"), seed=11, stores=2, days=1, receipts_per_store_day=60
    )
    saved = {k: os.environ.get(k) for k in s.env}
    os.environ.update(s.env)
    s.planted = {"unknown_sku": plant_unknown_sku(s), "tender_mismatch": plant_tender_mismatch(s)}
    yield s
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    s.stop()
    postgres.drop_database(s.config.database)


@pytest.fixture(scope="package")
def first_run(ui_stack, sales_dag):  # noqa: F811
    """The 09:00 hour: the planted receipts are quarantined with open exceptions."""
    run = run_hour(sales_dag, at(9))
    assert str(run.state) == "success", task_states(run)
    return run


@pytest.fixture(scope="package")
def api_server(ui_stack, first_run, tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp(f"api-{uuid.uuid4().hex[:6]}"), ui_stack.env).start(
        timeout=360
    )  # a loaded CI machine starts it slowly
    yield server
    server.stop()
