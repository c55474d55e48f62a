"""Connections to the staging database: from an Airflow connection, or a plain URL outside Airflow."""

from __future__ import annotations

import psycopg
from psycopg.rows import Row

DEFAULT_CONN_ID = "sitoo_erp_db"


def connect_url(url: str) -> psycopg.Connection:
    """Autocommit connection; code that needs atomicity opens ``conn.transaction()`` blocks."""
    return psycopg.connect(url, autocommit=True)


def connect_airflow(postgres_conn_id: str = DEFAULT_CONN_ID) -> psycopg.Connection:
    """The same, through the postgres provider (so any Airflow secrets backend works)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=postgres_conn_id).get_conn()
    if not isinstance(conn, psycopg.Connection):  # the provider falls back to psycopg2 without SQLAlchemy 2
        raise TypeError(
            f"connection {postgres_conn_id!r}: the staging code needs psycopg 3, got {type(conn)}"
        )
    conn.autocommit = True
    return conn


def one_row(cur: psycopg.Cursor[Row]) -> Row:
    """The row a query always returns (an aggregate, ``insert … returning``): none is a bug, said plainly."""
    row = cur.fetchone()
    if row is None:
        raise LookupError("the query returned no row where one is always expected")
    return row


def sqlalchemy_url_for(postgres_conn_id: str = DEFAULT_CONN_ID) -> str:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=postgres_conn_id).get_uri()
