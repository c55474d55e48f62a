"""Versioned staging schema: Alembic migrations in ``migrations/versions``, applied idempotently.

Alembic is already an Airflow dependency, so migrations cost no new package. Its version table
lives in our own schema (``sitoo_erp.alembic_version``) so it never meets Airflow's. A
PostgreSQL advisory lock serialises concurrent callers (two DAGs starting at once).
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from include.sitoo_erp.logs import quiet_libraries

log = logging.getLogger(__name__)
SCHEMA = "sitoo_erp"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x5170_E4B  # any constant shared by every migrating process


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` or ``postgres://`` -> the psycopg 3 SQLAlchemy dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The head(s) of the migration history, comma-joined (one, unless a branch is being merged)."""
    return ",".join(sorted(ScriptDirectory.from_config(_config()).get_heads()))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": "alembic_version", "version_table_schema": SCHEMA}
        )
        heads = ctx.get_current_heads()
        return ",".join(sorted(heads)) if heads else None


def migrate(url_or_engine: str | Engine) -> str:
    """Bring the staging schema to head; a no-op when it is already there. Returns the revision."""
    engine = (
        create_engine(sqlalchemy_url(url_or_engine), poolclass=None)
        if isinstance(url_or_engine, str)
        else url_or_engine
    )
    cfg = _config()
    quiet_libraries(("alembic",))  # its context lines on every run; our own line says what changed
    with engine.begin() as conn:
        conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        conn.execute(text(f"create schema if not exists {SCHEMA}"))
        before = MigrationContext.configure(
            conn, opts={"version_table": "alembic_version", "version_table_schema": SCHEMA}
        ).get_current_heads()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    after = current_revision(engine)
    assert after is not None  # just upgraded to head
    if ",".join(sorted(before)) != after:
        log.info("staging schema upgraded from %s to %s", ",".join(sorted(before)) or "(none)", after)
    return after
