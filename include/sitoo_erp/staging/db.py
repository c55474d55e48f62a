"""Connections to the staging database: from an Airflow connection, or a plain URL outside Airflow."""

from __future__ import annotations

import psycopg

DEFAULT_CONN_ID = "sitoo_erp_db"


def connect_url(url: str) -> psycopg.Connection:
    """Autocommit connection; code that needs atomicity opens ``conn.transaction()`` blocks."""
    return psycopg.connect(url, autocommit=True)


def connect_airflow(postgres_conn_id: str = DEFAULT_CONN_ID) -> psycopg.Connection:
    """The same, through the postgres provider (so any Airflow secrets backend works)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=postgres_conn_id).get_conn()
    conn.autocommit = True
    return conn


def sqlalchemy_url_for(postgres_conn_id: str = DEFAULT_CONN_ID) -> str:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return PostgresHook(postgres_conn_id=postgres_conn_id).get_uri()
