"""Shared fixtures: a real PostgreSQL (embedded), fresh staging databases, a migrated Airflow DB.

Airflow reads its configuration when first imported, so the environment is set here, at import
time, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from include.sandbox.airflow_env import configure, migrate_metadata_db  # noqa: E402

configure(Path(tempfile.mkdtemp(prefix="sitoo-erp-airflow-")))

from include.sandbox.postgres import EmbeddedPostgres  # noqa: E402
from include.sandbox.server import free_port  # noqa: E402


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedPostgres:
    """One embedded PostgreSQL 16 for the whole session (a real server on 127.0.0.1)."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pgdata"), port=free_port()).start()
    yield pg
    pg.stop(mode="immediate")


@pytest.fixture
def staging_url(postgres: EmbeddedPostgres) -> str:
    """A fresh database with the staging schema migrated to head; dropped afterwards."""
    from include.sitoo_erp.staging.schema import migrate

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.ensure_database(name)
    migrate(url)
    yield url
    postgres.drop_database(name)


@pytest.fixture
def staging_conn(staging_url: str):
    from include.sitoo_erp.staging.db import connect_url

    with connect_url(staging_url) as conn:
        yield conn


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata DB (SQLite) migrated once per session, as `dag.test()` needs."""
    migrate_metadata_db()
    return Path(os.environ["AIRFLOW_HOME"])
